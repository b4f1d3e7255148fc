//! The frame-level relay of the mutants that misbehave on the wire: a pair of threads between
//! the plugin's pipe ends and the host's connection, which pass every frame on unchanged except
//! where the mutant breaks a rule (chapters 02 to 05): a hooks stream announced badly accepted
//! (HS-9), the connection left unread after a frame on stream 0 (HS-8, STREAM-14), API
//! streams shown to the plugin with even ids (STREAM-2, RPC-13), the plugin's first frame
//! taken for the announcement (STREAM-5), streams connected and never read (STREAM-15,
//! STREAM-5), type definitions dropped (GOB-6), and an API stream's gob error ending the
//! connection (GOB-18). Closing either side's ends closes the other's, as with direct pipes
//! (TRANS-8), except that for the mutant that leaves orphans (LIFE-4, LIFE-18, LIFE-19) the
//! plugin's ends are held until the supervisor has forgotten the process ([`Gate`]).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::mpsc::channel;
use std::sync::{Arc, Condvar, Mutex, Weak};

use rpcplugin_codec::frame::{decode_frame, StreamId, MIN_MAX_PAYLOAD};
use rpcplugin_codec::varint;
use rpcplugin_reference_host::supervisor::seams::ConnectionSlot;
use rpcplugin_runtime::connection::Stream;

use crate::Mutant;

/// [`Mutant::EvenApiStream`]: the plugin sees the host's stream `n` (odd) as `n + EVEN_OFFSET`
/// (even), far above the plugin's own even ids.
pub const EVEN_OFFSET: i64 = 1_000_001;

/// [`Mutant::AcceptsBadAnnouncement`]: the even id under which the host sees a hooks stream
/// announced with a zero, odd or negative id.
const SUBSTITUTE_HOOKS: i64 = 1 << 40;

