//! What the integration tests share beyond `rpcplugin-test-support` (which builds the reference
//! binaries): reading the harness's JSON report.

/// The JSON document a run of the harness printed; a panic shows both outputs if it is not one.
#[allow(dead_code)]
pub fn json_stdout(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON document ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
