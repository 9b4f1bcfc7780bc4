//! One durable consumer as the source reads it: how far it got, what the
//! batch in flight holds of it, and the verdict on each delivery.
//!
//! Progress is a watermark (the last stream sequence in Iggy), which is only
//! sound if a consumer's messages are produced in stream order. NATS keeps
//! that order as long as no delivery goes missing: NAKed messages come back
//! first, in the order NAKed. A missing delivery (a fetch cut by a lost
//! connection, a server restarted from older consumer state) shows as a jump
//! in the consumer's delivery counter; the reader then stops and the consumer
//! is recreated just after the watermark, so nothing is skipped for good.

use crate::bounds::StopRules;
use crate::client::acks::{AckMode, Unacked};
use crate::client::consumers::OpenedConsumer;
use crate::client::fetch::Position;
use async_nats::jetstream::consumer::{PullConsumer, pull};
use std::sync::Arc;

/// What to do with one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the runtime.
    Produce,
    /// Hand it to the runtime; it is at the sequence bound, so the consumer is done.
    ProduceLast,
    /// Already in Iggy (a redelivery): acknowledge it with the batch, do not produce it.
    Skip,
    /// Past the stop rule's bound: the consumer is done; give the message back.
    Beyond,
    /// The message quota is used up: the consumer is done; give the message back.
    OverQuota,
    /// After a missing delivery: ignore it, the consumer is recreated.
    Lost,
}

/// Where a consumer stands; pure, so the verdicts are tested without a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The last stream sequence produced (in Iggy, or in the batch in flight).
    pub high_water: u64,
    /// The consumer's delivery counter at the last delivery seen.
    pub last_delivery: u64,
    /// Bounded mode: nothing more to read from this consumer.
    pub done: bool,
    /// Deliveries went missing: recreate the consumer before reading on.
    pub lost_deliveries: bool,
}

impl Cursor {
    /// Checks the delivery counter; `false` (and the cursor stops) after a gap.
    pub fn accept(&mut self, name: &str, delivery: &Position) -> bool {
        if self.lost_deliveries {
            return false;
        }
        if delivery.consumer_sequence != self.last_delivery + 1 {
            tracing::warn!(
                "consumer `{name}`: expected delivery {} but got {} (stream sequence {}); deliveries went missing, so the consumer is recreated after stream sequence {}",
                self.last_delivery + 1,
                delivery.consumer_sequence,
                delivery.stream_sequence,
                self.high_water
            );
            self.lost_deliveries = true;
            return false;
        }
        self.last_delivery = delivery.consumer_sequence;
        true
    }

    /// Judges the next delivery; `quota_left` is what `stop.after_messages`
    /// still allows, counting this batch.
    pub fn judge(
        &mut self,
        name: &str,
        delivery: &Position,
        rules: Option<&StopRules>,
        quota_left: Option<u64>,
    ) -> Verdict {
        if !self.accept(name, delivery) {
            return Verdict::Lost;
        }
        let seq = delivery.stream_sequence;
        if seq <= self.high_water {
            return Verdict::Skip;
        }
        if self.done || rules.is_some_and(|r| r.is_beyond(seq, delivery.published_micros)) {
            self.done = true;
            return Verdict::Beyond;
        }
        if quota_left == Some(0) {
            self.done = true;
            return Verdict::OverQuota;
        }
        self.high_water = seq;
        if rules.is_some_and(|r| r.is_final(seq)) {
            self.done = true;
            return Verdict::ProduceLast;
        }
        Verdict::Produce
    }
}

pub struct Reader {
    pub name: String,
    pub consumer: Arc<PullConsumer>,
    pub ack_mode: AckMode,
    /// How many unacknowledged messages the server allows; `None` is unlimited.
    pub max_ack_pending: Option<usize>,
    /// Settings to recreate the consumer with.
    pub config: pull::Config,
    pub cursor: Cursor,
    /// Deliveries of the batch in flight, to acknowledge on Ack or NAK on Nack.
    pub in_flight: Vec<Unacked>,
    /// Deliveries not produced (past the stop rule), NAKed after the batch's
    /// result so they cannot come back ahead of it.
    pub given_back: Vec<Unacked>,
    /// The running fetch: its task and its logical start (see `BoundWatch`).
    pub fetch: Option<(tokio::task::Id, u64)>,
}

impl Reader {
    pub fn new(name: String, opened: OpenedConsumer) -> Self {
        Self {
            name,
            consumer: opened.consumer,
            ack_mode: opened.ack_mode,
            max_ack_pending: opened.max_ack_pending,
            config: opened.config,
            cursor: Cursor {
                high_water: opened.position,
                last_delivery: opened.last_delivery,
                ..Cursor::default()
            },
            in_flight: Vec::new(),
            given_back: Vec::new(),
            fetch: None,
        }
    }