/// [`Mutant::LeavesOrphans`]: where the relay waits, once either side has closed, before it lets
/// go of the plugin's pipe ends: the plugin sees the end of its connection only when the gate
/// is open, that is once the supervisor has forgotten the process (or ended the connection
/// itself without forgetting it). Without the gate, a plugin whose connection the host's
/// runtime ends at once (a bad announcement) could exit, and be reaped, before the supervisor
/// forgot it: the mutant would then not leave the orphan it must leave.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    /// Opens the gate, for good.
    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.opened.notify_all();
    }

    /// Waits until the gate is open.
    fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while !*open {
            open = self.opened.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// How stream ids differ between the two sides of the relay.
#[derive(Debug, Default)]
struct IdMap {
    /// (id on the plugin's side, id on the host's side) of an accepted bad announcement.
    hooks: Option<(i64, i64)>,
    /// The streams the plugin has closed ([`Mutant::EndsConnectionOnApiGobError`]).
    closed_by_plugin: HashSet<i64>,
}

/// Puts a frame-level relay for `mutant` between the plugin's pipe ends (`reader`, `writer`,
/// from the launch) and the host's connection: returns the ends the connection is to use.
/// Closing either side's ends closes the other's, as with direct pipes (TRANS-8), once `gate`
/// is open when there is one. `conn` is where the supervisor puts the connection once it has
/// one ([`Mutant::UnboundedBuffering`] connects streams on it).
pub fn interpose(
    mutant: Mutant,
    reader: OwnedFd,
    writer: OwnedFd,
    conn: ConnectionSlot,
    gate: Option<Arc<Gate>>,
) -> io::Result<(OwnedFd, OwnedFd)> {
    let (host_reader, up) = io::pipe()?;
    let (down, host_writer) = io::pipe()?;
    let map = Arc::new(Mutex::new(IdMap::default()));
    // Dropped by the host-to-plugin relay when the host has closed its pipe: a hanging
    // plugin-to-host relay then lets go too.
    let (host_gone, host_gone_rx) = channel::<()>();
    let m = Arc::clone(&map);
    let up_gate = gate.clone();
    std::thread::Builder::new()
        .name("rpcplugin-mutant-up".into())
        .spawn(move || {
            let (mut from, mut to) = (File::from(reader), up);
            if relay_up(mutant, &mut from, &mut to, &m, &conn) {
                // Both ends stay open, unread, until the host has closed its pipe.
                let _ = host_gone_rx.recv();
            }
            // The host sees the end of the plugin's output at once; the plugin keeps its
            // output open until the gate opens.
            drop(to);
            if let Some(gate) = up_gate {
                gate.wait();
            }
            drop(from);
        })?;
    std::thread::Builder::new()
        .name("rpcplugin-mutant-down".into())
        .spawn(move || {
            let to = File::from(writer);
            relay_down(mutant, down, &to, &map);
            drop(host_gone);
            if let Some(gate) = gate {
                gate.wait();
            }
            drop(to);
        })?;
    Ok((OwnedFd::from(host_reader), OwnedFd::from(host_writer)))
}

fn lock(map: &Mutex<IdMap>) -> std::sync::MutexGuard<'_, IdMap> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends a frame with any stream id, negative ones included.
fn put_frame(out: &mut Vec<u8>, id: i64, payload: &[u8]) {
    varint::encode_to_vec(id, out);
    varint::encode_to_vec(payload.len() as i64, out);
    out.extend_from_slice(payload);
}

/// Plugin to host. Returns true when it stopped reading on purpose ([`Mutant::HangsOnStream0`]),
/// holding both ends until the caller lets go.
fn relay_up(
    mutant: Mutant,
    from: &mut File,
    to: &mut impl Write,
    map: &Mutex<IdMap>,
    conn: &ConnectionSlot,
) -> bool {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut announced = false;
    // Mutant::UnboundedBuffering: the streams it connected (held, never read, until the
    // plugin's output ends), and the hooks stream, which the handshake connects.
    let mut unread = UnreadStreams::default();
    // After bytes the relay cannot frame, everything is passed on as it is: the host's own
    // decoder reports the connection error.
    let mut raw = false;
    // Mutant::AssumesGobIds: the gob messages of each API stream, as they assemble.
    let mut gob_filter: HashMap<i64, GobFilter> = Default::default();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.write_all(&pending);
                return false;
            }
            Ok(n) => n,
        };
        if raw {
            if to.write_all(&buf[..n]).is_err() {
                return false;
            }
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let mut used = 0;
        let mut hang = false;
        loop {
            match decode_frame(&pending[used..], MIN_MAX_PAYLOAD) {
                Ok(Some((frame, len))) => {
                    let id = frame.stream_id.get();
                    let payload = frame.payload;
                    used += len;
                    if id != 0 && !announced && mutant == Mutant::StrictBeforeAnnouncement {
                        // Broken on purpose: this frame is "the announcement" (a payload of
                        // one byte 01: a bad control byte), so the start fails (STREAM-5, H3).
                        announced = true;
                        put_frame(&mut out, 0, &[0x01]);
                        continue;
                    }
                    if id == 0 && !announced {
                        announced = true;
                        let payload = match mutant {
                            Mutant::AcceptsBadAnnouncement => fix_announcement(payload, map),
                            _ => payload.to_vec(),
                        };
                        unread.hooks = announced_hooks(&payload);
                        put_frame(&mut out, 0, &payload);
                        continue;
                    }
                    if id == 0 && mutant == Mutant::HangsOnStream0 {
                        hang = true;
                        break;
                    }
                    let id = match mutant {
                        Mutant::AcceptsBadAnnouncement => match lock(map).hooks {
                            Some((plugin, host)) if plugin == id => host,
                            _ => id,
                        },
                        Mutant::EvenApiStream if id > EVEN_OFFSET && id % 2 == 0 => {
                            id - EVEN_OFFSET
                        }
                        _ => id,
                    };
                    if mutant == Mutant::UnboundedBuffering && announced && !payload.is_empty() {
                        // Before the frame reaches the host: the connection buffers it.
                        unread.connect(id, conn);
                    }
                    if payload.is_empty() {
                        lock(map).closed_by_plugin.insert(id);
                    }
                    if mutant == Mutant::AssumesGobIds && id % 2 == 1 && !payload.is_empty() {
                        // An API stream (the host's odd ids): its definitions of other ids
                        // than Go's usual ones are dropped on the way (GOB-6 broken).
                        let kept = gob_filter.entry(id).or_default().push(payload);
                        if !kept.is_empty() {
                            put_frame(&mut out, id, &kept);
                        }
                        continue;
                    }
                    put_frame(&mut out, id, payload);
                }
                Ok(None) => break,
                Err(_) => {
                    out.extend_from_slice(&pending[used..]);
                    used = pending.len();
                    raw = true;
                    break;
                }
            }
        }
        pending.drain(..used);
        if to.write_all(&out).is_err() {
            return false;
        }
        if hang {
            // Stop reading: nothing more reaches the host, not even end-of-file.
            return true;
        }
    }
}

