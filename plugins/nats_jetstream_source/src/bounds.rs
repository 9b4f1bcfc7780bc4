//! Bounded mode: stop rules over the whole stream.
//!
//! A message is produced only while it is within every bound (stream sequence
//! at most `at_sequence` or the last sequence at start, published no later
//! than `at_time`) and the message quota (`after_messages`) is not used up.
//! Once the stream is known to have passed the bound, no message within it
//! can still arrive, so every consumer stops at its first message past the
//! bound or at its first empty fetch started after that was known: when one
//! consumer reaches the bound, all stop without cutting off what the others
//! still had before it.

use crate::config::StopSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRules {
    /// The last stream sequence to produce.
    sequence: Option<u64>,
    /// The latest publish time to produce, µs since the epoch.
    time_micros: Option<u64>,
    /// How many messages to produce in all.
    messages: Option<u64>,
}

impl StopRules {
    /// `last_at_start` is the stream's last sequence when the source first
    /// opened (kept in the state, so a restart keeps the same bound).
    pub fn new(settings: &StopSettings, last_at_start: Option<u64>) -> Self {
        let sequence = match (settings.at_sequence, last_at_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Self {
            sequence,
            time_micros: settings
                .at_time
                .map(|time| u64::try_from(time.unix_timestamp_nanos() / 1000).unwrap_or(0)),
            messages: settings.after_messages,
        }
    }

    pub fn is_beyond(&self, stream_sequence: u64, published_micros: u64) -> bool {
        self.sequence.is_some_and(|last| stream_sequence > last)
            || self.time_micros.is_some_and(|last| published_micros > last)
    }

    /// The message at the sequence bound: its consumer can have nothing after it.
    pub fn is_final(&self, stream_sequence: u64) -> bool {
        self.sequence == Some(stream_sequence)
    }

    /// Messages still allowed by `after_messages`, if set.
    pub fn quota_left(&self, produced: u64) -> Option<u64> {
        self.messages.map(|limit| limit.saturating_sub(produced))
    }

    /// Whether there is a sequence or time bound (not just a quota).
    pub fn has_bound(&self) -> bool {
        self.sequence.is_some() || self.time_micros.is_some()
    }

    /// Whether no message within the bound can arrive any more: the stream
    /// holds the bound's sequence already, or the bound's time is past
    /// (publish times are the server's clock; this assumes it agrees with ours).
    pub fn stream_passed(&self, stream_last_sequence: u64, now_micros: u64) -> bool {
        self.sequence
            .is_some_and(|last| stream_last_sequence >= last)
            || self.time_micros.is_some_and(|last| now_micros > last)
    }
}

/// Knows when the stream was seen past the bound, in a logical clock that
/// also stamps each fetch: only an empty fetch started after that moment
/// proves its consumer has nothing left within the bound.
#[derive(Debug, Default)]
pub struct BoundWatch {
    clock: u64,
    passed_at: Option<u64>,
}

impl BoundWatch {
    /// A stamp for a fetch about to start.
    pub fn stamp(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub fn mark_passed(&mut self) {
        if self.passed_at.is_none() {
            self.passed_at = Some(self.stamp());
        }
    }

    pub fn is_passed(&self) -> bool {
        self.passed_at.is_some()
    }

    /// Whether an empty fetch started at `started` ends its consumer.
    pub fn empty_fetch_ends(&self, started: u64) -> bool {
        self.passed_at.is_some_and(|passed| started > passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::datetime::parse_rfc3339;

    fn rules(json: &str, last_at_start: Option<u64>) -> StopRules {
        StopRules::new(&serde_json::from_str(json).unwrap(), last_at_start)
    }

    #[test]
    fn sequence_bound_is_inclusive() {
        let r = rules(r#"{"at_sequence":10}"#, None);
        assert!(!r.is_beyond(10, u64::MAX));
        assert!(r.is_beyond(11, 0));
        assert!(r.is_final(10) && !r.is_final(9));
        assert!(r.has_bound());
        assert!(!r.stream_passed(9, u64::MAX), "time plays no part");
        assert!(r.stream_passed(10, 0));
    }

    #[test]
    fn last_at_start_and_explicit_sequence_take_the_lower() {
        let r = rules(r#"{"at_sequence":10,"at_last_sequence":true}"#, Some(7));
        assert!(r.is_beyond(8, 0) && r.is_final(7));
        let r = rules(r#"{"at_last_sequence":true}"#, Some(25));
        assert!(r.is_final(25) && !r.is_beyond(25, 0));
        let empty_stream = rules(r#"{"at_last_sequence":true}"#, Some(0));
        assert!(
            empty_stream.stream_passed(0, 0),
            "nothing to read in an empty stream"
        );
    }

    #[test]
    fn time_bound() {
        let at = parse_rfc3339("2026-01-31T12:00:00Z").unwrap();
        let micros = (at.unix_timestamp_nanos() / 1000) as u64;
        let r = rules(r#"{"at_time":"2026-01-31T12:00:00Z"}"#, None);
        assert!(!r.is_beyond(u64::MAX, micros));
        assert!(r.is_beyond(1, micros + 1));
        assert!(!r.is_final(1));
        assert!(!r.stream_passed(u64::MAX, micros));
        assert!(r.stream_passed(0, micros + 1));
    }

    #[test]
    fn quota() {
        let r = rules(r#"{"after_messages":3}"#, None);
        assert_eq!(r.quota_left(0), Some(3));
        assert_eq!(r.quota_left(5), Some(0));
        assert!(!r.has_bound());
        assert!(!r.is_beyond(u64::MAX, u64::MAX));
        assert_eq!(rules(r#"{"at_sequence":1}"#, None).quota_left(9), None);
    }

    #[test]
    fn only_fetches_started_after_the_bound_was_seen_end_a_consumer() {
        let mut watch = BoundWatch::default();
        let before = watch.stamp();
        assert!(!watch.empty_fetch_ends(before));
        watch.mark_passed();
        assert!(watch.is_passed());
        assert!(
            !watch.empty_fetch_ends(before),
            "it may have missed messages stored meanwhile"
        );
        let after = watch.stamp();
        assert!(watch.empty_fetch_ends(after));
        watch.mark_passed();
        assert!(watch.empty_fetch_ends(after), "the first sighting counts");
    }
}
