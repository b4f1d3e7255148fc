//! The deliberately broken subjects the harness proves its cases against (spec/harness.md
//! section 7), as far as the harness knows them: for each, the cases that must catch it and the
//! requirement they must name. The plugin mutants are the agent's own
//! ([`crate::agent::MUTANTS`]). The host mutants are test equipment outside the harness: the
//! binary `rpcplugin-mutant-host` (crate `rpcplugin-host-mutants`, next to this binary as the
//! reference host is) runs each as `rpcplugin-mutant-host driver --mutant NAME` and lists them
//! all with `rpcplugin-mutant-host list --format json`: their names, the requirements they
//! break and what they do wrong. That list is the one list of host mutants; this module reads
//! it at run time ([`host_mutants`]) and joins it with what the harness knows of each,
//! [`HOST_CATCHES`], refusing a list that is not exactly the mutants it knows.

use std::path::{Path, PathBuf};
use std::process::Command;

use rpcplugin_codec::req;
use serde::{Deserialize, Serialize};

/// The binary of the host mutants.
pub const MUTANT_HOST: &str = "rpcplugin-mutant-host";

/// The `schema` of the list `rpcplugin-mutant-host list --format json` prints.
pub const LIST_SCHEMA: &str = "rpcplugin-host-mutants/v1";

/// What the harness knows of a host mutant: the cases that must catch it.
#[derive(Debug, Clone, Copy)]
pub struct HostCatch {
    /// The mutant's name (`rpcplugin-mutant-host driver --mutant NAME`).
    pub name: &'static str,
    /// Each of these cases must not pass against it, and must name this requirement (or one
    /// of these `|`-separated alternatives).
    pub caught_by: &'static [(&'static str, &'static str)],
}

/// A host mutant as `rpcplugin-mutant-host list --format json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedHostMutant {
    /// Its name.
    pub name: String,
    /// The requirements it breaks.
    pub breaks: Vec<String>,
    /// What it does wrong.
    pub description: String,
}

/// The list `rpcplugin-mutant-host list --format json` prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct List {
    schema: String,
    mutants: Vec<ListedHostMutant>,
}

/// A broken host of the self-test: the binary's entry, and the cases that must catch it.
#[derive(Debug, Clone)]
pub struct HostMutant {
    /// Its name, the requirements it breaks and what it does wrong, from the binary's list.
    pub listed: ListedHostMutant,
    /// The cases that must catch it, from [`HOST_CATCHES`].
    pub caught_by: &'static [(&'static str, &'static str)],
}

/// `rpcplugin-mutant-host` next to the running program (where `cargo build` puts it, with the
/// reference host and the harness), or why it is not there.
pub fn find_mutant_host() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find this program's own path: {e}"))?;
    let path = exe
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(MUTANT_HOST);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the host mutants' binary {MUTANT_HOST} is not at {} (it is test equipment, built \
             next to the harness by `cargo build -p rpcplugin-host-mutants`; the self-test runs \
             each host mutant as `{MUTANT_HOST} driver --mutant NAME`)",
            path.display()
        ))
    }
}

