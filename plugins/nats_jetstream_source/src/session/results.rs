//! The runtime's answer to a batch: Ack commits it, Nack gives it all back.

use super::Session;
use crate::client::acks;

impl Session {
    /// Ack: the batch is in Iggy. Its progress becomes the committed one and
    /// its deliveries are acknowledged in NATS. A failed ack loses nothing:
    /// NATS sends the messages again and the saved progress skips them.
    pub(super) async fn commit(&mut self) {
        let mut just_finished = false;
        if let Some(staged) = self.staged.take() {
            let produced = staged.produced - self.committed.produced;
            if produced > 0 {
                self.counters.add("messages", produced);
                self.counters.add("batches", 1);
            }
            just_finished = staged.finished && !self.committed.finished;
            self.committed = staged;
        }
        // The previous batch's confirmations may still be on their way; one
        // batch's worth is let run, so acks never pile up.
        self.settle_acks(self.readers.len()).await;
        for reader in &mut self.readers {
            // Confirmed in the background: the confirmation waits behind the
            // batch already being fetched on the same connection, and the
            // progress is safe in the state whatever becomes of the ack.
            let in_flight = std::mem::take(&mut reader.in_flight);
            if !in_flight.is_empty() {
                let (client, mode, name) =
                    (self.client.clone(), reader.ack_mode, reader.name.clone());
                self.confirmations.spawn(async move {
                    if let Err(error) = acks::ack(&client, mode, &in_flight).await {
                        tracing::warn!(
                            "consumer `{name}`: {error}; NATS will send those messages again and they will be skipped"
                        );
                    }
                });
            }
            // Past the bound, so never ahead of anything still to be read.
            let given_back = std::mem::take(&mut reader.given_back);
            if !given_back.is_empty()
                && let Err(error) =
                    acks::nak(&self.client, given_back.iter().map(|d| &d.reply)).await
            {
                tracing::warn!("consumer `{}`: {error}", reader.name);
                // Not NAKed, they would come back late and out of order.
                reader.cursor.lost_deliveries = true;
            }
        }
        if just_finished {
            // Nothing more is read; what these fetches bring stays pending in NATS.
            self.fetches.abort_all();
            tracing::info!(
                "NATS JetStream source {} finished: the stop rule was reached after {} messages; it produces nothing more",
                self.id,
                self.committed.produced
            );
        }
    }

    /// Waits until at most `outstanding` ack confirmations are pending.
    pub(super) async fn settle_acks(&mut self, outstanding: usize) {
        while self.confirmations.len() > outstanding
            && self.confirmations.join_next().await.is_some()
        {}
    }

    /// Nack: the batch did not reach Iggy. Everything held (the batch and what
    /// was fetched since) is NAKed in order and read again.
    pub(super) async fn roll_back(&mut self) {
        self.staged = None;
        self.settle_acks(0).await;
        self.counters.add("nacked_batches", 1);
        while let Some(result) = self.fetches.join_next_with_id().await {
            let Some((index, fetched, _)) = self.finished_fetch(result) else {
                continue;
            };
            let reader = &mut self.readers[index];
            for prepared in fetched.deliveries {
                if reader.cursor.accept(&reader.name, &prepared.position) {
                    reader
                        .given_back
                        .push(prepared.position.unacked(prepared.reply));
                }
            }
        }
        for reader in &mut self.readers {
            reader.cursor.high_water = self.committed.last(&reader.name).unwrap_or_default();
            reader.cursor.done = false;
            // In delivery order: the batch, then what came after it.
            let mut held = std::mem::take(&mut reader.in_flight);
            held.append(&mut reader.given_back);
            if held.is_empty() || reader.cursor.lost_deliveries {
                continue;
            }
            if let Err(error) = acks::nak(&self.client, held.iter().map(|d| &d.reply)).await {
                tracing::warn!("consumer `{}`: {error}", reader.name);
                // Not NAKed, they would come back late and out of order.
                reader.cursor.lost_deliveries = true;
            }
        }
    }
}
