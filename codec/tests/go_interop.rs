//! Live interop with real Go: the codec's `net/rpc` ends talk to Go's own `net/rpc` (default
//! gob codec) over pipes, through `interop/go/netrpc-peer` (see `interop/go/README.md`).
//!
//! - Rust as client, Go as server: every typed call of protocol 1, Go's error texts for
//!   unknown services and methods, configurations of sizes around the gob length boundaries up to
//!   3 MiB, and 70,000 pipelined calls (Seq above 127, 65535) whose replies Go's server sends
//!   in whatever order its goroutines finish.
//! - Rust as server, Go as client: Go's client issues the same kinds of calls with up to 256 in
//!   flight, the Rust server answers in reversed batches, and Go's view of every reply (error
//!   text, reply length and FNV-1a 64 hash) must be what the Rust server sent.
//!
//! - The vectors: `interop/go/vectors-gen` records Go's sessions afresh, and the stored
//!   `spec/vectors/rpc-go-sessions.json` and the `go:net/rpc` tests of `streams.json` must be
//!   exactly what it writes (`UPDATE_VECTORS=1` rewrites them).
//!
//! Each Go program is built once per test run into `CARGO_TARGET_TMPDIR`. Without `go` on the
//! PATH the tests print `SKIPPED: ...` and pass, unless `CI=true`. A watchdog kills the Go
//! child after [`TIMEOUT`], so a hang fails the test instead of blocking CI.

/// The interop peer serves both services on one stream.
const BOTH: &[&str] = &[
    rpcplugin_codec::rpc::HOOKS_SERVICE,
    rpcplugin_codec::rpc::API_SERVICE,
];

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rpcplugin_codec::gob::{ids, rpc_ids, TypeId, Value};
use rpcplugin_codec::rpc::{
    Call, ClientCodec, Reply, Request, Response, ServerCodec, LOAD_PLUGIN_CONFIGURATION,
    ON_ACTIVATE, ON_DEACTIVATE,
};
use rpcplugin_test_support::bins::fresh_dir;
use rpcplugin_test_support::to_hex;
use serde::Deserialize;
use serde_json::json;

/// Every Go child is killed after this long.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Configuration sizes, so that the gob length of the `[]byte` takes each form: one byte (up to
/// 127), a count and one byte (128..=255), two bytes (256..=65535), three bytes; up to 3 MiB.
const CONFIG_SIZES: [usize; 10] = [
    0,
    1,
    127,
    128,
    255,
    256,
    65535,
    65536,
    1 << 20,
    (3 << 20) + 1,
];

/// Pipelined small calls, so that Seq goes past 127, 255 and 65535.
const BULK_CALLS: usize = 70_000;

/// OnActivate arguments every run uses, besides the generated ones.
const EDGE_INTS: [i64; 16] = [
    1,
    3,
    0,
    2,
    -1,
    -2,
    -3,
    63,
    64,
    -65,
    65535,
    65536,
    i64::MAX,
    i64::MAX - 1,
    i64::MIN,
    i64::MIN + 1,
];

/// The error text of a refused `OnActivate(n)`, as `netrpc-peer` formats it.
fn error_text(n: i64) -> String {
    format!("ungültige API-Stream-ID {n} — 拒否 ✗")
}

