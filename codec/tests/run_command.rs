//! The codec example the README names (`cargo run -p rpcplugin-codec --example decode-vectors`) decodes
//! every vector file and exits 0: a new vector file or schema cannot silently break it.

use std::process::Command;

#[test]
fn the_decode_vectors_example_decodes_every_vector_file() {
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "-p",
            "rpcplugin-codec",
            "--example",
            "decode-vectors",
            "--",
            "-q",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.ends_with(" 0 mismatches"), "{summary}");
    let files = std::fs::read_dir(rpcplugin_test_support::vectors::vectors_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(files >= 6, "{files} vector files");
    assert!(!summary.contains("could not be used"), "{summary}");
}
