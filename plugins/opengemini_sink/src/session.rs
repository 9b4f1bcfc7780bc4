//! The open sink: what it holds between `open` and `close`, and how it
//! writes a batch.

use crate::batch::LineBatch;
use crate::client::Client;
use crate::config::SinkConfig;
use crate::mapping::{Mapper, Origin};
use crate::writer::{self, Outcome};
use async_trait::async_trait;
use iggy_connector_common::Counters;
use iggy_connector_common::session_sink::SinkSession;
use iggy_connector_sdk::{ConsumedMessage, Error, MessagesMetadata, TopicMetadata};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{JoinError, JoinHandle};

const COUNTERS: [&str; 6] = [
    "points_written",
    "requests",
    "split_requests",
    "invalid_records",
    "refused_points",
    "failed_batches",
];

/// Invalid records logged one by one per batch; the rest are summarised.
const INVALID_LOGGED: usize = 20;

/// How long `close` lets the last background write (`pipelined_writes`)
/// finish before abandoning it: the write retries through an outage for
/// minutes, and the runtime gives a stopping sink's consume 5 s before it
/// closes the sink (runtime/src/manager/sink.rs, stop_connector).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// A batch's write running in the background (`pipelined_writes`).
#[derive(Debug)]
struct BackgroundWrite {
    handle: JoinHandle<Outcome>,
    points: usize,
    /// The Iggy offsets of its first and last point.
    offsets: (u64, u64),
}

pub struct Session {
    id: u32,
    config: SinkConfig,
    client: Arc<Client>,
    mapper: Mapper,
    /// With `pipelined_writes`: the write of the last batch handed over.
    in_flight: tokio::sync::Mutex<Option<BackgroundWrite>>,
    counters: Arc<Counters>,
}

impl Session {
    /// Pings every endpoint, naming the server behind each; fails only when
    /// none answers.
    async fn ping_endpoints(&self) -> Result<(), Error> {
        let client = &self.client;
        let mut failures = Vec::new();
        for (index, name) in client.endpoint_names().enumerate() {
            match client.ping(index).await {
                Ok(server) => tracing::info!("openGemini sink {}: {name} is {server}", self.id),
                Err(error) => {
                    tracing::warn!("openGemini sink {}: ping failed: {error}", self.id);
                    failures.push(error.to_string());
                }
            }
        }
        if failures.len() == client.endpoint_names().count() {
            return Err(Error::Connection(format!(
                "no endpoint answered /ping: {}",
                failures.join("; ")
            )));
        }
        Ok(())
    }

    /// Maps every message, leaving out (and reporting) those that cannot be points.
    fn map(
        &self,
        mapper: &Mapper,
        topic: &TopicMetadata,
        partition: u32,
        messages: &[ConsumedMessage],
    ) -> LineBatch {
        let origin = Origin {
            stream: &topic.stream,
            topic: &topic.topic,
            partition: partition.to_string(),
        };
        let bytes = messages.len().saturating_mul(128);
        let mut batch = LineBatch::with_capacity(messages.len(), bytes);
        let mut invalid = Vec::new();
        for message in messages {
            if let Err(reason) = mapper.append(&origin, message, &mut batch) {
                if invalid.len() < INVALID_LOGGED {
                    tracing::warn!(
                        "openGemini sink {}: the message at offset {} of {}/{} partition {partition} is not written: {reason}",
                        self.id,
                        message.offset,
                        topic.stream,
                        topic.topic
                    );
                }
                invalid.push(message.offset);
            }
        }
        if invalid.len() > INVALID_LOGGED {
            tracing::warn!(
                "openGemini sink {}: {} more invalid messages of {}/{} partition {partition}, offsets {}..={}",
                self.id,
                invalid.len() - INVALID_LOGGED,
                topic.stream,
                topic.topic,
                invalid[INVALID_LOGGED],
                invalid[invalid.len() - 1]
            );
        }
        self.counters.add("invalid_records", invalid.len() as u64);
        batch
    }

    /// Counts and reports a batch's writes; `Err` when a point was not written.
    fn settle(&self, outcome: Outcome) -> Result<(), Error> {
        self.counters.add("points_written", outcome.written as u64);
        self.counters.add("requests", outcome.requests as u64);
        self.counters.add("split_requests", outcome.splits as u64);
        for refused in &outcome.refused {
            self.counters.add("refused_points", refused.points as u64);
            tracing::error!(
                "openGemini sink {}: a request of {} points (offsets {}..={}) was refused and is not retried: {}",
                self.id,
                refused.points,
                refused.first_offset,
                refused.last_offset,
                refused.reason
            );
        }
        if let Some(stopped) = outcome.stopped {
            self.counters.add("failed_batches", 1);
            return Err(Error::CannotStoreData(format!(
                "{} points (offsets {}..={}) not written: {}",
                stopped.points, stopped.first_offset, stopped.last_offset, stopped.reason
            )));
        }
        if let Some(first) = outcome.refused.first() {
            self.counters.add("failed_batches", 1);
            let points: usize = outcome.refused.iter().map(|r| r.points).sum();
            return Err(Error::PermanentHttpError(format!(
                "{points} points in {} request(s) refused, first at offsets {}..={}: {}",
                outcome.refused.len(),
                first.first_offset,
                first.last_offset,
                first.reason
            )));
        }
        Ok(())
    }