/// [`Mutant::AssumesGobIds`]: the gob messages of one API stream, as they assemble; the
/// definitions of other ids than 65, 66 and 67 are dropped, everything else is passed on.
#[derive(Default)]
struct GobFilter {
    pending: Vec<u8>,
    /// After bytes that are not gob messages, everything is passed on as it is.
    raw: bool,
}

impl GobFilter {
    /// Takes a frame's payload; returns what to pass on.
    fn push(&mut self, payload: &[u8]) -> Vec<u8> {
        if self.raw {
            return payload.to_vec();
        }
        self.pending.extend_from_slice(payload);
        let mut kept = Vec::new();
        while let Some((len, at)) = gob_uint(&self.pending) {
            let Some(end) = usize::try_from(len).ok().and_then(|l| at.checked_add(l)) else {
                self.raw = true;
                kept.append(&mut self.pending);
                break;
            };
            if end > self.pending.len() {
                break;
            }
            let body = &self.pending[at..end];
            // A definition starts with a negative type id: a gob int, zigzag on a gob uint.
            let defines = gob_uint(body)
                .map(|(u, _)| if u & 1 == 1 { Some((u >> 1) + 1) } else { None })
                .and_then(|d| d);
            let usual = matches!(defines, None | Some(65..=67));
            if usual {
                kept.extend_from_slice(&self.pending[..end]);
            }
            self.pending.drain(..end);
        }
        kept
    }
}

/// A gob uint at the start of `bytes`: its value and its length; `None` if incomplete or
/// malformed.
fn gob_uint(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    if first < 0x80 {
        return Some((u64::from(first), 1));
    }
    let n = usize::from(first.wrapping_neg());
    if n > 8 || bytes.len() < 1 + n {
        return None;
    }
    let value = bytes[1..=n]
        .iter()
        .fold(0u64, |v, b| (v << 8) | u64::from(*b));
    Some((value, 1 + n))
}

/// [`Mutant::UnboundedBuffering`]: the streams the broken host connected and never reads.
#[derive(Default)]
struct UnreadStreams {
    /// The announced hooks stream, which the handshake connects (and the host reads).
    hooks: Option<i64>,
    /// The stream ids already seen (connected, or not connectable).
    seen: HashSet<i64>,
    /// The streams connected: holding them keeps them open, their data buffered.
    held: Vec<Stream>,
}

impl UnreadStreams {
    /// Connects the plugin's stream `id` on the host's connection, unless it is the hooks
    /// stream or was seen before. Before the connection exists, the frame is discarded.
    fn connect(&mut self, id: i64, conn: &ConnectionSlot) {
        if id <= 0 || id % 2 != 0 || Some(id) == self.hooks || self.seen.contains(&id) {
            return;
        }
        let Some(conn) = conn.get().and_then(Weak::upgrade) else {
            return;
        };
        self.seen.insert(id);
        if let Some(stream) = StreamId::new(id).and_then(|id| conn.connect_stream(id).ok()) {
            self.held.push(stream);
        }
    }
}

