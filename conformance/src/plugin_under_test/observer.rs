//! The observer: everything the harness writes and everything the plugin writes is decoded
//! here, whatever the case does. What the plugin writes goes through the codec's sender-rule
//! observer, [`Tracer`](rpcplugin_codec::trace::Tracer) (FRAME-1, FRAME-2, FRAME-9, HS-1, HS-2,
//! STREAM-1, STREAM-7, STREAM-8, RPC-1, RPC-4, RPC-7 and the gob rules), and through the
//! two-direction checks against what the harness sent (STREAM-2, STREAM-5, STREAM-6, RPC-5, and
//! RPC-14 for ids the plugin had to refuse); a violation found here makes the case's waits fail
//! at once.

use rpcplugin_codec::frame::StreamId;
use rpcplugin_codec::trace::{Note, Violation, What};

use super::PluginUnderTest;
use rpcplugin_codec::req;

impl PluginUnderTest {
    /// The rule violations seen so far in what the plugin sent, with the offset in its output.
    pub fn violations(&self) -> &[(u64, Violation)] {
        &self.violations
    }

    /// Everything the tracer found in the plugin's output so far.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    pub(super) fn observe_sent(&mut self, bytes: &[u8]) {
        self.recorder.sent(bytes);
        let mut notes = Vec::new();
        self.host_trace.push(bytes, &mut notes);
        for n in notes {
            match n.what {
                What::Frame { stream_id, len, .. } if len > 0 && !stream_id.is_control() => {
                    self.host_wrote.insert(stream_id);
                }
                What::Request {
                    stream_id,
                    seq,
                    service_method,
                    args,
                } => {
                    self.host_requests.entry((stream_id, seq)).or_insert(false);
                    if service_method == rpcplugin_codec::rpc::ON_ACTIVATE {
                        if let Ok(id) = args.parse::<i64>() {
                            if id > 0 && id % 2 == 1 && id > self.last_api_id {
                                self.last_api_id = id;
                            } else if !self.streams_opened.iter().any(|s| s.get() == id) {
                                // A stream the harness opened itself (an earlier API stream)
                                // may still carry the plugin's calls: only the others count,
                                // and an earlier one once the plugin has closed it.
                                self.refused_ids.insert(id);
                            } else {
                                self.stale_ids.insert(id);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    pub(super) fn observe_received(&mut self, bytes: &[u8]) {
        let mut notes = Vec::new();
        self.plugin_trace.push(bytes, &mut notes);
        self.check(notes);
    }

    pub(super) fn observe_eof(&mut self) {
        let mut notes = Vec::new();
        self.plugin_trace.finish(&mut notes);
        self.check(notes);
    }

    /// The RPC-14 violation for a frame on `id`, when `id` is one the harness named in an
    /// `OnActivate` that the plugin had to refuse (reported once per id).
    fn refused_id_used(&mut self, id: i64) -> Option<Violation> {
        if !self.used_refused.insert(id) {
            return None;
        }
        Some(Violation {
            requirement: req!("RPC-14"),
            text: format!(
                "the plugin sent a frame on stream {id}, the id the harness named in \
                 OnActivate({id}): it connected an id the host cannot have allocated (not a new \
                 positive odd id) instead of answering that call with an error"
            ),
        })
    }

    fn check(&mut self, notes: Vec<Note>) {
        // Once the harness has broken a rule on purpose (garbage, data after a close), what it
        // sent is no longer a reliable reference for the two-direction checks.
        let reference = self.host_trace.violations() == 0 && !self.host_trace.failed();
        for (i, n) in notes.iter().enumerate() {
            let closed_by_plugin = |id: StreamId| {
                self.notes
                    .iter()
                    .chain(&notes[..i])
                    .any(|m| m.what == What::Close { stream_id: id })
            };
            match &n.what {
                // A frame on an id the plugin had to refuse: RPC-14 is what it broke, and comes
                // before what the tracer makes of the frame.
                What::Frame { stream_id, len, .. }
                    if *len > 0
                        && (self.refused_ids.contains(&stream_id.get())
                            || (self.stale_ids.contains(&stream_id.get())
                                && closed_by_plugin(*stream_id))) =>
                {
                    if let Some(v) = self.refused_id_used(stream_id.get()) {
                        self.violations.push((n.offset, v));
                    }
                }
                // A negative stream id cannot even be framed: the same, if the harness named one.
                What::Violation(v)
                    if v.requirement.starts_with("FRAME-")
                        && self.refused_ids.iter().any(|id| *id < 0) =>
                {
                    let negative = *self.refused_ids.iter().find(|id| **id < 0).expect("found");
                    if let Some(found) = self.refused_id_used(negative) {
                        self.violations.push((n.offset, found));
                    }
                    self.violations.push((n.offset, v.clone()));
                }
                What::Violation(v) => self.violations.push((n.offset, v.clone())),
                What::Response { stream_id, seq, .. } if reference => {
                    let text = match self.host_requests.get_mut(&(*stream_id, *seq)) {
                        None => Some(format!(
                            "a response with Seq {seq} on stream {stream_id}, where the harness \
                             sent no request with that Seq"
                        )),
                        Some(true) => Some(format!(
                            "a second response with Seq {seq} on stream {stream_id}"
                        )),
                        Some(answered) => {
                            *answered = true;
                            None
                        }
                    };
                    if let Some(text) = text {
                        self.violations.push((
                            n.offset,
                            Violation {
                                requirement: req!("RPC-5"),
                                text,
                            },
                        ));
                    }
                }
                What::Frame { stream_id, len, .. }
                    if reference && *len > 0 && !stream_id.is_control() =>
                {
                    let id = *stream_id;
                    let found = if id.is_plugin_allocated() {
                        (!self.host_wrote.contains(&id)).then(|| Violation {
                            requirement: req!("STREAM-6"),
                            text: format!(
                                "the plugin sent data on stream {id}, which it opened, before the \
                                 harness had sent anything on it (the harness cannot have \
                                 connected it yet)"
                            ),
                        })
                    } else if self.streams_opened.contains(&id) {
                        None
                    } else if self.host_wrote.contains(&id) {
                        Some(Violation {
                            requirement: req!("STREAM-5"),
                            text: format!(
                                "the plugin sent data on stream {id}, which the harness wrote \
                                 to but never opened or announced: it should have discarded \
                                 those frames, not connected the stream"
                            ),
                        })
                    } else {
                        Some(Violation {
                            requirement: req!("STREAM-2"),
                            text: format!(
                                "the plugin sent data on stream {id}, an odd id that only the \
                                 host allocates, and the harness never opened it"
                            ),
                        })
                    };
                    if let Some(v) = found {
                        // Once per stream is enough.
                        if !self
                            .violations
                            .iter()
                            .any(|(_, old)| old.requirement == v.requirement && old.text == v.text)
                        {
                            self.violations.push((n.offset, v));
                        }
                    }
                }
                _ => {}
            }
        }
        self.notes.extend(notes);
    }

    /// A violation the observer found since the case last waited: the case stops waiting.
    pub(super) fn new_violation(&mut self) -> Option<String> {
        let (offset, v) = self.violations.get(self.violations_reported)?;
        let found = format!(
            "the harness's observer found a violation of {} at byte {offset} of the plugin's \
             output: {}",
            v.requirement, v.text
        );
        self.violations_reported = self.violations.len();
        Some(found)
    }

    /// Whether a case's wait ended because the observer found a violation.
    pub fn stopped_by_observer(&self) -> bool {
        self.violations_reported > 0
    }
}
