//! # rpcplugin-conformance
//!
//! The conformance harness for the rpcplugin wire protocol: it plays the host against a plugin
//! executable it knows nothing about, runs a catalog of [`cases`], and reports which
//! requirements of `spec/requirements.json` the plugin meets. `spec/harness.md` states what the
//! harness promises: its command line, exit codes, and the formats of its reports, replay files
//! and expected-failure lists; `spec/07-conformance.md` the driver contract of host tests.
//!
//! - [`requirements`]: the specification's requirements, embedded at compile time;
//! - [`agent`]: a plugin of the harness's own, built on the codec, and its mutants (each a
//!   plugin that breaks one rule), which prove that the cases can fail;
//! - [`plugin_under_test`]: [`plugin_under_test::PluginUnderTest`], a launched plugin with raw
//!   and protocol access, and the observer that checks everything it writes;
//! - [`host_under_test`]: [`host_under_test::HostUnderTest`], a host through its driver (spec
//!   07 section 7.2), with the harness's agents as its plugins;
//! - [`schema`]: the JSON Schemas of the driver contract and their validator;
//! - [`mutants`]: the cases that must catch each host mutant, and the host mutants themselves,
//!   read from the test equipment `rpcplugin-mutant-host list --format json`;
//! - [`fuzz`]: black-box schedule fuzzing of plugins and hosts, with shrinking;
//! - [`selftest`]: the catalog against every mutant, the table case x mutant and its rules;
//! - [`cases`]: the case catalog, every case citing the requirement ids it checks;
//! - [`rows`]: which cases send the input of each numbered row of the spec's tables;
//! - [`outcome`]: what a case finds, and its verdict;
//! - [`runner`]: selecting and running cases in parallel, with a progress line;
//! - [`progress`]: the one progress line of `run`, `fuzz` and `self-test`;
//! - [`report`]: the human, JSON and JUnit reports;
//! - [`html`]: the HTML report (`--html`), with sequence diagrams of failing exchanges;
//! - [`expect`]: expected-failure lists;
//! - [`transcript`]: the record of an exchange and the replay file;
//! - [`replay`]: playing a replay file back;
//! - [`inspect`]: decoding captures and replay files;
//! - [`bench`](mod@bench): figures for any plugin or host, each next to its floor, and their report.
//!
//! Exit codes of the `rpcplugin-conformance` binary: 0 conformant, 1 not conformant (a failed
//! or timed-out case, including a plugin that never announces), 2 harness or setup error (the
//! plugin cannot be found or launched, or exits before the handshake; bad input files).

pub mod agent;
pub mod bench;
pub mod cases;
pub mod expect;
pub mod fuzz;
pub mod host_under_test;
pub mod html;
pub mod inspect;
pub mod mutants;
pub mod outcome;
pub mod plugin_under_test;
pub mod progress;
pub mod replay;
pub mod report;
pub mod requirements;
pub mod rows;
pub mod runner;
pub mod schema;
pub mod selftest;
pub mod transcript;

pub use rpcplugin_codec as codec;
pub use rpcplugin_runtime as runtime;
