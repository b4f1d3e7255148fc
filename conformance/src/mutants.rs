//! The deliberately broken subjects the harness proves its cases against: the agent's plugin
//! mutants ([`crate::agent::MUTANTS`]) and the reference host's host mutants
//! (`rpcplugin-reference-host driver --mutant NAME`), each with the cases that must catch it and
//! the requirement they must name.

/// A broken host: a mutant of the reference host's driver.
#[derive(Debug, Clone, Copy)]
pub struct HostMutant {
    /// Its name (`rpcplugin-reference-host driver --mutant NAME`).
    pub name: &'static str,
    /// What it does wrong.
    pub description: &'static str,
    /// Each of these cases must not pass against it, and must name this requirement.
    pub caught_by: &'static [(&'static str, &'static str)],
}

/// The reference host's mutants.
pub static HOST_MUTANTS: &[HostMutant] = &[
    HostMutant {
        name: "never-restarts",
        description: "does not relaunch a crashed plugin",
        caught_by: &[("host/restart/crash-after-activation", "LIFE-6")],
    },
    HostMutant {
        name: "restarts-without-delay",
        description: "relaunches a crashed plugin at once",
        caught_by: &[("host/restart/crash-after-activation", "LIFE-8")],
    },
    HostMutant {
        name: "ignores-start-timeout",
        description: "waits for the announcement forever",
        caught_by: &[("host/start/timeout", "HS-4")],
    },
    HostMutant {
        name: "leaves-orphans",
        description: "neither kills nor reaps the plugin after a failed start or a stop",
        caught_by: &[
            ("host/start/timeout", "LIFE-4"),
            ("host/handshake/bad-control-byte", "LIFE-4"),
        ],
    },
    HostMutant {
        name: "hangs-on-stream-0",
        description: "stops reading the connection at a stream-0 frame after the handshake",
        caught_by: &[("host/robustness/stream-0-after-handshake", "HS-8")],
    },
    HostMutant {
        name: "accepts-bad-announcement",
        description: "accepts an odd or zero hooks stream id, a bad control byte, trailing bytes",
        caught_by: &[("host/handshake/odd-hooks-stream", "HS-9")],
    },
    HostMutant {
        name: "no-reactivation",
        description: "does not activate a relaunched plugin again",
        caught_by: &[("host/restart/crash-after-activation", "LIFE-11")],
    },
    HostMutant {
        name: "kills-without-deactivate",
        description: "stops by SIGKILL at once, without OnDeactivate or closing the pipes first",
        caught_by: &[("host/stop/deactivates-then-ends-connection", "LIFE-16")],
    },
    HostMutant {
        name: "even-api-stream",
        description: "opens API streams with even ids, the plugin's",
        caught_by: &[("host/lifecycle/start-activate-deactivate-stop", "STREAM-2")],
    },
    HostMutant {
        name: "no-stop-grace",
        description: "kills the plugin as soon as it has closed the pipes",
        caught_by: &[("host/stop/kills-after-grace", "LIFE-17")],
    },
    HostMutant {
        name: "leaks-descriptor",
        description: "lets the plugin inherit a descriptor opened without close-on-exec",
        caught_by: &[("host/transport/descriptors", "TRANS-4")],
    },
    HostMutant {
        name: "inherits-stdin",
        description: "gives the plugin the host's own standard input, not /dev/null",
        caught_by: &[("host/transport/stdin-is-dev-null", "TRANS-6")],
    },
    HostMutant {
        name: "short-start-timeout",
        description: "waits at most 250 ms for the announcement, whatever the start timeout",
        caught_by: &[("host/start/late-announcement", "HS-4")],
    },
    HostMutant {
        name: "waits-out-early-exit",
        description: "fails the start of a plugin that exits before announcing only at the timeout",
        caught_by: &[("host/start/eof-before-announcement", "HS-6")],
    },
    HostMutant {
        name: "forgets-failed-start",
        description: "forgets a plugin whose start failed, refusing the stop that follows",
        caught_by: &[("host/start/stop-after-failed-start", "LIFE-20")],
    },
    HostMutant {
        name: "forgets-stopped-plugin",
        description: "forgets a plugin once it is stopped, refusing a second stop",
        caught_by: &[("host/stop/twice", "LIFE-20")],
    },
    HostMutant {
        name: "stop-leaves-relaunch",
        description:
            "a stop during the restart delay returns, but the relaunch still comes after it",
        caught_by: &[("host/stop/during-backoff", "LIFE-22")],
    },
    HostMutant {
        name: "start-survives-stop",
        description: "answers a start that a stop cancelled as a success",
        caught_by: &[("host/stop/during-start", "LIFE-23")],
    },
    HostMutant {
        name: "guesses-executable",
        description: "launches a bundle with no usable manifest: its first executable file",
        caught_by: &[("host/bundle/refused-without-launching", "LIFE-2")],
    },
    HostMutant {
        name: "escapes-bundle",
        description: "launches an absolute backend.executable, or one with a .. component",
        caught_by: &[("host/bundle/executable-stays-inside", "LIFE-3")],
    },
    HostMutant {
        name: "unbounded-buffering",
        description:
            "connects each stream the plugin writes on and buffers it unread, without limit",
        caught_by: &[("host/robustness/flood-on-unread-stream", "STREAM-15")],
    },
    HostMutant {
        name: "clips-configuration",
        description:
            "cuts a configuration too long for one gob message to fit, sending broken JSON",
        caught_by: &[("host/rpc/oversized-configuration", "RPC-18")],
    },
    HostMutant {
        name: "passes-inherited-descriptors",
        description: "passes the descriptors it inherited itself on to the plugin, as the seed",
        caught_by: &[("host/transport/descriptors", "TRANS-4")],
    },
    HostMutant {
        name: "shared-process-group",
        description: "leaves the plugin in the host's process group: Ctrl-C kills it too",
        caught_by: &[("host/transport/own-process-group", "TRANS-13")],
    },
    HostMutant {
        name: "relaunches-after-failed-start",
        description: "relaunches the plugin every second after a failed start, as the seed",
        caught_by: &[("host/start/no-relaunch-after-bad-announcement", "LIFE-5")],
    },
    HostMutant {
        name: "waits-for-failed-plugin",
        description: "after a failed start, waits for the plugin to exit instead of killing it",
        caught_by: &[("host/start/failed-plugin-is-killed", "LIFE-4")],
    },
    HostMutant {
        name: "reencodes-configuration",
        description: "decodes and re-encodes the configuration, as the seed's json.Marshal",
        caught_by: &[("host/lifecycle/start-activate-deactivate-stop", "RPC-18")],
    },
    HostMutant {
        name: "reactivates-with-first-configuration",
        description: "re-activates a relaunched plugin with its first configuration, not its last",
        caught_by: &[(
            "host/restart/reactivates-with-last-configuration",
            "LIFE-11",
        )],
    },
    HostMutant {
        name: "relaunches-while-alive",
        description: "relaunches after a crash while the crashed process still runs",
        caught_by: &[("host/restart/one-process-at-a-time", "LIFE-7")],
    },
    HostMutant {
        name: "no-gob-limit",
        description: "believes any gob message Length and buffers the message",
        caught_by: &[("host/robustness/gob-flood-on-api-stream", "GOB-19")],
    },
    HostMutant {
        name: "strict-before-announcement",
        description: "takes the plugin's first frame for the announcement, whatever its stream",
        caught_by: &[("host/handshake/data-before-announcement", "STREAM-5")],
    },
    HostMutant {
        name: "assumes-gob-ids",
        description: "its API servers ignore type definitions beyond Go's usual ids 65 to 67",
        caught_by: &[("host/rpc-vector/tc-07", "RPC-3")],
    },
    HostMutant {
        name: "ends-connection-on-api-gob-error",
        description: "a gob error on an API stream ends the whole connection",
        caught_by: &[("host/rpc-vector/tc-13", "GOB-18")],
    },
    HostMutant {
        name: "launch-failure-is-a-crash",
        description: "a start whose launch fails goes on with a backoff and relaunches",
        caught_by: &[("host/start/launch-fails", "LIFE-5")],
    },
    HostMutant {
        name: "uncapped-backoff",
        description: "the restart delay doubles after each failure in a row, with no longest delay",
        caught_by: &[("host/restart/backoff-capped", "LIFE-9")],
    },
    HostMutant {
        name: "backoff-never-resets",
        description: "the failures in a row never go back to zero, however long the plugin ran",
        caught_by: &[("host/restart/backoff-resets", "LIFE-10")],
    },
    HostMutant {
        name: "passes-arguments",
        description: "starts the plugin with its id as a command-line argument",
        caught_by: &[("host/transport/arguments-and-signals", "TRANS-14")],
    },
    HostMutant {
        name: "blocks-signals",
        description: "starts the plugin with SIGCHLD and SIGTERM blocked",
        caught_by: &[("host/transport/arguments-and-signals", "TRANS-15")],
    },
    HostMutant {
        name: "ignores-sigpipe",
        description: "starts the plugin with SIGPIPE ignored",
        caught_by: &[("host/transport/arguments-and-signals", "TRANS-16")],
    },
];
