//! `host/bundle/...`: bundles the host must refuse without launching anything (spec 06 section
//! 6.2): no or a malformed `plugin.json`, no executable, or an executable outside the bundle.
//!
//! Requirements: LIFE-2, LIFE-3.

use std::time::Duration;

use serde_json::json;

use super::helpers::{must_fail, SHORT_START};
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

case!(
    REFUSED_WITHOUT_LAUNCHING: host "host/bundle/refused-without-launching",
    ["LIFE-2"],
    bad_bundles(false),
    "bundles without plugin.json, with a manifest that is not an object, or without backend.executable are refused without launching anything"
);

case!(
    EXECUTABLE_STAYS_INSIDE: host "host/bundle/executable-stays-inside",
    ["LIFE-3"],
    bad_bundles(true),
    "an absolute backend.executable or one with a .. component is refused"
);

fn bad_bundles(h: &mut HostUnderTest, inside: bool) -> Result<(), Outcome> {
    let dir = h.dir().to_path_buf();
    let agent = h.bundle().join("agent");
    let manifests: Vec<(&str, Option<String>)> = if inside {
        vec![
            (
                "absolute",
                Some(
                    json!({"id": "x", "backend": {"executable": agent.display().to_string()}})
                        .to_string(),
                ),
            ),
            (
                "dotdot",
                Some(json!({"id": "x", "backend": {"executable": "../bundle/agent"}}).to_string()),
            ),
        ]
    } else {
        vec![
            ("no-manifest", None),
            ("not-an-object", Some("[1, 2, 3]".to_string())),
            ("no-backend", Some(json!({"id": "x"}).to_string())),
            (
                "empty-executable",
                Some(json!({"id": "x", "backend": {"executable": ""}}).to_string()),
            ),
        ]
    };
    let requirement = if inside {
        req!("LIFE-3")
    } else {
        req!("LIFE-2")
    };
    for (i, (name, manifest)) in manifests.iter().enumerate() {
        let bundle = dir.join(format!("bad-{name}"));
        let _ = std::fs::create_dir_all(&bundle);
        let _ = std::fs::copy(&agent, bundle.join("agent"));
        if let Some(m) = manifest {
            let _ = std::fs::write(bundle.join("plugin.json"), m);
        }
        let plugin = format!("bad{i}");
        let args = json!({
            "plugin": plugin,
            "bundle": bundle.display().to_string(),
            "start_timeout_ms": h.scaled(SHORT_START).as_millis() as u64,
        });
        let r = h.call("start", args, SHORT_START + REPLY_TIMEOUT);
        must_fail(
            h,
            r,
            requirement,
            &format!("the start refused for the bundle {name}"),
        )?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let n = h.launches().len();
    if n > 0 {
        return Err(h.fail(
            requirement,
            "nothing launched from a refused bundle",
            &format!("{n} launch(es)"),
        ));
    }
    Ok(())
}
