//! The open sink: what it holds between `open` and `close`, and how it
//! writes a batch.

use crate::config::{SinkConfig, WriterMode};
use crate::mapping::{Mapper, Refusal};
use crate::positions;
use crate::writer::Writer;
use async_trait::async_trait;
use iggy_connector_common::session_sink::SinkSession;
use iggy_connector_common::{Counters, retry};
use iggy_connector_pravega_common::RealClient;
use iggy_connector_pravega_common::client::{ClientError, PravegaClient, ScalingPolicy};
use iggy_connector_sdk::{ConsumedMessage, Error, MessagesMetadata, TopicMetadata};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

const COUNTERS: [&str; 7] = [
    "written",
    "skipped_duplicates",
    "refused",
    "missing_routing_key",
    "unacknowledged",
    "failed_batches",
    "batches",
];

struct Connected {
    mapper: Mapper,
    /// `[create]`'s policy: a failed batch makes the stream again before
    /// its next attempt.
    create: Option<ScalingPolicy>,
    // One batch at a time: exactly once keeps one transaction per batch,
    // and at least once waits for the batch's own acknowledgements.
    writer: Mutex<Writer>,
}

pub struct Session {
    id: u32,
    config: SinkConfig,
    connected: Connected,
    counters: Arc<Counters>,
}

impl Session {
    /// `open` after the client is made: checks the stream, sets up the writer.
    async fn connect(
        id: u32,
        config: SinkConfig,
        client: Arc<dyn PravegaClient>,
        counters: Arc<Counters>,
    ) -> Result<Self, Error> {
        let connection = &config.connection;
        let unreachable = |e: &dyn std::fmt::Display| Error::Connection(connection.describe(e));
        let create = connection
            .create
            .as_ref()
            .map(|create| create.scaling_policy().map_err(Error::InvalidConfigValue))
            .transpose()?;
        // Either way a wrong controller, scope or stream fails `open`.
        match create {
            Some(policy) => {
                client
                    .ensure_stream(policy)
                    .await
                    .map_err(|e| unreachable(&e))?;
            }
            None => {
                if !client.stream_exists().await.map_err(|e| unreachable(&e))? {
                    return Err(unreachable(
                        &"the stream does not exist (add [plugin_config.create] to create it)",
                    ));
                }
            }
        }
        // Exactly once: what earlier runs committed is skipped from the start.
        let committed = if config.writer_mode == WriterMode::ExactlyOnce {
            let started = std::time::Instant::now();
            let found = positions::read_back(client.as_ref())
                .await
                .map_err(|e| unreachable(&format!("reading the position markers back: {e}")))?;
            tracing::info!(
                "Pravega sink {id}: {} position markers in {} events read back in {:?}; committed: {:?}",
                found.markers,
                found.events,
                started.elapsed(),
                found.committed
            );
            found.committed
        } else {
            positions::Committed::new()
        };
        // A process-unique writer id per open: Pravega tracks transactions by it.
        let writer_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            ^ (u128::from(id) << 96);
        let connected = Connected {
            create,
            mapper: Mapper::new(
                config.routing_key.clone(),
                config.missing_routing_key,
                config.max_event_bytes,
            ),
            writer: Mutex::new(Writer::new(
                client,
                config.writer_mode,
                writer_id,
                committed,
                Arc::clone(&counters),
            )),
        };
        tracing::info!(
            "Pravega sink {id} writes to {} ({:?}, routing key {:?})",
            connection.target(),
            config.writer_mode,
            config.routing_key
        );
        Ok(Self {
            id,
            config,
            connected,
            counters,
        })
    }

    async fn write_batch(
        &self,
        connected: &Connected,
        topic: &TopicMetadata,
        partition: u32,
        messages: &[ConsumedMessage],
    ) -> Result<(), Error> {
        let source = format!("{}/{}/{partition}", topic.stream, topic.topic);
        let mut events = Vec::with_capacity(messages.len());
        for message in messages {
            match connected.mapper.event(partition, message) {
                Ok((event, missing_key)) => {
                    self.counters
                        .add("missing_routing_key", u64::from(missing_key));
                    events.push(event);
                }
                // Left out, not failing the batch: the runtime has already
                // committed its offsets, and Pravega would refuse the event
                // on every retry.
                Err(refusal) => {
                    let counter = match refusal {
                        Refusal::NoRoutingKey => "missing_routing_key",
                        _ => "refused",
                    };
                    self.counters.add(counter, 1);
                    tracing::warn!(
                        "Pravega sink {}: message at offset {} of {source} skipped: {refusal}",
                        self.id,
                        message.offset
                    );
                }
            }
        }
        let timestamp_ms = messages.iter().map(|m| m.timestamp).max().unwrap_or(0) / 1000;
        let connection = &self.config.connection;
        let attempt_timeout = self.config.attempt_timeout;
        let what = format!("Pravega sink {}: batch of {source}", self.id);
        let delivered = retry(&self.config.retry, &what, |attempt| {
            let events = events.clone();
            let source = &source;
            async move {
                let mut writer = connected.writer.lock().await;
                let mut outcome = Ok(());
                if attempt > 1 {
                    outcome = within(
                        attempt_timeout,
                        "making the writers anew",
                        writer.recover(connected.create),
                    )
                    .await;
                    // Untimed (each client call has its own limit): after an
                    // unknown commit it reads the whole stream.
                    if outcome.is_ok() {
                        outcome = writer.settle().await;
                    }
                }
                let outcome = match outcome {
                    Ok(()) => {
                        let work = writer.deliver(source, events, timestamp_ms);
                        within(attempt_timeout, "writing the batch", work).await
                    }
                    Err(e) => Err(e),
                };
                // The retry logs each failure: never with a credential.
                outcome.map_err(|e| ClientError::Failed(connection.describe(&e)))
            }
        })
        .await
        .map_err(|e| {
            tracing::error!("{what}: not written: {e}");
            Error::CannotStoreData(e.to_string())
        })?;
        self.counters.add("written", delivered.written);
        self.counters.add("skipped_duplicates", delivered.skipped);
        Ok(())
    }
}

/// `work` cut at `limit`: a cut attempt leaves the writers to the next
/// one's `recover`.
async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(ClientError::TimedOut(format!(
            "{what} (attempt_timeout {limit:?})"
        )))
    })
}

#[async_trait]
impl SinkSession for Session {
    type Config = SinkConfig;
    const NAME: &'static str = "Pravega sink";
    const PLUGIN: &'static str = "pravega_sink";
    const COUNTERS: &'static [&'static str] = &COUNTERS;

    async fn open(id: u32, config: SinkConfig, counters: Arc<Counters>) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfigValue)?;
        for risk in config.connection.risks() {
            tracing::warn!("Pravega sink {id}: {risk}");
        }
        let client = RealClient::connect(&config.connection, config.transaction_timeout)
            .map_err(Error::InitError)?;
        Self::connect(id, config, Arc::new(client), counters).await
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        self.counters.add("batches", 1);
        let result = self
            .write_batch(&self.connected, topic, metadata.partition_id, &messages)
            .await;
        if result.is_err() {
            self.counters.add("failed_batches", 1);
        }
        result
    }

    async fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
