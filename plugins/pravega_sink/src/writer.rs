//! Delivers a batch's events in the configured writer mode: best effort,
//! at least once (every acknowledgement awaited) or exactly once (one
//! transaction per batch, ending with the batch's position marker, never a
//! second commit of an Iggy offset).

use crate::config::WriterMode;
use crate::mapping::OutEvent;
use crate::positions::{self, Committed};
use iggy_connector_common::Counters;
use iggy_connector_pravega_common::client::{
    Acknowledgement, ClientError, EventWriter, NewEvent, PravegaClient, ScalingPolicy,
    TransactionalWriter,
};
use iggy_connector_pravega_common::position::PositionMarker;
use std::sync::Arc;

/// What one delivery did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    pub written: u64,
    /// Events at or below an Iggy offset already committed (exactly once).
    pub skipped: u64,
}

pub struct Writer {
    client: Arc<dyn PravegaClient>,
    mode: WriterMode,
    writer_id: u128,
    /// Made on first use, and again after the client failed inside one.
    events: Option<Box<dyn EventWriter>>,
    transactions: Option<Box<dyn TransactionalWriter>>,
    /// Exactly once: per Iggy partition (`stream/topic/partition`), the
    /// highest offset in a committed transaction, read back from the stream
    /// at `open` and kept up to date since.
    committed: Committed,
    /// Exactly once: a commit was asked for and its outcome is unknown (it
    /// failed or was cut short, and Pravega may have committed it all the
    /// same): the markers are read back before the next transaction.
    commit_unsure: bool,
    counters: Arc<Counters>,
}