    /// Takes over the consumer recreated after a loss; what was in flight of
    /// the old one is moot.
    pub fn reopened(&mut self, opened: OpenedConsumer) {
        let name = std::mem::take(&mut self.name);
        *self = Self::new(name, opened);
    }

    /// Judges the next delivery (see [`Cursor::judge`]).
    pub fn judge(
        &mut self,
        delivery: &Position,
        rules: Option<&StopRules>,
        quota_left: Option<u64>,
    ) -> Verdict {
        self.cursor.judge(&self.name, delivery, rules, quota_left)
    }

    /// How many messages the next fetch may ask for: at most `batch_size`,
    /// without going past the consumer's `max_ack_pending` (the server would
    /// hold the rest back until the batch in flight is acknowledged).
    pub fn fetch_room(&self, batch_size: usize) -> usize {
        self.max_ack_pending.map_or(batch_size, |max| {
            let held = self.in_flight.len() + self.given_back.len();
            max.saturating_sub(held).min(batch_size)
        })
    }

    /// Whether the reader should have a fetch running.
    pub fn wants_fetch(&self) -> bool {
        !self.cursor.done && !self.cursor.lost_deliveries && self.fetch.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StopSettings;
    use Verdict::*;

    fn delivery(consumer_sequence: u64, stream_sequence: u64) -> Position {
        Position {
            stream_sequence,
            consumer_sequence,
            published_micros: stream_sequence * 1000,
        }
    }

    /// Judges (delivery counter, stream sequence) pairs, counting the quota down.
    fn judge_all(
        cursor: &mut Cursor,
        deliveries: &[(u64, u64)],
        rules: Option<&StopRules>,
        mut quota: Option<u64>,
    ) -> Vec<Verdict> {
        deliveries
            .iter()
            .map(|&(dseq, seq)| {
                let verdict = cursor.judge("c", &delivery(dseq, seq), rules, quota);
                if matches!(verdict, Produce | ProduceLast) {
                    quota = quota.map(|q| q - 1);
                }
                verdict
            })
            .collect()
    }

    fn at(high_water: u64, last_delivery: u64) -> Cursor {
        Cursor {
            high_water,
            last_delivery,
            ..Cursor::default()
        }
    }

    fn stop(json: &str) -> StopRules {
        StopRules::new(&serde_json::from_str::<StopSettings>(json).unwrap(), None)
    }

    #[test]
    fn in_order_deliveries_are_produced_and_redeliveries_skipped() {
        let mut cursor = at(10, 4);
        let verdicts = judge_all(
            &mut cursor,
            &[(5, 9), (6, 10), (7, 12), (8, 15)],
            None,
            None,
        );
        assert_eq!(verdicts, [Skip, Skip, Produce, Produce]);
        assert_eq!((cursor.high_water, cursor.last_delivery), (15, 8));
    }

    #[test]
    fn a_gap_or_rewind_in_the_delivery_counter_stops_the_cursor() {
        let mut cursor = at(0, 0);
        let verdicts = judge_all(&mut cursor, &[(1, 1), (3, 3), (4, 4)], None, None);
        assert_eq!(verdicts, [Produce, Lost, Lost]);
        assert!(cursor.lost_deliveries);
        assert_eq!(
            cursor.high_water, 1,
            "nothing after the gap counts as produced"
        );
        let mut rewound = at(50, 10);
        assert_eq!(judge_all(&mut rewound, &[(7, 40)], None, None), [Lost]);
    }

    #[test]
    fn the_sequence_bound_ends_the_cursor() {
        let rules = stop(r#"{"at_sequence":12}"#);
        let mut cursor = at(0, 0);
        let verdicts = judge_all(
            &mut cursor,
            &[(1, 11), (2, 12), (3, 13)],
            Some(&rules),
            None,
        );
        assert_eq!(verdicts, [Produce, ProduceLast, Beyond]);
        assert!(cursor.done);
        let mut cursor = at(0, 0);
        let verdicts = judge_all(
            &mut cursor,
            &[(1, 11), (2, 14), (3, 15)],
            Some(&rules),
            None,
        );
        assert_eq!(
            verdicts,
            [Produce, Beyond, Beyond],
            "12 never came to this consumer"
        );
    }

    #[test]
    fn the_quota_ends_the_cursor() {
        let mut cursor = at(0, 0);
        let verdicts = judge_all(&mut cursor, &[(1, 1), (2, 2), (3, 3)], None, Some(2));
        assert_eq!(verdicts, [Produce, Produce, OverQuota]);
        assert!(cursor.done);
    }
}
