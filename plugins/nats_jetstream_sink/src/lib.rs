//! Apache Iggy connector: publishes Iggy messages to NATS JetStream.
//! See README.md for settings and guarantees.

mod ack;
mod config;
mod mapping;
mod publisher;
mod stream_check;
mod subject_template;

use async_trait::async_trait;
use config::{SinkConfig, UnresolvedSubject};
use iggy_connector_sdk::{
    ConsumedMessage, Error, MessagesMetadata, Sink, TopicMetadata, sink_connector,
};
use iggy_connector_shared::{Counters, RateLog};
use mapping::Mapper;
use publisher::{Item, Publisher};
use std::time::Duration;

sink_connector!(NatsJetStreamSink);

const COUNTERS: [&str; 5] = [
    "stored",
    "duplicates",
    "retried",
    "skipped",
    "failed_batches",
];

struct Connected {
    client: async_nats::Client,
    mapper: Mapper,
    publisher: Publisher,
}

pub struct NatsJetStreamSink {
    id: u32,
    config: SinkConfig,
    connected: Option<Connected>,
    counters: Counters,
    rate_log: RateLog,
}

impl NatsJetStreamSink {
    pub fn new(id: u32, config: SinkConfig) -> Self {
        Self {
            id,
            config,
            connected: None,
            counters: Counters::new(&COUNTERS),
            rate_log: RateLog::new(),
        }
    }
}

#[async_trait]
impl Sink for NatsJetStreamSink {
    async fn open(&mut self) -> Result<(), Error> {
        self.config.validate().map_err(Error::InvalidConfigValue)?;
        let mapper = Mapper::new(&self.config).map_err(Error::InvalidConfigValue)?;
        let client = self
            .config
            .connection
            .connect("iggy-nats-jetstream-sink")
            .await
            .map_err(Error::Connection)?;
        let timeout = self.config.connection.request_timeout;
        let js = async_nats::jetstream::context::ContextBuilder::new()
            .timeout(timeout)
            .build(client.clone());
        let stream = stream_check::ensure_stream(&js, &self.config, mapper.template())
            .await
            .map_err(Error::InitError)?;
        tracing::info!(
            "NATS JetStream sink {} publishes `{}` into stream `{stream}` on {}",
            self.id,
            self.config.subject,
            self.config.connection.servers_for_logs()
        );
        let publisher = Publisher::new(
            client.clone(),
            self.config.max_pending_acks,
            self.config.retry.clone(),
            timeout,
        );
        self.connected = Some(Connected {
            client,
            mapper,
            publisher,
        });
        Ok(())
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        mut messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        let connected = self
            .connected
            .as_ref()
            .ok_or(Error::InitError("the sink is not open".into()))?;
        let partition = metadata.partition_id;
        let mut items = Vec::with_capacity(messages.len());
        for message in &mut messages {
            match connected.mapper.subject(topic, partition, message) {
                Ok(subject) => {
                    let payload = mapping::take_payload(message).map_err(|reason| {
                        self.counters.add("failed_batches", 1);
                        Error::InvalidRecordValue(format!(
                            "message at offset {}: {reason}",
                            message.offset
                        ))
                    })?;
                    items.push(Item {
                        subject,
                        message,
                        payload,
                    });
                }
                Err(reason) if self.config.on_unresolved_subject == UnresolvedSubject::Skip => {
                    self.counters.add("skipped", 1);
                    tracing::warn!(
                        "NATS sink {} skipped the message at offset {}: {reason}",
                        self.id,
                        message.offset
                    );
                }
                Err(reason) => {
                    self.counters.add("failed_batches", 1);
                    return Err(Error::InvalidRecordValue(format!(
                        "message at offset {}: {reason}",
                        message.offset
                    )));
                }
            }
        }
        let mapper = connected.mapper.for_batch(topic, partition);
        let result = connected
            .publisher
            .publish_all(&items, |item| mapper.headers(item.message))
            .await;
        self.rate_log.maybe_log(
            "nats_jetstream_sink",
            &self.counters,
            Duration::from_secs(30),
        );
        match result {
            Ok(report) => {
                self.counters.add("stored", report.stored);
                self.counters.add("duplicates", report.duplicates);
                self.counters.add("retried", report.retried);
                Ok(())
            }
            Err(reason) => {
                self.counters.add("failed_batches", 1);
                Err(Error::CannotStoreData(reason))
            }
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        if let Some(connected) = self.connected.take()
            && let Err(error) = connected.client.flush().await
        {
            tracing::warn!("NATS sink {}: flush on close failed: {error}", self.id);
        }
        tracing::info!(
            "NATS JetStream sink {} closed: {}",
            self.id,
            self.counters.summary()
        );
        Ok(())
    }
}
