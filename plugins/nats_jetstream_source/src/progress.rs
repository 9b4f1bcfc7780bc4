//! The source's own progress, kept in the connector state (MessagePack) so a
//! restart resumes from what Iggy has, whatever happened to the durable
//! consumers meanwhile.

use iggy_connector_sdk::ConnectorState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const CONNECTOR: &str = "NATS JetStream source";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The stream the sequences belong to; progress of another stream is ignored.
    pub stream: String,
    /// Per consumer: the last stream sequence stored in Iggy.
    pub consumers: BTreeMap<String, u64>,
    /// Messages produced in all (for `stop.after_messages`).
    pub produced: u64,
    /// The stream's last sequence when the source first opened (for `stop.at_last_sequence`).
    pub last_sequence_at_start: Option<u64>,
    /// Bounded mode reached its stop rule.
    pub finished: bool,
}

impl Progress {
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_string(),
            ..Self::default()
        }
    }

    /// The saved progress for `stream`, or a fresh one (with a warning when
    /// the saved state is unreadable or belongs to another stream).
    pub fn restore(state: Option<ConnectorState>, stream: &str, id: u32) -> Self {
        let Some(saved) = state.and_then(|s| s.deserialize::<Progress>(CONNECTOR, id)) else {
            return Self::new(stream);
        };
        if saved.stream != stream {
            tracing::warn!(
                "{CONNECTOR} {id}: the saved progress is for stream `{}`, not `{stream}`; starting without it",
                saved.stream
            );
            return Self::new(stream);
        }
        saved
    }

    pub fn last(&self, consumer: &str) -> Option<u64> {
        self.consumers.get(consumer).copied()
    }

    pub fn to_state(&self, id: u32) -> Option<ConnectorState> {
        ConnectorState::serialize(self, CONNECTOR, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_connector_state() {
        let mut progress = Progress::new("ORDERS");
        progress.consumers.insert("eu".into(), 41);
        progress.produced = 41;
        progress.last_sequence_at_start = Some(100);
        let state = progress.to_state(1).unwrap();
        assert_eq!(Progress::restore(Some(state), "ORDERS", 1), progress);
    }

    #[test]
    fn other_streams_and_garbage_start_fresh() {
        let state = Progress::new("AUDIT").to_state(1).unwrap();
        assert_eq!(
            Progress::restore(Some(state), "ORDERS", 1),
            Progress::new("ORDERS")
        );
        let garbage = ConnectorState(vec![0xc1, 0x00]);
        assert_eq!(
            Progress::restore(Some(garbage), "ORDERS", 1),
            Progress::new("ORDERS")
        );
        assert_eq!(Progress::restore(None, "ORDERS", 1).last("eu"), None);
    }
}
