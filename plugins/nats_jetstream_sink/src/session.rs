//! The open sink: what it holds between `open` and `close`, and how it
//! writes a batch.

use crate::config::{SinkConfig, UnresolvedSubject};
use crate::mapping::{self, Mapper};
use crate::publisher::{Item, Publisher};
use crate::stream_check;
use async_trait::async_trait;
use iggy_connector_common::Counters;
use iggy_connector_common::session_sink::SinkSession;
use iggy_connector_sdk::{ConsumedMessage, Error, MessagesMetadata, TopicMetadata};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const COUNTERS: [&str; 6] = [
    "stored",
    "duplicates",
    "retried",
    "skipped",
    "withheld_nats_headers",
    "failed_batches",
];
/// The most `close` waits for the final flush: with the server gone,
/// async-nats would wait for a reconnect that may never come.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

struct Connected {
    client: async_nats::Client,
    mapper: Mapper,
    publisher: Publisher,
}

pub struct Session {
    id: u32,
    config: SinkConfig,
    connected: Connected,
    counters: Arc<Counters>,
    /// Withheld `Nats-*` headers are logged once, then only counted.
    withheld_logged: AtomicBool,
}

impl Session {
    /// Counts a message left out of its batch and says why.
    fn skip(&self, message: &ConsumedMessage, reason: &str) {
        self.counters.add("skipped", 1);
        tracing::warn!(
            "NATS sink {} skipped the message at offset {}: {reason}; {} skipped so far",
            self.id,
            message.offset,
            self.skipped()
        );
    }

    fn skipped(&self) -> u64 {
        self.counters.get("skipped").map_or(0, |c| c.get())
    }

    fn withhold_nats_headers(&self, mapper: &Mapper, message: &ConsumedMessage) {
        let withheld = mapper.withheld_headers(message);
        if withheld.is_empty() {
            return;
        }
        self.counters
            .add("withheld_nats_headers", withheld.len() as u64);
        if !self.withheld_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "NATS sink {}: Iggy headers {withheld:?} (message at offset {}) are not forwarded: NATS reads `Nats-*` headers as JetStream controls; set allow_nats_headers = true to forward them. Further ones are only counted.",
                self.id,
                message.offset
            );
        }
    }
}

#[async_trait]
impl SinkSession for Session {
    type Config = SinkConfig;
    const NAME: &'static str = "NATS JetStream sink";
    const PLUGIN: &'static str = "nats_jetstream_sink";
    const COUNTERS: &'static [&'static str] = &COUNTERS;

    async fn open(id: u32, config: SinkConfig, counters: Arc<Counters>) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfigValue)?;
        let mapper = Mapper::new(&config).map_err(Error::InvalidConfigValue)?;
        let client = config
            .connection
            .connect("iggy-nats-jetstream-sink")
            .await
            .map_err(Error::Connection)?;
        let timeout = config.connection.request_timeout;
        let js = async_nats::jetstream::context::ContextBuilder::new()
            .timeout(timeout)
            .build(client.clone());
        let target = stream_check::ensure_stream(&js, &config, mapper.template())
            .await
            .map_err(Error::InitError)?;
        tracing::info!(
            "NATS JetStream sink {id} publishes `{}` into stream `{}` on {}",
            config.subject,
            target.name,
            config.connection.servers_for_logs()
        );
        let publisher = Publisher::new(
            client.clone(),
            config.max_pending_acks,
            config.retry.clone(),
            timeout,
            target.full_subject,
        );
        Ok(Self {
            id,
            config,
            connected: Connected {
                client,
                mapper,
                publisher,
            },
            counters,
            withheld_logged: AtomicBool::new(false),
        })
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        mut messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        let connected = &self.connected;
        let partition = metadata.partition_id;
        let mut items = Vec::with_capacity(messages.len());
        for message in &mut messages {
            let subject = match connected.mapper.subject(topic, partition, message) {
                Ok(subject) => subject,
                Err(reason) if self.config.on_unresolved_subject == UnresolvedSubject::Skip => {
                    self.skip(message, &reason);
                    continue;
                }
                Err(reason) => {
                    self.counters.add("failed_batches", 1);
                    return Err(Error::InvalidRecordValue(format!(
                        "message at offset {}: {reason}",
                        message.offset
                    )));
                }
            };
            let payload = match mapping::take_payload(message) {
                Ok(payload) => payload,
                Err(reason) => {
                    self.skip(message, &reason);
                    continue;
                }
            };
            self.withhold_nats_headers(&connected.mapper, message);
            items.push(Item {
                subject,
                message,
                payload,
            });
        }
        let mapper = connected.mapper.for_batch(topic, partition);
        let result = connected
            .publisher
            .publish_all(&items, |item| mapper.headers(item.message))
            .await;
        match result {
            Ok(report) => {
                self.counters.add("stored", report.stored);
                self.counters.add("duplicates", report.duplicates);
                self.counters.add("retried", report.retried);
                if report.skipped > 0 {
                    self.counters.add("skipped", report.skipped);
                    tracing::warn!(
                        "NATS sink {}: {} message(s) of the batch left out as unstorable; {} skipped so far",
                        self.id,
                        report.skipped,
                        self.skipped()
                    );
                }
                Ok(())
            }
            Err(reason) => {
                self.counters.add("failed_batches", 1);
                Err(Error::CannotStoreData(reason))
            }
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        match tokio::time::timeout(CLOSE_LIMIT, self.connected.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!("NATS sink {}: flush on close failed: {error}", self.id)
            }
            // Every stored message was acknowledged already; nothing is lost.
            Err(_) => tracing::warn!(
                "NATS sink {}: no flush within {CLOSE_LIMIT:?} on close (is the server down?); closing anyway",
                self.id
            ),
        }
        Ok(())
    }
}