/// The hooks stream id an announcement's payload names, if it names one.
fn announced_hooks(payload: &[u8]) -> Option<i64> {
    let (_, rest) = payload.split_first()?;
    varint::decode(rest).ok().map(|(id, _)| id)
}

/// [`Mutant::AcceptsBadAnnouncement`]: the announcement the host is shown instead of a bad
/// one, recording the id mapping it needs. Payloads whose varint cannot be read at all are
/// passed on unchanged (the host rejects them).
fn fix_announcement(payload: &[u8], map: &Mutex<IdMap>) -> Vec<u8> {
    let Some((_, rest)) = payload.split_first() else {
        return payload.to_vec();
    };
    let Ok((id, _)) = varint::decode(rest) else {
        return payload.to_vec();
    };
    let host_id = if id > 0 && id % 2 == 0 {
        id
    } else {
        lock(map).hooks = Some((id, SUBSTITUTE_HOOKS));
        SUBSTITUTE_HOOKS
    };
    let mut fixed = vec![0u8];
    varint::encode_to_vec(host_id, &mut fixed);
    fixed
}

/// Host to plugin: the host is conforming, so its frames always decode.
fn relay_down(mutant: Mutant, mut from: impl Read, mut to: &File, map: &Mutex<IdMap>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let mut used = 0;
        while let Ok(Some((frame, len))) = decode_frame(&pending[used..], MIN_MAX_PAYLOAD) {
            used += len;
            let id = frame.stream_id.get();
            if mutant == Mutant::EndsConnectionOnApiGobError
                && id % 2 == 1
                && frame.payload.is_empty()
                && !lock(map).closed_by_plugin.contains(&id)
            {
                // Broken on purpose: the host closing an API stream the plugin had not closed
                // (a gob error of that stream, GOB-18) ends the whole connection instead.
                let _ = to.write_all(&out);
                return;
            }
            let id = match mutant {
                Mutant::AcceptsBadAnnouncement => match lock(map).hooks {
                    Some((plugin, host)) if host == id => plugin,
                    _ => id,
                },
                Mutant::EvenApiStream if id % 2 == 1 => id + EVEN_OFFSET,
                _ => id,
            };
            put_frame(&mut out, id, frame.payload);
        }
        pending.drain(..used);
        if to.write_all(&out).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_announcements_are_fixed_and_mapped() {
        let map = Mutex::new(IdMap::default());
        // Control byte 0x01, hooks stream 2: only the byte changes.
        assert_eq!(fix_announcement(&[1, 4], &map), vec![0, 4]);
        assert!(lock(&map).hooks.is_none());
        // Hooks stream 1 (odd): shown as the substitute, mapped back.
        let fixed = fix_announcement(&[0, 2], &map);
        let mut want = vec![0];
        varint::encode_to_vec(SUBSTITUTE_HOOKS, &mut want);
        assert_eq!(fixed, want);
        assert_eq!(lock(&map).hooks, Some((1, SUBSTITUTE_HOOKS)));
        // Trailing bytes are dropped.
        assert_eq!(fix_announcement(&[0, 4, 9], &map), vec![0, 4]);
        // No varint at all: unchanged.
        assert_eq!(fix_announcement(&[0], &map), vec![0]);
        assert_eq!(fix_announcement(&[0, 0x80], &map), vec![0, 0x80]);
    }

    #[test]
    fn the_announced_hooks_stream_is_read() {
        assert_eq!(announced_hooks(&[0, 4]), Some(2));
        assert_eq!(announced_hooks(&[0]), None);
        assert_eq!(announced_hooks(&[]), None);
    }
}