/// The rule both ends follow: `OnActivate(n)` succeeds when `n` is odd and positive.
fn activate_outcome(n: i64) -> Result<Reply, String> {
    if n > 0 && n % 2 == 1 {
        Ok(Reply::Empty)
    } else {
        Err(error_text(n))
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A small deterministic generator (xorshift64*), so that runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Mostly small ids of both signs and parities, sometimes any i64 or an edge value.
    fn api_stream(&mut self) -> i64 {
        let r = self.next();
        match r % 16 {
            0 => r as i64,
            1 => EDGE_INTS[(r >> 8) as usize % EDGE_INTS.len()],
            _ => ((r >> 8) % 200_001) as i64 - 100_000,
        }
    }
}

/// A JSON configuration of exactly `size` bytes with varied (multi-byte, escaped) content.
fn config(size: usize, seed: u64) -> Vec<u8> {
    match size {
        0 => return Vec::new(),
        1 => return b"0".to_vec(),
        2..=15 => return format!("{{}}{}", " ".repeat(size - 2)).into_bytes(),
        _ => {}
    }
    const PIECES: [&str; 10] = [
        "a", "Z", "é", "漢", "\\n", "\\\"", "🦀", "\\u0000", " ", "7",
    ];
    let mut rng = Rng(seed | 1);
    let mut out = b"{\"blob\":\"".to_vec();
    while out.len() + 2 < size {
        let room = size - 2 - out.len();
        let piece = PIECES[rng.next() as usize % PIECES.len()];
        out.extend_from_slice(if piece.len() <= room { piece } else { "x" }.as_bytes());
    }
    out.extend_from_slice(b"\"}");
    assert_eq!(out.len(), size);
    out
}

// ---------------------------------------------------------------------------------------------
// Building and running the Go peer.

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The built `netrpc-peer`, or `None` (test skipped) when Go is missing.
fn go_peer() -> Option<&'static Path> {
    static PEER: OnceLock<Option<PathBuf>> = OnceLock::new();
    PEER.get_or_init(|| build_go("netrpc-peer")).as_deref()
}

/// The built `vectors-gen`, or `None` (test skipped) when Go is missing.
fn vectors_gen() -> Option<&'static Path> {
    static GEN: OnceLock<Option<PathBuf>> = OnceLock::new();
    GEN.get_or_init(|| build_go("vectors-gen")).as_deref()
}