/// The host mutants: `program list --format json` (the mutant host binary's list), joined
/// with [`HOST_CATCHES`] in the list's order.
pub fn host_mutants(program: &Path) -> Result<Vec<HostMutant>, String> {
    let out = Command::new(program)
        .args(["list", "--format", "json"])
        .output()
        .map_err(|e| format!("cannot run {} list: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} list --format json failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let listed = parse_list(&out.stdout)
        .map_err(|e| format!("{} list --format json: {e}", program.display()))?;
    join(listed)
}

/// The mutants of a list in the format of `rpcplugin-mutant-host list --format json` (schema
/// [`LIST_SCHEMA`]).
pub fn parse_list(json: &[u8]) -> Result<Vec<ListedHostMutant>, String> {
    let list: List =
        serde_json::from_slice(json).map_err(|e| format!("not the list of host mutants: {e}"))?;
    if list.schema != LIST_SCHEMA {
        return Err(format!(
            "the list has schema {:?}, not {LIST_SCHEMA:?}",
            list.schema
        ));
    }
    Ok(list.mutants)
}

/// Each listed mutant with the cases that must catch it; an error, naming every difference,
/// unless the list names exactly the mutants of [`HOST_CATCHES`], each once.
pub fn join(listed: Vec<ListedHostMutant>) -> Result<Vec<HostMutant>, String> {
    let mut problems = Vec::new();
    for (i, m) in listed.iter().enumerate() {
        if listed[..i].iter().any(|earlier| earlier.name == m.name) {
            problems.push(format!("{} is listed twice", m.name));
        } else if !HOST_CATCHES.iter().any(|c| c.name == m.name) {
            problems.push(format!(
                "{} has no cases that must catch it (add it to HOST_CATCHES in \
                 conformance/src/mutants.rs)",
                m.name
            ));
        }
    }
    for c in HOST_CATCHES {
        if !listed.iter().any(|m| m.name == c.name) {
            problems.push(format!(
                "{} has cases that must catch it, but the binary does not list it",
                c.name
            ));
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "the host mutants of {MUTANT_HOST} and of the harness differ: {}",
            problems.join("; ")
        ));
    }
    Ok(listed
        .into_iter()
        .map(|listed| HostMutant {
            caught_by: HOST_CATCHES
                .iter()
                .find(|c| c.name == listed.name)
                .map_or(&[][..], |c| c.caught_by),
            listed,
        })
        .collect())
}

/// The cases that must catch each host mutant, with the requirement they must name.
pub static HOST_CATCHES: &[HostCatch] = &[
    HostCatch {
        name: "never-restarts",
        caught_by: &[("host/restart/crash-after-activation", req!("LIFE-6"))],
    },
    HostCatch {
        name: "restarts-without-delay",
        caught_by: &[("host/restart/crash-after-activation", req!("LIFE-8"))],
    },
    HostCatch {
        name: "ignores-start-timeout",
        caught_by: &[("host/start/timeout", req!("HS-4"))],
    },
    HostCatch {
        name: "leaves-orphans",
        caught_by: &[
            ("host/start/timeout", req!("LIFE-4")),
            ("host/handshake/bad-control-byte", req!("LIFE-4")),
        ],
    },
    HostCatch {
        name: "hangs-on-stream-0",
        caught_by: &[("host/robustness/stream-0-after-handshake", req!("HS-8"))],
    },
    HostCatch {
        name: "accepts-bad-announcement",
        caught_by: &[("host/handshake/odd-hooks-stream", req!("HS-9"))],
    },
    HostCatch {
        name: "no-reactivation",
        caught_by: &[("host/restart/crash-after-activation", req!("LIFE-11"))],
    },
    HostCatch {
        name: "kills-without-deactivate",
        caught_by: &[(
            "host/stop/deactivates-then-ends-connection",
            req!("LIFE-16"),
        )],
    },
    HostCatch {
        name: "even-api-stream",
        caught_by: &[(
            "host/lifecycle/start-activate-deactivate-stop",
            req!("STREAM-2"),
        )],
    },
    HostCatch {
        name: "no-stop-grace",
        caught_by: &[("host/stop/kills-after-grace", req!("LIFE-17"))],
    },
    HostCatch {
        name: "leaks-descriptor",
        caught_by: &[("host/transport/descriptors", req!("TRANS-4"))],
    },
    HostCatch {
        name: "inherits-stdin",
        caught_by: &[("host/transport/stdin-is-dev-null", req!("TRANS-6"))],
    },
    HostCatch {
        name: "short-start-timeout",
        caught_by: &[("host/start/late-announcement", req!("HS-4"))],
    },
    HostCatch {
        name: "waits-out-early-exit",
        caught_by: &[("host/start/eof-before-announcement", req!("HS-6"))],
    },
    HostCatch {
        name: "forgets-failed-start",
        caught_by: &[("host/start/stop-after-failed-start", req!("LIFE-20"))],
    },
    HostCatch {
        name: "forgets-stopped-plugin",
        caught_by: &[("host/stop/twice", req!("LIFE-20"))],
    },
    HostCatch {
        name: "stop-leaves-relaunch",
        caught_by: &[("host/stop/during-backoff", req!("LIFE-22"))],
    },
    HostCatch {
        name: "start-survives-stop",
        caught_by: &[("host/stop/during-start", req!("LIFE-23"))],
    },
    HostCatch {
        name: "guesses-executable",
        caught_by: &[("host/bundle/refused-without-launching", req!("LIFE-2"))],
    },
    HostCatch {
        name: "escapes-bundle",
        caught_by: &[("host/bundle/executable-stays-inside", req!("LIFE-3"))],
    },
    HostCatch {
        name: "unbounded-buffering",
        caught_by: &[("host/robustness/flood-on-unread-stream", req!("STREAM-15"))],
    },
    HostCatch {
        name: "clips-configuration",
        caught_by: &[("host/rpc/oversized-configuration", req!("RPC-18"))],
    },
    HostCatch {
        name: "passes-inherited-descriptors",
        caught_by: &[("host/transport/descriptors", req!("TRANS-4"))],
    },
    HostCatch {
        name: "shared-process-group",
        caught_by: &[("host/transport/own-process-group", req!("TRANS-13"))],
    },
    HostCatch {
        name: "relaunches-after-failed-start",
        caught_by: &[(
            "host/start/no-relaunch-after-bad-announcement",
            req!("LIFE-5"),
        )],
    },
    HostCatch {
        name: "waits-for-failed-plugin",
        caught_by: &[("host/start/failed-plugin-is-killed", req!("LIFE-4"))],
    },
    HostCatch {
        name: "reencodes-configuration",
        caught_by: &[(
            "host/lifecycle/start-activate-deactivate-stop",
            req!("RPC-18"),
        )],
    },
    HostCatch {
        name: "reactivates-with-first-configuration",
        caught_by: &[(
            "host/restart/reactivates-with-last-configuration",
            req!("LIFE-11"),
        )],
    },
    HostCatch {
        name: "relaunches-while-alive",
        caught_by: &[("host/restart/one-process-at-a-time", req!("LIFE-7"))],
    },
    HostCatch {
        name: "no-gob-limit",
        caught_by: &[("host/robustness/gob-flood-on-api-stream", req!("GOB-19"))],
    },
    HostCatch {
        name: "strict-before-announcement",
        caught_by: &[("host/handshake/data-before-announcement", req!("STREAM-5"))],
    },
    HostCatch {
        name: "assumes-gob-ids",
        caught_by: &[("host/rpc-vector/tc-07", req!("RPC-3"))],
    },
    HostCatch {
        name: "ends-connection-on-api-gob-error",
        caught_by: &[("host/rpc-vector/tc-13", req!("GOB-18"))],
    },
    HostCatch {
        name: "launch-failure-is-a-crash",
        caught_by: &[("host/start/launch-fails", req!("LIFE-5"))],
    },
    HostCatch {
        name: "uncapped-backoff",
        caught_by: &[("host/restart/backoff-capped", req!("LIFE-9"))],
    },
    HostCatch {
        name: "backoff-never-resets",
        caught_by: &[("host/restart/backoff-resets", req!("LIFE-10"))],
    },
    HostCatch {
        name: "passes-arguments",
        caught_by: &[("host/transport/arguments-and-signals", req!("TRANS-14"))],
    },
    HostCatch {
        name: "blocks-signals",
        caught_by: &[("host/transport/arguments-and-signals", req!("TRANS-15"))],
    },
    HostCatch {
        name: "ignores-sigpipe",
        caught_by: &[("host/transport/arguments-and-signals", req!("TRANS-16"))],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str) -> ListedHostMutant {
        ListedHostMutant {
            name: name.into(),
            breaks: vec![req!("LIFE-8").into()],
            description: "broken".into(),
        }
    }

    #[test]
    fn the_list_must_be_exactly_the_known_mutants() {
        let all: Vec<ListedHostMutant> = HOST_CATCHES.iter().map(|c| listed(c.name)).collect();
        let joined = join(all.clone()).unwrap();
        assert_eq!(joined.len(), HOST_CATCHES.len());
        for (m, c) in joined.iter().zip(HOST_CATCHES) {
            assert_eq!(m.listed.name, c.name);
            assert_eq!(m.caught_by, c.caught_by);
        }
        let mut unknown = all.clone();
        unknown.push(listed("flies-away"));
        let e = join(unknown).unwrap_err();
        assert!(
            e.contains("flies-away has no cases that must catch it"),
            "{e}"
        );
        let missing = all[1..].to_vec();
        let e = join(missing).unwrap_err();
        assert!(
            e.contains(&format!(
                "{} has cases that must catch it, but",
                HOST_CATCHES[0].name
            )),
            "{e}"
        );
        let mut twice = all.clone();
        twice.push(all[0].clone());
        assert!(join(twice).unwrap_err().contains("listed twice"));
    }

    #[test]
    fn lists_of_another_schema_are_refused() {
        let good = br#"{"schema": "rpcplugin-host-mutants/v1", "mutants": [
            {"name": "m", "breaks": ["HS-4"], "description": "d"}]}"#;
        assert_eq!(
            parse_list(good).unwrap(),
            vec![ListedHostMutant {
                name: "m".into(),
                breaks: vec!["HS-4".into()],
                description: "d".into(),
            }]
        );
        assert!(parse_list(br#"{"schema": "v2", "mutants": []}"#)
            .unwrap_err()
            .contains("not \"rpcplugin-host-mutants/v1\""));
        assert!(parse_list(b"never-restarts LIFE-8").is_err());
    }
}
