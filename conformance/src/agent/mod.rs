//! The agent: a small plugin built on the codec alone (one thread, one event loop), which the
//! harness runs as `rpcplugin-conformance agent`. It serves `LocalHooks` as protocol 1 says,
//! unless its [`Behaviour`] tells it to break a rule: the harness's mutants are agents with one
//! misbehaviour each ([`MUTANTS`]), and the self-tests check that every mutant fails the cases
//! meant to catch it (with the requirement it breaks) while the well-behaved agent passes them
//! all.
//!
//! Its input goes through a filter before the stream table sees it (that is where the framing
//! mutants live: accepting negative lengths, having no payload limit, ignoring close frames,
//! dropping first frames, freezing on stream 0), and its output through another (non-minimal
//! varints, interleaved frames).
//!
//! One concern per file:
//!
//! - `behaviour`: [`Behaviour`], what an agent does, and its gob limits;
//! - `mutants`: [`MUTANTS`], the named misbehaviours and the cases that must catch them;
//! - `event_loop`: [`run`] and the agent's event loop, the announcement, crashes;
//! - `control`: [`run_controlled`], the control socket to the harness of a host case (its
//!   [`Order`]s and the agent's reports) and the observer of what the host writes;
//! - `hooks`: the `LocalHooks` server and the `LocalAPI` client;
//! - `filters`: the input and output frame filters (the framing mutants).
//!
//! This file holds the agent's state (`Agent`), which each of them extends with its methods.

mod behaviour;
mod control;
mod event_loop;
mod filters;
mod hooks;
mod mutants;

use std::collections::BTreeSet;
use std::fs::File;
use std::time::Instant;

use rpcplugin_codec::frame::StreamId;
use rpcplugin_codec::gob::Decoder;
use rpcplugin_codec::rpc::ServerCodec;
use rpcplugin_codec::stream::{Role, StreamTable};
use rpcplugin_codec::trace::Tracer;

pub use behaviour::{Behaviour, Crash, CrashWhen};
pub use control::{
    mono_ns, run_controlled, AgentHello, InheritedFd, Order, SIGBLK_VAR, SIGIGN_VAR,
};
pub use event_loop::{run, AgentEnd};
pub use mutants::{mutant, Mutant, MUTANTS};

use behaviour::gob_limits;
use control::Control;
use event_loop::Timer;
use filters::InputFilter;
use hooks::ApiClient;

/// A running agent: its behaviour, its pipes, its protocol state and what it has seen.
struct Agent {
    b: Behaviour,
    input: File,
    output: File,
    table: StreamTable,
    hooks: StreamId,
    hooks_server: ServerCodec,
    hooks_broken: bool,
    /// The current activation's API stream and its client.
    api: Option<ApiClient>,
    /// Every API stream id connected so far (RPC-14).
    last_api: i64,
    filter: InputFilter,
    child: Option<std::process::Child>,
    /// The harness's control socket, for host cases.
    control: Option<Control>,
    /// The observer of the host's output.
    host_trace: Tracer,
    /// Data streams the agent has written data on (STREAM-6 at the host).
    wrote_on: BTreeSet<StreamId>,
    /// The API stream ids the host named, in order (STREAM-3, RPC-13 at the host).
    api_ids: Vec<i64>,
    /// What is due when.
    timers: Vec<(Instant, Timer)>,
    reading: bool,
    output_open: bool,
}

impl Agent {
    fn new(b: Behaviour, input: File, output: File) -> Agent {
        let hooks_limits = gob_limits(&b);
        Agent {
            filter: InputFilter::new(&b),
            b,
            input,
            output,
            table: StreamTable::new(Role::Plugin),
            hooks: StreamId::new(2).expect("positive"),
            hooks_server: ServerCodec::with_decoder(Decoder::with_limits(hooks_limits)),
            hooks_broken: false,
            api: None,
            last_api: 0,
            child: None,
            control: None,
            host_trace: Tracer::new(Role::Host),
            wrote_on: BTreeSet::new(),
            api_ids: Vec::new(),
            timers: Vec::new(),
            reading: true,
            output_open: true,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // The leftover child is left running on purpose (TRANS-11 broken).
        if let Some(child) = self.child.take() {
            std::mem::forget(child);
        }
    }
}