/// Builds the program `interop/go/NAME/main.go`; `None` when Go is missing (not under CI).
fn build_go(name: &str) -> Option<PathBuf> {
    let version = Command::new("go")
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .output();
    match version {
        Ok(o) if o.status.success() => {
            eprintln!("go_interop: {}", String::from_utf8_lossy(&o.stdout).trim());
        }
        other => {
            let why = match other {
                Err(e) => format!("`go version`: {e}"),
                Ok(o) => format!(
                    "`go version` failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
            };
            if ci() {
                panic!("CI=true but Go is unusable ({why}): the live net/rpc interop tests need golang-go");
            }
            eprintln!(
                "\n*** SKIPPED: Go not found; install golang-go to run the live net/rpc interop \
                 tests ({why}) ***\n"
            );
            return None;
        }
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/go")
        .join(name);
    let out = tmp.join(name);
    let partial = tmp.join(format!("{name}.{}.partial", std::process::id()));
    let mut cmd = Command::new("go");
    cmd.arg("build")
        .arg("-o")
        .arg(&partial)
        .arg("main.go")
        .current_dir(&src)
        // A single file, no module, no network, no C compiler.
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0");
    if !go_cache_is_writable() {
        cmd.env("GOCACHE", tmp.join("go-cache"));
        cmd.env("GOPATH", tmp.join("gopath"));
    }
    let started = Instant::now();
    let o = cmd.output().expect("run `go build`");
    assert!(
        o.status.success(),
        "go build of {} failed ({}):\n{}",
        src.display(),
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    // Atomic, so that concurrent test runs never execute a half-written binary.
    fs::rename(&partial, &out).expect("move the built Go program into place");
    eprintln!(
        "go_interop: built {} in {:.1?}",
        out.display(),
        started.elapsed()
    );
    Some(out)
}

/// Whether Go's default build cache can be used (it cannot when HOME is unwritable).
fn go_cache_is_writable() -> bool {
    if std::env::var_os("GOCACHE").is_some() {
        return true;
    }
    let Ok(o) = Command::new("go")
        .args(["env", "GOCACHE"])
        .env("GOTOOLCHAIN", "local")
        .output()
    else {
        return false;
    };
    let dir = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    if !o.status.success() || !dir.is_absolute() {
        return false;
    }
    let probe = dir.join(format!(".go-interop-probe-{}", std::process::id()));
    let ok = fs::create_dir_all(&dir).is_ok() && fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

/// A scratch directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    fresh_dir(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("go-interop-{name}-{}", std::process::id())),
    )
}

/// A running `netrpc-peer`: killed by a watchdog after [`TIMEOUT`], and killed and reaped when
/// dropped (also when the test panics, after which its stderr is printed).
struct Peer {
    child: Arc<Mutex<Child>>,
    done: Arc<(Mutex<bool>, Condvar)>,
    timed_out: Arc<AtomicBool>,
    stderr: Arc<Mutex<String>>,
    threads: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Peer {
    fn spawn(bin: &Path, args: &[&OsStr]) -> (Peer, ChildStdin, ChildStdout) {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let err_pipe = child.stderr.take().unwrap();
        let child = Arc::new(Mutex::new(child));
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let timed_out = Arc::new(AtomicBool::new(false));
        let stderr = Arc::new(Mutex::new(String::new()));

        let log = Arc::clone(&stderr);
        let reader = thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines() {
                let Ok(line) = line else { break };
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (c, d, t) = (
            Arc::clone(&child),
            Arc::clone(&done),
            Arc::clone(&timed_out),
        );
        let watchdog = thread::spawn(move || {
            let (lock, cv) = &*d;
            let (finished, wait) = cv
                .wait_timeout_while(lock.lock().unwrap(), TIMEOUT, |finished| !*finished)
                .unwrap();
            if !*finished && wait.timed_out() {
                t.store(true, Ordering::SeqCst);
                eprintln!("go_interop: TIMEOUT after {TIMEOUT:?}: killing netrpc-peer");
                let _ = c.lock().unwrap().kill();
            }
        });
        let peer = Peer {
            child,
            done,
            timed_out,
            stderr,
            threads: vec![reader, watchdog],
            started: Instant::now(),
        };
        (peer, stdin, stdout)
    }

    /// What the peer wrote to stderr so far.
    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Why the peer's output may have ended early, for failure messages.
    fn explain(&self) -> String {
        let killed = if self.timed_out.load(Ordering::SeqCst) {
            format!("killed by the watchdog after {TIMEOUT:?}; ")
        } else {
            String::new()
        };
        format!("{killed}netrpc-peer stderr:\n{}", self.log())
    }

    /// Waits for the peer to exit (bounded by the watchdog) and returns its status.
    fn wait(&mut self) -> ExitStatus {
        loop {
            let status = self.child.lock().unwrap().try_wait().unwrap();
            if let Some(status) = status {
                self.stop();
                assert!(
                    !self.timed_out.load(Ordering::SeqCst),
                    "netrpc-peer timed out"
                );
                return status;
            }
            assert!(
                self.started.elapsed() < TIMEOUT + Duration::from_secs(5),
                "netrpc-peer did not exit"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills (if still running) and reaps the child, and stops the helper threads.
    fn stop(&mut self) {
        let (lock, cv) = &*self.done;
        *lock.lock().unwrap() = true;
        cv.notify_all();
        {
            let mut child = self.child.lock().unwrap();
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            eprintln!("--- netrpc-peer stderr ---\n{}--- end ---", self.log());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rust as client, Go as server.

/// The outcome Go's server must produce for a typed call (`config`: the config file's bytes).
fn expected(call: &Call, config: &[u8]) -> Result<Reply, String> {
    match call {
        Call::OnActivate { api_stream } => activate_outcome(*api_stream),
        Call::OnDeactivate => Ok(Reply::Empty),
        Call::LoadPluginConfiguration => Ok(Reply::Configuration(config.to_vec())),
    }
}

/// Checks a response to a typed call against the expected outcome (byte-exact, without
/// printing megabytes on failure).
fn check_response(r: &Response<Call>, want: &Result<Reply, String>) {
    let call = r
        .call
        .as_ref()
        .unwrap_or_else(|| panic!("response Seq {} matches no call", r.header.seq));
    let seq = r.header.seq;
    assert_eq!(r.header.service_method, call.service_method(), "Seq {seq}");
    match want {
        Err(text) => {
            assert_eq!(&r.header.error, text, "Seq {seq}: {call}");
            assert_eq!(
                r.body,
                Value::empty_struct(),
                "Seq {seq}: an error carries struct{{}}{{}}"
            );
        }
        Ok(want) => {
            assert_eq!(r.header.error, "", "Seq {seq}: {call}");
            let got = Reply::for_call(call, &r.body)
                .unwrap_or_else(|e| panic!("Seq {seq}: {call}: bad reply value: {e}"));
            match (&got, want) {
                (Reply::Configuration(g), Reply::Configuration(w)) => {
                    let diff = g.iter().zip(w).position(|(a, b)| a != b);
                    assert!(
                        g.len() == w.len() && diff.is_none(),
                        "Seq {seq}: config of {} bytes came back as {} bytes (first difference at {diff:?})",
                        w.len(),
                        g.len()
                    );
                }
                _ => assert_eq!(&got, want, "Seq {seq}: {call}"),
            }
        }
    }
}

/// The last bytes of `bytes` in hex, for failure messages.
fn hex_tail(bytes: &[u8]) -> String {
    let tail = &bytes[bytes.len().saturating_sub(512)..];
    format!("{} ({} of {} bytes)", to_hex(tail), tail.len(), bytes.len())
}

/// Reads from `stdout` until the client has a whole response.
fn read_response(
    client: &mut ClientCodec<Call>,
    stdout: &mut ChildStdout,
    buf: &mut [u8],
    peer: &Peer,
) -> Response<Call> {
    let mut last = 0;
    loop {
        match client.next_response() {
            Ok(Some(r)) => return r,
            Ok(None) => {}
            Err(e) => panic!(
                "decoding Go's response failed: {e}\nlast bytes read: {}\n{}",
                hex_tail(&buf[..last]),
                peer.explain()
            ),
        }
        let n = stdout.read(buf).expect("read from netrpc-peer");
        assert!(n > 0, "netrpc-peer closed its stdout; {}", peer.explain());
        client.push(&buf[..n]);
        last = n;
    }
}

/// Window for the pipelined calls: the writer stays at most this many calls ahead of the reader,
/// so that Go's server (one goroutine per request) never holds too many at once.
const WINDOW: usize = 4096;
const BATCH: usize = 512;

/// How many responses the reader has seen, for the writer's window.
#[derive(Default)]
struct Progress {
    received: Mutex<usize>,
    cv: Condvar,
    abort: AtomicBool,
}

impl Progress {
    fn advance(&self, n: usize) {
        *self.received.lock().unwrap() = n;
        self.cv.notify_all();
    }

    /// Waits until `sent` is within the window; `false` when the test gave up.
    fn wait_window(&self, sent: usize) -> bool {
        let mut received = self.received.lock().unwrap();
        while *received + WINDOW < sent {
            if self.abort.load(Ordering::SeqCst) {
                return false;
            }
            received = self
                .cv
                .wait_timeout(received, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        true
    }
}

/// Sets `abort` when the reader leaves (normally or by panic), so the writer never hangs.
struct AbortOnDrop(Arc<Progress>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort.store(true, Ordering::SeqCst);
        self.0.cv.notify_all();
    }
}

// covers: GOB-1, GOB-8, GOB-15, RPC-2, RPC-4, RPC-6, RPC-7, RPC-9, RPC-10, RPC-12
#[test]
fn rust_client_calls_a_go_net_rpc_server() {
    let Some(bin) = go_peer() else { return };
    let started = Instant::now();
    let dir = scratch("client");
    let config_path = dir.join("config.json");
    fs::write(&config_path, b"").unwrap();
    let (mut peer, mut stdin, mut stdout) = Peer::spawn(
        bin,
        &[
            OsStr::new("serve"),
            OsStr::new("--config"),
            config_path.as_os_str(),
        ],
    );
    let mut client: ClientCodec<Call> = ClientCodec::new();
    let mut buf = vec![0u8; 1 << 16];

    // 1. One call at a time: hooks with edge arguments, Go's texts for unknown names, and every
    //    configuration size (the file is rewritten before each call; Go reads it per call).
    let mut typed: Vec<(Call, Vec<u8>)> = EDGE_INTS
        .iter()
        .map(|&n| (Call::OnActivate { api_stream: n }, Vec::new()))
        .collect();
    typed.push((Call::OnDeactivate, Vec::new()));
    for (k, &size) in CONFIG_SIZES.iter().enumerate() {
        typed.push((Call::LoadPluginConfiguration, config(size, k as u64)));
    }
    for (call, cfg) in typed {
        if call == Call::LoadPluginConfiguration {
            fs::write(&config_path, &cfg).unwrap();
        }
        let want = expected(&call, &cfg);
        let mut out = Vec::new();
        let seq = client.call_typed(call, &mut out).unwrap();
        stdin.write_all(&out).unwrap();
        let r = read_response(&mut client, &mut stdout, &mut buf, &peer);
        assert_eq!(r.header.seq, seq);
        check_response(&r, &want);
    }
    // Names Go cannot route: Go answers with its own text and keeps serving. The call table
    // needs a `Call` for them; OnDeactivate is a placeholder, never looked at.
    let probes: [(&str, TypeId, Value); 5] = [
        (
            "LocalHooks.NoSuchMethod",
            rpc_ids::EMPTY_STRUCT,
            Value::empty_struct(),
        ),
        ("LocalAPI.OnActivate", ids::INT, Value::Int(3)),
        ("Nope.OnActivate", ids::INT, Value::Int(3)),
        ("OnActivate", ids::INT, Value::Int(3)),
        ("", rpc_ids::EMPTY_STRUCT, Value::empty_struct()),
    ];
    for (method, id, args) in &probes {
        let want = Call::from_request(BOTH, method, args)
            .expect_err("an unroutable name")
            .to_string();
        let mut out = Vec::new();
        let seq = client
            .call(method, (*id, args), Call::OnDeactivate, &mut out)
            .unwrap();
        stdin.write_all(&out).unwrap();
        let r = read_response(&mut client, &mut stdout, &mut buf, &peer);
        assert_eq!(r.header.seq, seq);
        assert_eq!(r.header.service_method, *method);
        assert_eq!(r.header.error, want, "Go's text for {method:?}");
        assert_eq!(r.body, Value::empty_struct());
    }
    let sequential = started.elapsed();

    // 2. Pipelined: BULK_CALLS calls written by a thread (at most WINDOW ahead) while this
    //    thread decodes; Go's server answers each in its own goroutine, so in any order.
    let bulk_config = config(4096, 99);
    fs::write(&config_path, &bulk_config).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut batches: Vec<Vec<u8>> = Vec::new();
    for i in 0..BULK_CALLS {
        let call = match i % 1000 {
            999 => Call::LoadPluginConfiguration,
            250 | 750 => Call::OnDeactivate,
            _ => Call::OnActivate {
                api_stream: rng.api_stream(),
            },
        };
        if i % BATCH == 0 {
            batches.push(Vec::new());
        }
        client
            .call_typed(call, batches.last_mut().unwrap())
            .unwrap();
    }
    let progress = Arc::new(Progress::default());
    let _abort = AbortOnDrop(Arc::clone(&progress));
    let writer = {
        let progress = Arc::clone(&progress);
        thread::spawn(move || -> std::io::Result<()> {
            for (k, batch) in batches.iter().enumerate() {
                if !progress.wait_window((k + 1) * BATCH) {
                    return Ok(());
                }
                stdin.write_all(batch)?;
            }
            Ok(()) // dropping stdin: Go's ServeConn sees EOF, answers the rest, and exits
        })
    };
    let (mut received, mut max_seq, mut out_of_order, mut last) = (0, 0u64, 0usize, None);
    while received < BULK_CALLS {
        let r = read_response(&mut client, &mut stdout, &mut buf, &peer);
        let seq = r.header.seq;
        let call = r
            .call
            .as_ref()
            .unwrap_or_else(|| panic!("Seq {seq} matches no pending call (answered twice?)"));
        check_response(&r, &expected(call, &bulk_config));
        if last.is_some_and(|l| seq < l) {
            out_of_order += 1;
        }
        last = Some(seq);
        max_seq = max_seq.max(seq);
        received += 1;
        if received % 256 == 0 {
            progress.advance(received);
        }
    }
    progress.advance(received);
    writer
        .join()
        .unwrap()
        .expect("write the pipelined calls to netrpc-peer");
    assert!(
        client.pending().is_empty(),
        "{} calls unanswered",
        client.pending().len()
    );
    assert!(max_seq > 65535, "Seq only reached {max_seq}");
    // Go's server has seen EOF: it exits 0 after a clean end of its input, and sends nothing more.
    let n = stdout.read(&mut buf).unwrap();
    assert_eq!(n, 0, "unexpected bytes after the last response");
    client.finish().unwrap();
    let status = peer.wait();
    assert!(
        status.success(),
        "netrpc-peer serve: {status}; {}",
        peer.explain()
    );
    eprintln!(
        "go_interop: Rust client -> Go server: {} calls (Seq up to {max_seq}, {out_of_order} replies \
         out of order) in {:.1?} ({:.1?} for the one-at-a-time part)",
        max_seq + 1,
        started.elapsed(),
        sequential
    );
    let _ = fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Rust as server, Go as client.

/// What the Rust server answered a call, as Go's client must report it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Answer {
    method: String,
    int: Option<i64>,
    ok: bool,
    error: String,
    reply_len: usize,
    reply_fnv1a64: String,
}

/// One line of netrpc-peer's results file: the call's index and what Go's client got.
#[derive(Debug, Deserialize)]
struct GoResult {
    i: u64,
    #[serde(flatten)]
    answer: Answer,
}

/// Answers a request the way `netrpc-peer serve` would, taking configurations in rotation.
fn serve_one(req: &Request, configs: &[Vec<u8>], next_config: &mut usize) -> Result<Reply, String> {
    match Call::from_request(BOTH, &req.header.service_method, &req.args)
        .map_err(|e| e.to_string())?
    {
        Call::OnActivate { api_stream } => activate_outcome(api_stream),
        Call::OnDeactivate => Ok(Reply::Empty),
        Call::LoadPluginConfiguration => {
            let c = configs[*next_config % configs.len()].clone();
            *next_config += 1;
            Ok(Reply::Configuration(c))
        }
    }
}

// covers: GOB-1, GOB-8, RPC-2, RPC-5, RPC-7, RPC-8, RPC-9, RPC-12
#[test]
fn go_net_rpc_client_calls_a_rust_server() {
    let Some(bin) = go_peer() else { return };
    let started = Instant::now();
    let dir = scratch("server");
    let (script_path, results_path) = (dir.join("script.jsonl"), dir.join("results.jsonl"));

    // The script, and the calls it stands for (call i gets Seq i: Go issues them in order).
    let mut lines = Vec::new();
    let mut calls: Vec<(String, Option<i64>)> = Vec::new();
    let mut add = |method: &str, int: Option<i64>, step: i64, repeat: usize| {
        lines.push(
            json!({"method": method, "int": int, "step": step, "repeat": repeat}).to_string(),
        );
        for k in 0..repeat as i64 {
            calls.push((
                method.to_string(),
                int.map(|n| n.wrapping_add(k.wrapping_mul(step))),
            ));
        }
    };
    for _ in CONFIG_SIZES {
        add(LOAD_PLUGIN_CONFIGURATION, None, 0, 1);
    }
    for n in EDGE_INTS {
        add(ON_ACTIVATE, Some(n), 0, 1);
    }
    add(ON_DEACTIVATE, None, 0, 1);
    add("LocalHooks.NoSuchMethod", None, 0, 1);
    add("Nope.OnActivate", Some(3), 0, 1);
    add("OnActivate", Some(3), 0, 1);
    add(ON_ACTIVATE, Some(-7), 1, BULK_CALLS);
    add(ON_ACTIVATE, Some(i64::MAX - 2), 1, 5); // wraps to i64::MIN
    add(ON_DEACTIVATE, None, 0, 10);
    add(LOAD_PLUGIN_CONFIGURATION, None, 0, CONFIG_SIZES.len());
    fs::write(&script_path, lines.join("\n") + "\n").unwrap();
    let total = calls.len();

    let configs: Vec<Vec<u8>> = CONFIG_SIZES
        .iter()
        .enumerate()
        .map(|(k, &s)| config(s, 1000 + k as u64))
        .collect();
    let (mut peer, stdin, mut stdout) = Peer::spawn(
        bin,
        &[
            OsStr::new("call"),
            OsStr::new("--script"),
            script_path.as_os_str(),
            OsStr::new("--results"),
            results_path.as_os_str(),
            OsStr::new("--max-in-flight"),
            OsStr::new("256"),
        ],
    );
    // Responses go through a writer thread, so that writing megabytes never blocks reading.
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let writer = thread::spawn(move || -> std::io::Result<()> {
        let mut stdin = stdin;
        for bytes in rx {
            stdin.write_all(&bytes)?;
        }
        Ok(())
    });

    let mut server = ServerCodec::new();
    let mut answers: Vec<Option<Answer>> = vec![None; total];
    let mut held: Vec<(Request, Result<Reply, String>)> = Vec::new();
    let (mut received, mut next_config, mut reversed_batches) = (0usize, 0usize, 0usize);
    // Answers are held back until `target` requests are waiting, then sent newest first. The
    // target stays below Go's --max-in-flight, so Go always sends enough to reach it.
    let mut target = 1;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = stdout.read(&mut buf).expect("read from netrpc-peer");
        if n == 0 {
            break;
        }
        server.push(&buf[..n]);
        loop {
            let req = match server.next_request() {
                Ok(Some(req)) => req,
                Ok(None) => break,
                Err(e) => panic!(
                    "decoding Go's request failed: {e}\nlast bytes read: {}\n{}",
                    hex_tail(&buf[..n]),
                    peer.explain()
                ),
            };
            let seq = req.header.seq as usize;
            assert!(
                seq < total,
                "Seq {seq} beyond the {total} calls of the script"
            );
            let outcome = serve_one(&req, &configs, &mut next_config);
            let (reply_len, hash) = match &outcome {
                Ok(Reply::Configuration(c)) => (c.len(), fnv1a64(c)),
                _ => (0, fnv1a64(&[])),
            };
            let int = match req.args {
                Value::Int(n) => Some(n),
                _ => None,
            };
            let answer = Answer {
                method: req.header.service_method.clone(),
                int,
                ok: outcome.is_ok(),
                error: outcome.as_ref().err().cloned().unwrap_or_default(),
                reply_len,
                reply_fnv1a64: format!("{hash:016x}"),
            };
            assert!(
                answers[seq].replace(answer).is_none(),
                "Seq {seq} received twice"
            );
            held.push((req, outcome));
            received += 1;
        }
        if held.len() >= target || (received == total && !held.is_empty()) {
            reversed_batches += usize::from(held.len() > 1);
            let mut out = Vec::new();
            for (req, outcome) in held.drain(..).rev() {
                let result = outcome.as_ref().map_err(String::as_str);
                server.respond_typed(&req.header, result, &mut out).unwrap();
            }
            if tx.send(out).is_err() {
                break; // the writer failed; its error is reported below
            }
            target = 1 + (target * 37 + 11) % 64;
        }
    }
    if let Err(e) = server.finish() {
        panic!("Go's requests did not end cleanly: {e}; {}", peer.explain());
    }
    drop(tx);
    let written = writer.join().unwrap();
    let status = peer.wait();
    assert!(
        status.success(),
        "netrpc-peer call: {status}; {}",
        peer.explain()
    );
    written.expect("write responses to netrpc-peer");
    assert_eq!(received, total, "requests received");
    assert!(held.is_empty());

    // Go's view of every call must be what the Rust server sent.
    let results = fs::read_to_string(&results_path).expect("netrpc-peer's results file");
    let mut count = 0;
    let mut oks = 0;
    for (i, line) in results.lines().enumerate() {
        let r: GoResult =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("result line {i}: {e}: {line}"));
        assert_eq!(r.i, i as u64);
        let got = r.answer;
        let (method, int) = &calls[i];
        assert_eq!(
            (&got.method, &got.int),
            (method, int),
            "call {i} of the script"
        );
        let sent = answers[i]
            .as_ref()
            .unwrap_or_else(|| panic!("call {i} never reached the server"));
        assert_eq!(
            (&sent.method, &sent.int),
            (method, int),
            "Seq {i} is call {i} of the script"
        );
        assert_eq!(
            &got, sent,
            "call {i}: Go's result differs from the Rust server's answer"
        );
        oks += usize::from(got.ok);
        count += 1;
    }
    assert_eq!(count, total, "lines in the results file");
    assert!(total > 65536, "Seq must pass 65535");
    assert!(
        reversed_batches > 100,
        "only {reversed_batches} batches answered out of order"
    );
    eprintln!(
        "go_interop: Go client -> Rust server: {total} calls ({} ok, {} errors; {reversed_batches} \
         batches answered newest first) in {:.1?}",
        oks,
        total - oks,
        started.elapsed()
    );
    let _ = fs::remove_dir_all(&dir);
}

// covers: GOB-6, RPC-2, RPC-4, RPC-5, RPC-7
#[test]
fn the_go_vectors_are_still_what_go_produces() {
    // interop/go/vectors-gen records Go's net/rpc sessions afresh (each in a process of its
    // own) and lays out the go:net/rpc tests of streams.json around them; the stored vectors
    // must be exactly that. UPDATE_VECTORS=1 rewrites them (interop/go/vectors-gen/update.py).
    let Some(gen) = vectors_gen() else { return };
    let out = Command::new(gen).output().expect("run vectors-gen");
    assert!(
        out.status.success(),
        "vectors-gen failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        let mut update = Command::new("python3")
            .arg(root.join("interop/go/vectors-gen/update.py"))
            .stdin(Stdio::piped())
            .spawn()
            .expect("run update.py");
        update.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        assert!(update.wait().unwrap().success(), "update.py failed");
    }
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(root.join("spec/vectors").join(name)).unwrap())
            .unwrap()
    };
    assert_eq!(
        read("rpc-go-sessions.json")["netrpc_sessions"],
        generated["netrpc_sessions"],
        "spec/vectors/rpc-go-sessions.json is not what Go produces (UPDATE_VECTORS=1 rewrites it)"
    );
    let streams = read("streams.json");
    for want in generated["stream_tests"].as_array().unwrap() {
        let stored = streams["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tcId"] == want["tcId"])
            .expect("the test is in streams.json");
        assert_eq!(
            stored, want,
            "streams.json test {} is not what Go produces (UPDATE_VECTORS=1 rewrites it)",
            want["tcId"]
        );
    }
}
