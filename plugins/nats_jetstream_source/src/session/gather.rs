//! Gathering a batch: starting fetches, judging what they bring, and
//! deciding when bounded mode is done.

use super::{FetchResult, Session};
use crate::client::fetch;
use crate::mapping::Prepared;
use crate::progress::Progress;
use crate::reader::Verdict;
use iggy_connector_sdk::ProducedMessage;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What one poll gathered before it becomes a batch.
#[derive(Default)]
pub(super) struct Gathered {
    pub messages: Vec<ProducedMessage>,
    /// Readers whose fetch found nothing, with the fetch's logical start.
    pub came_back_empty: Vec<(usize, u64)>,
    pub fetch_errors: Vec<String>,
}

impl Session {
    /// Starts a fetch for every reader that should have one and has room.
    pub(super) fn start_fetches(&mut self, produced: u64) {
        let quota = self.rules.as_ref().and_then(|r| r.quota_left(produced));
        for (index, reader) in self.readers.iter_mut().enumerate() {
            let quota_room = quota.map_or(usize::MAX, |q| usize::try_from(q).unwrap_or(usize::MAX));
            let room = reader.fetch_room(self.batch_size).min(quota_room);
            if !reader.wants_fetch() || room == 0 {
                continue;
            }
            let consumer = Arc::clone(&reader.consumer);
            let mapper = Arc::clone(&self.mapper);
            let limits = fetch::Limits {
                max_messages: room,
                max_bytes: self.max_bytes,
                max_wait: self.max_wait,
            };
            let handle = self.fetches.spawn(async move {
                let prepared =
                    fetch::fetch(consumer, limits, |delivery| mapper.prepare(delivery)).await;
                (index, prepared)
            });
            reader.fetch = Some((handle.id(), self.watch.stamp()));
        }
    }

    /// The reader a finished fetch task belonged to, with its result.
    pub(super) fn finished_fetch(
        &mut self,
        result: FetchResult,
    ) -> Option<(usize, fetch::Fetched<Prepared>, u64)> {
        match result {
            Ok((_, (index, fetched))) => {
                let started = self.readers[index].fetch.take().map_or(0, |(_, at)| at);
                Some((index, fetched, started))
            }
            Err(error) => {
                // The task's deliveries are unknown: treat them as missing.
                let task = error.id();
                if let Some(reader) = self
                    .readers
                    .iter_mut()
                    .find(|r| r.fetch.is_some_and(|(id, _)| id == task))
                {
                    reader.fetch = None;
                    reader.cursor.lost_deliveries = true;
                    tracing::error!("consumer `{}`: fetch task failed: {error}", reader.name);
                }
                None
            }
        }
    }

    /// Judges one fetch's deliveries into the batch.
    pub(super) fn absorb(
        &mut self,
        result: FetchResult,
        staged: &mut Progress,
        gathered: &mut Gathered,
    ) {
        let Some((index, fetched, started)) = self.finished_fetch(result) else {
            return;
        };
        if let Some(error) = fetched.error {
            gathered
                .fetch_errors
                .push(format!("consumer `{}`: {error}", self.readers[index].name));
        } else if fetched.deliveries.is_empty() {
            gathered.came_back_empty.push((index, started));
        }
        let reader = &mut self.readers[index];
        let mut last_produced = None;
        for prepared in fetched.deliveries {
            let quota = self
                .rules
                .as_ref()
                .and_then(|r| r.quota_left(staged.produced));
            let position = prepared.position;
            let unacked = position.unacked(prepared.reply);
            match reader.judge(&position, self.rules.as_ref(), quota) {
                verdict @ (Verdict::Produce | Verdict::ProduceLast) => {
                    if verdict == Verdict::ProduceLast {
                        self.watch.mark_passed();
                    }
                    reader.in_flight.push(unacked);
                    last_produced = Some(position.stream_sequence);
                    staged.produced += 1;
                    if prepared.dropped_headers > 0 {
                        self.counters
                            .add("dropped_headers", prepared.dropped_headers as u64);
                    }
                    gathered.messages.push(prepared.message);
                }
                Verdict::Skip => {
                    self.counters.add("skipped_redeliveries", 1);
                    reader.in_flight.push(unacked);
                }
                Verdict::Beyond => {
                    self.watch.mark_passed();
                    reader.given_back.push(unacked);
                }
                Verdict::OverQuota => reader.given_back.push(unacked),
                Verdict::Lost => {}
            }
        }
        // Produced sequences only grow within a fetch, so the last one is the progress.
        if let Some(sequence) = last_produced {
            staged.consumers.insert(reader.name.clone(), sequence);
        }
    }

    /// Bounded mode: a consumer whose fetch found nothing is done once the
    /// stream is known to be past the bound (see `BoundWatch`).
    pub(super) async fn conclude_empty_readers(&mut self, came_back_empty: &[(usize, u64)]) {
        let (Some(rules), Some(stream)) = (&self.rules, &self.stream) else {
            return;
        };
        if came_back_empty.is_empty() || !rules.has_bound() {
            return;
        }
        if !self.watch.is_passed() {
            match stream.get_info().await {
                Ok(info) if rules.stream_passed(info.state.last_sequence, now_micros()) => {
                    self.watch.mark_passed();
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(
                    "NATS JetStream source {}: cannot read the stream's state for the stop rule: {error}",
                    self.id
                ),
            }
        }
        for (index, started) in came_back_empty {
            if self.watch.empty_fetch_ends(*started) {
                self.readers[*index].cursor.done = true;
            }
        }
    }

    pub(super) fn is_finished(&self, staged: &Progress) -> bool {
        let Some(rules) = &self.rules else {
            return false;
        };
        rules.quota_left(staged.produced) == Some(0)
            || rules.has_bound()
                && self.watch.is_passed()
                && self.readers.iter().all(|r| r.cursor.done)
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
