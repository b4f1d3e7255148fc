//! The schedules: a plugin schedule's and a host schedule's steps (what the harness does to
//! the subject and what the subject must answer, with the requirements each step exercises),
//! [`Schedule`] as a replay file stores it (and its variants for shrinking), and their
//! generation from a seed ([`Rng`], [`plugin_schedule`], [`host_schedule`]).

use serde::{Deserialize, Serialize};

/// Who a frame of a plugin schedule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A host-parity (odd) stream the host never announced.
    UnknownOdd,
    /// A plugin-parity (even) stream the plugin never opened.
    UnknownEven,
    /// Stream 0, after the handshake.
    Control,
}

impl Target {
    pub(super) fn stream(self, n: u8) -> i64 {
        match self {
            Target::UnknownOdd => 10_001 + 2 * i64::from(n),
            Target::UnknownEven => 10_002 + 2 * i64::from(n),
            Target::Control => 0,
        }
    }
}

/// How a plugin schedule ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginEnd {
    /// The host closes its pipe: the plugin closes its output and exits with status 0.
    Close,
    /// A frame with a negative length (FRAME-6).
    NegativeLength,
    /// A header declaring more than MAX_PAYLOAD bytes (FRAME-8).
    Oversized,
    /// A stream id varint that overflows (FRAME-4).
    VarintOverflow,
}

/// One step of a plugin schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum PluginStep {
    /// Queue `OnActivate` with a new API stream (a successful response is due, RPC-5).
    Activate,
    /// Queue `OnDeactivate` (a successful response is due).
    Deactivate,
    /// Queue a data frame of `len` bytes for `target` (discarded, STREAM-5 / HS-8).
    Junk {
        /// Its stream.
        target: Target,
        /// Which stream of the kind (0-7).
        n: u8,
        /// Payload bytes.
        len: u16,
    },
    /// Queue a close frame for an unknown stream (discarded, STREAM-5).
    CloseUnknown {
        /// Its stream.
        target: Target,
        /// Which stream of the kind.
        n: u8,
    },
    /// Write what is queued, cut at these positions (per mille of its length), sleeping
    /// `stall_ms` between the pieces.
    Flush {
        /// Cut points, per mille.
        cuts: Vec<u16>,
        /// Pause between pieces.
        stall_ms: u16,
    },
    /// Write what is queued in one write, then wait for every due response.
    Await,
    /// Write what is queued in one write, then keep reading (serving `LocalAPI`) for `ms`.
    Pause {
        /// How long.
        ms: u16,
    },
}

/// A plugin schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSchedule {
    /// The steps, in order.
    pub steps: Vec<PluginStep>,
    /// How it ends.
    pub end: PluginEnd,
}

/// One step of a host schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum HostStep {
    /// `activate` through the driver: it succeeds, and the plugin gets its configuration.
    Activate,
    /// `deactivate` through the driver: it succeeds, and the plugin gets `OnDeactivate`.
    Deactivate,
    /// The plugin crashes: it exits with `code`, or kills itself with SIGKILL; the host
    /// relaunches it (LIFE-6) after at least the floor (LIFE-8) and activates it again if it
    /// was active (LIFE-11).
    Crash {
        /// `None`: SIGKILL.
        code: Option<i32>,
    },
    /// The plugin writes a data frame of `len` bytes on an unknown stream (STREAM-5) or on
    /// stream 0 (HS-8); the host goes on.
    Junk {
        /// Stream 0 instead of an unknown stream.
        control: bool,
        /// Payload bytes.
        len: u16,
    },
    /// Nothing happens for `ms`.
    Pause {
        /// How long.
        ms: u16,
    },
}

/// A host schedule: its steps, then a stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSchedule {
    /// The steps, in order.
    pub steps: Vec<HostStep>,
}

/// A schedule of either mode, as a replay file stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Schedule {
    /// Against a plugin.
    Plugin(PluginSchedule),
    /// Against a host.
    Host(HostSchedule),
}

impl Schedule {
    pub(super) fn len(&self) -> usize {
        match self {
            Schedule::Plugin(s) => s.steps.len(),
            Schedule::Host(s) => s.steps.len(),
        }
    }

    /// The schedule without steps `from..to`.
    pub(super) fn without(&self, from: usize, to: usize) -> Schedule {
        fn cut<T: Clone>(v: &[T], from: usize, to: usize) -> Vec<T> {
            v[..from].iter().chain(&v[to..]).cloned().collect()
        }
        match self {
            Schedule::Plugin(s) => Schedule::Plugin(PluginSchedule {
                steps: cut(&s.steps, from, to),
                end: s.end,
            }),
            Schedule::Host(s) => Schedule::Host(HostSchedule {
                steps: cut(&s.steps, from, to),
            }),
        }
    }

