//! Apache Iggy connector: writes Iggy messages to a Pravega stream as
//! events, best effort, at least once or exactly once (transactions).
//! See README.md for settings and guarantees.

mod config;
mod mapping;
mod writer;

use async_trait::async_trait;
use config::SinkConfig;
use iggy_connector_sdk::{
    ConsumedMessage, Error, MessagesMetadata, Sink, TopicMetadata, sink_connector,
};
use iggy_connector_shared::pravega::RealClient;
use iggy_connector_shared::pravega::client::{ClientError, PravegaClient, ScalingPolicy};
use iggy_connector_shared::{Counters, RateLog, retry};
use mapping::{Mapper, Refusal};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use writer::Writer;

sink_connector!(PravegaSink);
iggy_connector_shared::connector_debug!(PravegaSink);

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

pub struct PravegaSink {
    id: u32,
    config: SinkConfig,
    connected: Option<Connected>,
    counters: Arc<Counters>,
    rate_log: RateLog,
}

impl PravegaSink {
    pub fn new(id: u32, config: SinkConfig) -> Self {
        Self {
            id,
            config,
            connected: None,
            counters: Arc::new(Counters::new(&COUNTERS)),
            rate_log: RateLog::new(),
        }
    }

    /// `open` after the client is made: checks the stream, sets up the writer.
    async fn connect(&mut self, client: Arc<dyn PravegaClient>) -> Result<(), Error> {
        let connection = &self.config.connection;
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
        // A process-unique writer id per open: Pravega tracks transactions by it.
        let writer_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            ^ (u128::from(self.id) << 96);
        self.connected = Some(Connected {
            create,
            mapper: Mapper::new(
                self.config.routing_key.clone(),
                self.config.missing_routing_key,
                self.config.max_event_bytes,
            ),
            writer: Mutex::new(Writer::new(
                client,
                self.config.writer_mode,
                writer_id,
                self.counters.clone(),
            )),
        });
        tracing::info!(
            "Pravega sink {} writes to {} ({:?}, routing key {:?})",
            self.id,
            connection.target(),
            self.config.writer_mode,
            self.config.routing_key
        );
        Ok(())
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
                let work = async {
                    if attempt > 1 {
                        writer.recover(connected.create).await?;
                    }
                    writer.deliver(source, events, timestamp_ms).await
                };
                // A cut attempt leaves the writers to the next one's `recover`.
                let outcome = tokio::time::timeout(attempt_timeout, work)
                    .await
                    .unwrap_or_else(|_| {
                        Err(ClientError::TimedOut(format!(
                            "writing the batch (attempt_timeout {attempt_timeout:?})"
                        )))
                    });
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

#[async_trait]
impl Sink for PravegaSink {
    async fn open(&mut self) -> Result<(), Error> {
        self.config.validate().map_err(Error::InvalidConfigValue)?;
        for risk in self.config.connection.risks() {
            tracing::warn!("Pravega sink {}: {risk}", self.id);
        }
        let client = RealClient::connect(&self.config.connection, self.config.transaction_timeout)
            .map_err(Error::InitError)?;
        self.connect(Arc::new(client)).await
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        let connected = self
            .connected
            .as_ref()
            .ok_or(Error::InitError("the Pravega sink is not open".into()))?;
        self.counters.add("batches", 1);
        let result = self
            .write_batch(connected, topic, metadata.partition_id, &messages)
            .await;
        if result.is_err() {
            self.counters.add("failed_batches", 1);
        }
        self.rate_log
            .maybe_log("pravega_sink", &self.counters, Duration::from_secs(30));
        result
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.connected = None;
        tracing::info!(
            "Pravega sink {} closed: {}",
            self.id,
            self.counters.summary()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