    /// Waits for the last background write, at most [`CLOSE_GRACE`]: an
    /// unreachable server must not hold `close` up for the outage deadline.
    async fn finish(&self, mut last: BackgroundWrite) -> Result<(), Error> {
        match tokio::time::timeout(CLOSE_GRACE, &mut last.handle).await {
            Ok(outcome) => joined(outcome)
                .and_then(|outcome| self.settle(outcome))
                .map_err(previous_batch_failed),
            Err(_) => {
                last.handle.abort();
                self.counters.add("failed_batches", 1);
                let (first, end) = last.offsets;
                Err(Error::CannotStoreData(format!(
                    "the last batch's background write (pipelined_writes) had not finished {} s after close began and was abandoned: up to {} points (offsets {first}..={end}) not written",
                    CLOSE_GRACE.as_secs(),
                    last.points
                )))
            }
        }
    }
}

#[async_trait]
impl SinkSession for Session {
    type Config = SinkConfig;
    const NAME: &'static str = "openGemini sink";
    const PLUGIN: &'static str = "opengemini_sink";
    const COUNTERS: &'static [&'static str] = &COUNTERS;

    async fn open(id: u32, config: SinkConfig, counters: Arc<Counters>) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfigValue)?;
        let mapper =
            Mapper::new(&config.mapping, config.precision).map_err(Error::InvalidConfigValue)?;
        let client = Arc::new(Client::new(&config, id).map_err(Error::InvalidConfigValue)?);
        let session = Self {
            id,
            config,
            client,
            mapper,
            in_flight: tokio::sync::Mutex::new(None),
            counters,
        };
        session.ping_endpoints().await?;
        let (client, config) = (&session.client, &session.config);
        writer::ensure_database(client, &config.database, config.create_database)
            .await
            .map_err(Error::InitError)?;
        tracing::info!(
            "openGemini sink {id} writes to database `{}` on {} in requests of {} points",
            config.database,
            client.endpoint_names().collect::<Vec<_>>().join(", "),
            config.batch_size
        );
        Ok(session)
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        let batch = self.map(&self.mapper, topic, metadata.partition_id, &messages);
        if !self.config.pipelined_writes {
            let write = writer::write_concurrently(
                &self.client,
                &batch,
                self.config.batch_size,
                self.config.write_concurrency,
                self.config.create_database,
            );
            // Freeing thousands of parsed payloads takes a while: do it once
            // the first request is on its way, while the server works.
            let (outcome, ()) = tokio::join!(write, async move { drop(messages) });
            return self.settle(outcome);
        }
        let mut in_flight = self.in_flight.lock().await;
        // Writes stay in order: this batch's starts once the previous one's
        // ended. The previous write is awaited where it is kept, so that if
        // this call is dropped (the SDK drops a consume still running at
        // close), `close` still finds it and bounds it.
        let previous = match in_flight.as_mut() {
            Some(previous) => {
                let (outcome, ()) =
                    tokio::join!(&mut previous.handle, async move { drop(messages) });
                *in_flight = None;
                joined(outcome)
                    .and_then(|outcome| self.settle(outcome))
                    .map_err(previous_batch_failed)
            }
            None => Ok(()),
        };
        // Handed over even when the previous write failed: a runtime that
        // commits on poll will not deliver this batch again; one that does
        // rewrites the same points.
        let client = Arc::clone(&self.client);
        let config = &self.config;
        let (batch_size, concurrency, create_database) = (
            config.batch_size,
            config.write_concurrency,
            config.create_database,
        );
        let (points, offsets) = (batch.len(), batch.offsets(0..batch.len()));
        let handle = tokio::spawn(async move {
            writer::write_concurrently(&client, &batch, batch_size, concurrency, create_database)
                .await
        });
        *in_flight = Some(BackgroundWrite {
            handle,
            points,
            offsets,
        });
        previous
    }

    async fn close(&mut self) -> Result<(), Error> {
        let result = match self.in_flight.get_mut().take() {
            Some(last) => self.finish(last).await,
            None => Ok(()),
        };
        if let Err(error) = &result {
            tracing::error!("openGemini sink {}: at close: {error}", self.id);
        }
        result
    }
}

fn joined(result: Result<Outcome, JoinError>) -> Result<Outcome, Error> {
    result.map_err(|error| Error::CannotStoreData(format!("the write task failed: {error}")))
}

fn previous_batch_failed(error: Error) -> Error {
    Error::CannotStoreData(format!(
        "the previous batch, written in the background (pipelined_writes), failed: {error}"
    ))
}