    /// Simpler variants (tried after removing steps): a plugin schedule that ends by closing
    /// its pipe, and flushes written whole.
    pub(super) fn simpler(&self) -> Vec<Schedule> {
        let mut out = Vec::new();
        if let Schedule::Plugin(s) = self {
            if s.end != PluginEnd::Close {
                out.push(Schedule::Plugin(PluginSchedule {
                    steps: s.steps.clone(),
                    end: PluginEnd::Close,
                }));
            }
            for (i, step) in s.steps.iter().enumerate() {
                if let PluginStep::Flush { cuts, stall_ms } = step {
                    if !cuts.is_empty() || *stall_ms > 0 {
                        let mut steps = s.steps.clone();
                        steps[i] = PluginStep::Flush {
                            cuts: Vec::new(),
                            stall_ms: 0,
                        };
                        out.push(Schedule::Plugin(PluginSchedule { steps, end: s.end }));
                    }
                }
            }
        }
        out
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same schedules on
/// every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed of schedule `index` of a run with `seed`.
pub fn schedule_seed(seed: u64, index: u64) -> u64 {
    Rng::new(seed ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93)).next_u64()
}

/// The plugin schedule of `seed`: 1 to 24 steps, then an end.
pub fn plugin_schedule(seed: u64) -> PluginSchedule {
    let mut r = Rng::new(seed);
    let n = 1 + r.below(24) as usize;
    let target = |r: &mut Rng| match r.below(3) {
        0 => Target::UnknownOdd,
        1 => Target::UnknownEven,
        _ => Target::Control,
    };
    let mut steps = Vec::with_capacity(n);
    for _ in 0..n {
        steps.push(match r.below(16) {
            0..=3 => PluginStep::Activate,
            4..=6 => PluginStep::Deactivate,
            7..=8 => {
                let target = target(&mut r);
                PluginStep::Junk {
                    target,
                    n: r.below(8) as u8,
                    len: match r.below(4) {
                        0 => 1,
                        1 => r.below(64) as u16 + 1,
                        2 => r.below(4096) as u16 + 1,
                        _ => r.below(40_000) as u16 + 1,
                    },
                }
            }
            9 => PluginStep::CloseUnknown {
                target: if r.below(2) == 0 {
                    Target::UnknownOdd
                } else {
                    Target::UnknownEven
                },
                n: r.below(8) as u8,
            },
            10..=12 => {
                let pieces = r.below(6) as usize;
                let mut cuts: Vec<u16> = (0..pieces).map(|_| r.below(1000) as u16).collect();
                cuts.sort_unstable();
                PluginStep::Flush {
                    cuts,
                    stall_ms: if r.below(4) == 0 {
                        r.below(50) as u16
                    } else {
                        0
                    },
                }
            }
            13..=14 => PluginStep::Await,
            _ => PluginStep::Pause {
                ms: r.below(100) as u16,
            },
        });
    }
    let end = match r.below(8) {
        0 => PluginEnd::NegativeLength,
        1 => PluginEnd::Oversized,
        2 => PluginEnd::VarintOverflow,
        _ => PluginEnd::Close,
    };
    PluginSchedule { steps, end }
}

/// The host schedule of `seed`: 1 to 8 steps (at most two crashes), then a stop.
pub fn host_schedule(seed: u64) -> HostSchedule {
    let mut r = Rng::new(seed);
    let n = 1 + r.below(8) as usize;
    let mut crashes = 0;
    let mut steps = Vec::with_capacity(n);
    for _ in 0..n {
        steps.push(match r.below(10) {
            0..=2 => HostStep::Activate,
            3..=4 => HostStep::Deactivate,
            5..=6 if crashes < 2 => {
                crashes += 1;
                HostStep::Crash {
                    code: match r.below(3) {
                        0 => None,
                        1 => Some(0),
                        _ => Some(1 + r.below(100) as i32),
                    },
                }
            }
            5..=7 => HostStep::Junk {
                control: r.below(2) == 0,
                len: r.below(2048) as u16 + 1,
            },
            _ => HostStep::Pause {
                ms: r.below(300) as u16,
            },
        });
    }
    HostSchedule { steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_deterministic_and_varied() {
        assert_eq!(plugin_schedule(7), plugin_schedule(7));
        assert_eq!(host_schedule(7), host_schedule(7));
        let distinct: std::collections::HashSet<String> = (0..50)
            .map(|i| serde_json::to_string(&plugin_schedule(schedule_seed(1, i))).unwrap())
            .collect();
        assert!(distinct.len() > 45, "{}", distinct.len());
        for i in 0..200 {
            let s = host_schedule(schedule_seed(3, i));
            let crashes = s
                .steps
                .iter()
                .filter(|s| matches!(s, HostStep::Crash { .. }))
                .count();
            assert!(crashes <= 2 && !s.steps.is_empty() && s.steps.len() <= 8);
        }
    }

    #[test]
    fn schedules_round_trip_through_json() {
        for i in 0..20 {
            for s in [
                Schedule::Plugin(plugin_schedule(i)),
                Schedule::Host(host_schedule(i)),
            ] {
                let text = serde_json::to_string(&s).unwrap();
                assert_eq!(serde_json::from_str::<Schedule>(&text).unwrap(), s);
            }
        }
    }
    #[test]
    fn removing_steps_keeps_the_end() {
        let s = Schedule::Plugin(PluginSchedule {
            steps: vec![
                PluginStep::Activate,
                PluginStep::Deactivate,
                PluginStep::Await,
            ],
            end: PluginEnd::Oversized,
        });
        let Schedule::Plugin(cut) = s.without(0, 2) else {
            unreachable!()
        };
        assert_eq!(cut.steps, vec![PluginStep::Await]);
        assert_eq!(cut.end, PluginEnd::Oversized);
        assert_eq!(s.simpler().len(), 1);
    }
}