impl Writer {
    pub fn new(
        client: Arc<dyn PravegaClient>,
        mode: WriterMode,
        writer_id: u128,
        committed: Committed,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            client,
            mode,
            writer_id,
            events: None,
            transactions: None,
            committed,
            commit_unsure: false,
            counters,
        }
    }

    /// Writes `events` (in offset order) from the Iggy partition `source`.
    pub async fn deliver(
        &mut self,
        source: &str,
        events: Vec<OutEvent>,
        timestamp_ms: u64,
    ) -> Result<Delivered, ClientError> {
        let result = match self.mode {
            WriterMode::BestEffort => self.best_effort(events).await,
            WriterMode::AtLeastOnce => self.at_least_once(events).await,
            WriterMode::ExactlyOnce => self.exactly_once(source, events, timestamp_ms).await,
        };
        if let Err(ClientError::Panicked(_) | ClientError::TimedOut(_)) = &result {
            self.reset();
        }
        result
    }

    /// After a commit whose outcome is unknown: reads the position markers
    /// back, so that a batch Pravega committed after all is skipped. It
    /// reads the whole stream, so the sink runs it outside `attempt_timeout`.
    pub async fn settle(&mut self) -> Result<(), ClientError> {
        if !self.commit_unsure {
            return Ok(());
        }
        let found = positions::read_back(self.client.as_ref()).await?;
        for (partition, last) in found.committed {
            let known = self.committed.entry(partition).or_insert(last);
            *known = (*known).max(last);
        }
        self.commit_unsure = false;
        Ok(())
    }

    /// Gives up the writers (the client's state inside them is unknown after
    /// a panic or a time limit): the next delivery makes new ones.
    pub fn reset(&mut self) {
        self.events = None;
        self.transactions = None;
    }

    /// Before another attempt at a batch that failed: new writers (one the
    /// client failed in may be stuck on segments that are gone), and with
    /// `create` the scope and stream made again, since a Pravega that
    /// restarted without its metadata serves no stream until then.
    pub async fn recover(&mut self, create: Option<ScalingPolicy>) -> Result<(), ClientError> {
        self.reset();
        match create {
            Some(policy) => self.client.ensure_stream(policy).await,
            None => Ok(()),
        }
    }

    /// Gives every event to the event writer (made on first use); their
    /// acknowledgements, in order.
    async fn hand_over(
        &mut self,
        events: Vec<OutEvent>,
    ) -> Result<Vec<Acknowledgement>, ClientError> {
        let writer = match &mut self.events {
            Some(writer) => writer,
            None => self.events.insert(self.client.event_writer().await?),
        };
        writer
            .write_all(events.into_iter().map(OutEvent::into_new).collect())
            .await
    }

    async fn best_effort(&mut self, events: Vec<OutEvent>) -> Result<Delivered, ClientError> {
        let written = events.len() as u64;
        let counters = self.counters.clone();
        let acks = self.hand_over(events).await?;
        // Nobody waits for them; a failure is still counted and logged.
        tokio::spawn(async move {
            for ack in acks {
                if let Err(e) = ack.await {
                    counters.add("unacknowledged", 1);
                    tracing::warn!("Pravega sink: a best-effort event was lost: {e}");
                }
            }
        });
        Ok(Delivered {
            written,
            skipped: 0,
        })
    }

    async fn at_least_once(&mut self, events: Vec<OutEvent>) -> Result<Delivered, ClientError> {
        let written = events.len() as u64;
        let acks = self.hand_over(events).await?;
        let mut failures = 0;
        let mut first = None;
        for ack in acks {
            if let Err(e) = ack.await {
                failures += 1;
                first.get_or_insert(e);
            }
        }
        match first {
            None => Ok(Delivered {
                written,
                skipped: 0,
            }),
            Some(e) => {
                self.counters.add("unacknowledged", failures);
                Err(ClientError::Failed(format!(
                    "{failures} of {written} events not acknowledged, first: {e}"
                )))
            }
        }
    }

    async fn exactly_once(
        &mut self,
        source: &str,
        events: Vec<OutEvent>,
        timestamp_ms: u64,
    ) -> Result<Delivered, ClientError> {
        self.settle().await?;
        let done = self.committed.get(source).copied();
        let total = events.len() as u64;
        let fresh: Vec<OutEvent> = events
            .into_iter()
            .filter(|e| done.is_none_or(|done| e.offset > done))
            .collect();
        let skipped = total - fresh.len() as u64;
        let (Some(first), Some(last)) = (
            fresh.iter().map(|e| e.offset).min(),
            fresh.iter().map(|e| e.offset).max(),
        ) else {
            return Ok(Delivered {
                written: 0,
                skipped,
            });
        };
        let marker = PositionMarker {
            partition: source.to_string(),
            first,
            last,
        };
        let writer = match &mut self.transactions {
            Some(writer) => writer,
            None => self
                .transactions
                .insert(self.client.transactional_writer(self.writer_id).await?),
        };
        let mut transaction = writer.begin().await?;
        let written = fresh.len() as u64;
        // The marker in the same transaction: committed with the batch or not at all.
        let mut batch: Vec<NewEvent> = fresh.into_iter().map(OutEvent::into_new).collect();
        batch.push(NewEvent {
            routing_key: Some(marker.routing_key()),
            payload: marker.encode(),
        });
        let mut outcome = transaction.write_all(batch).await;
        if outcome.is_ok() {
            self.commit_unsure = true;
            outcome = transaction.commit(timestamp_ms).await;
        }
        match outcome {
            Ok(()) => {
                self.commit_unsure = false;
                self.committed.insert(source.to_string(), last);
                Ok(Delivered { written, skipped })
            }
            Err(e) => {
                if let Err(abort) = transaction.abort().await {
                    tracing::warn!(
                        "Pravega sink: transaction {} not aborted: {abort}",
                        transaction.id()
                    );
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_connector_pravega_common::fake::{FakePravega, Faults};
    use std::time::Duration;

    fn events(offsets: std::ops::Range<u64>) -> Vec<OutEvent> {
        offsets
            .map(|offset| OutEvent {
                offset,
                routing_key: Some(format!("key-{}", offset % 3)),
                payload: format!("event {offset}").into_bytes(),
            })
            .collect()
    }

    fn new_writer(fake: &FakePravega, mode: WriterMode) -> (Writer, Arc<Counters>) {
        let counters = Arc::new(Counters::new(&["unacknowledged"]));
        let writer = Writer::new(
            Arc::new(fake.clone()),
            mode,
            1,
            Committed::new(),
            counters.clone(),
        );
        (writer, counters)
    }

    #[tokio::test(start_paused = true)]
    async fn at_least_once_returns_after_every_acknowledgement() {
        let fake = FakePravega::with_stream(2);
        fake.delay_acks(Duration::from_millis(200));
        let (mut writer, _) = new_writer(&fake, WriterMode::AtLeastOnce);
        let delivered = writer.deliver("s/t/1", events(0..10), 0).await.unwrap();
        assert_eq!(delivered.written, 10);
        assert_eq!(fake.acknowledged(), 10, "all acknowledged before returning");
        assert_eq!(fake.payloads().len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn best_effort_returns_before_the_acknowledgements() {
        let fake = FakePravega::with_stream(2);
        fake.delay_acks(Duration::from_millis(200));
        let (mut writer, _) = new_writer(&fake, WriterMode::BestEffort);
        writer.deliver("s/t/1", events(0..10), 0).await.unwrap();
        assert_eq!(fake.acknowledged(), 0, "returned without waiting");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(fake.acknowledged(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_acknowledgement_fails_the_batch_or_is_counted() {
        let fake = FakePravega::with_stream(1);
        fake.inject(Faults {
            failed_acks: 2,
            ..Faults::default()
        });
        let (mut writer, counters) = new_writer(&fake, WriterMode::AtLeastOnce);
        let error = writer.deliver("s/t/1", events(0..5), 0).await.unwrap_err();
        assert!(error.to_string().contains("2 of 5 events"), "{error}");
        assert_eq!(counters.get("unacknowledged").unwrap().get(), 2);

        let fake = FakePravega::with_stream(1);
        fake.inject(Faults {
            failed_acks: 1,
            ..Faults::default()
        });
        let (mut writer, counters) = new_writer(&fake, WriterMode::BestEffort);
        writer.deliver("s/t/1", events(0..5), 0).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(counters.get("unacknowledged").unwrap().get(), 1);
        assert_eq!(fake.payloads().len(), 4);
    }

    #[tokio::test]
    async fn same_routing_key_same_segment() {
        let fake = FakePravega::with_stream(4);
        let (mut writer, _) = new_writer(&fake, WriterMode::AtLeastOnce);
        writer.deliver("s/t/1", events(0..30), 0).await.unwrap();
        for (segment, stored) in fake.segments() {
            let keys: std::collections::BTreeSet<_> =
                stored.iter().map(|e| e.routing_key.clone()).collect();
            for key in keys {
                let elsewhere = fake
                    .segments()
                    .iter()
                    .filter(|(n, events)| {
                        **n != segment && events.iter().any(|e| e.routing_key == key)
                    })
                    .count();
                assert_eq!(elsewhere, 0, "{key:?} in more than one segment");
            }
        }
    }

    #[tokio::test]
    async fn exactly_once_commits_one_transaction_per_batch_and_never_twice() {
        let fake = FakePravega::with_stream(2);
        let (mut writer, _) = new_writer(&fake, WriterMode::ExactlyOnce);
        let first = writer.deliver("s/t/1", events(0..10), 0).await.unwrap();
        assert_eq!(
            first,
            Delivered {
                written: 10,
                skipped: 0
            }
        );
        assert_eq!(fake.commits().len(), 1);
        // The runtime delivers the same batch again, then one overlapping it.
        let again = writer.deliver("s/t/1", events(0..10), 0).await.unwrap();
        assert_eq!(
            again,
            Delivered {
                written: 0,
                skipped: 10
            }
        );
        assert_eq!(
            fake.transactions_begun(),
            1,
            "no transaction for nothing new"
        );
        let overlap = writer.deliver("s/t/1", events(5..15), 0).await.unwrap();
        assert_eq!(
            overlap,
            Delivered {
                written: 5,
                skipped: 5
            }
        );
        // Another partition's offsets are its own.
        writer.deliver("s/t/2", events(0..3), 0).await.unwrap();
        assert_eq!(fake.commits().len(), 3);
        assert_eq!(fake.payloads().len(), 18);
        let markers: Vec<_> = fake
            .markers()
            .into_iter()
            .map(|m| (m.partition, m.first, m.last))
            .collect();
        assert_eq!(markers.len(), 3, "one per transaction: {markers:?}");
        for expected in [("s/t/1", 0, 9), ("s/t/1", 10, 14), ("s/t/2", 0, 2)] {
            assert!(
                markers.contains(&(expected.0.to_string(), expected.1, expected.2)),
                "{markers:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_once_a_commit_whose_reply_was_lost_is_not_written_again() {
        let fake = FakePravega::with_stream(2);
        fake.inject(Faults {
            lost_commit_replies: 1,
            ..Faults::default()
        });
        let (mut writer, _) = new_writer(&fake, WriterMode::ExactlyOnce);
        assert!(writer.deliver("s/t/1", events(0..10), 0).await.is_err());
        assert_eq!(fake.payloads().len(), 10, "committed all the same");
        // The retry reads the markers back first and finds the batch there.
        let retried = writer.deliver("s/t/1", events(0..12), 0).await.unwrap();
        assert_eq!(
            retried,
            Delivered {
                written: 2,
                skipped: 10
            }
        );
        assert_eq!(fake.payloads().len(), 12);
        assert_eq!(fake.commits().len(), 2);
    }

    #[tokio::test]
    async fn exactly_once_aborts_a_failed_batch_which_can_then_be_written() {
        let fake = FakePravega::with_stream(1);
        fake.inject(Faults {
            failed_commits: 1,
            ..Faults::default()
        });
        let (mut writer, _) = new_writer(&fake, WriterMode::ExactlyOnce);
        assert!(writer.deliver("s/t/1", events(0..4), 0).await.is_err());
        assert_eq!(fake.aborts(), ["txn-1"]);
        assert!(fake.payloads().is_empty(), "nothing of an aborted batch");
        assert!(fake.markers().is_empty(), "no position of an aborted batch");
        fake.inject(Faults {
            failed_writes: 1,
            ..Faults::default()
        });
        assert!(writer.deliver("s/t/1", events(0..4), 0).await.is_err());
        assert_eq!(fake.aborts(), ["txn-1", "txn-2"]);
        let retried = writer.deliver("s/t/1", events(0..4), 0).await.unwrap();
        assert_eq!(retried.written, 4);
        assert_eq!(fake.commits(), ["txn-3"]);
        assert_eq!(fake.payloads().len(), 4);
    }
}
