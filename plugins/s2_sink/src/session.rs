//! The open sink: what it holds between `open` and `close`, and how it
//! writes a batch.

use crate::config::SinkConfig;
use crate::mapping::{Mapper, Position};
use crate::stream_template::StreamTemplate;
use crate::upsert::Upsert;
use crate::writer::{WriteError, Writer};
use async_trait::async_trait;
use iggy_connector_common::Counters;
use iggy_connector_common::retry::retry;
use iggy_connector_common::session_sink::SinkSession;
use iggy_connector_sdk::{ConsumedMessage, Error, MessagesMetadata, TopicMetadata};
use s2_sdk::types::{AppendRecord, FencingToken};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Records with the Iggy offset each came from, in offset order.
type OffsetRecords = Vec<(u64, AppendRecord)>;

const COUNTERS: [&str; 7] = [
    "appended",
    "skipped_duplicates",
    "skipped_invalid",
    "resyncs",
    "read_backs_cut",
    "retried_attempts",
    "failed_batches",
];

struct Connected {
    template: StreamTemplate,
    mapper: Mapper,
    // Appends to one stream must not interleave: each needs the tail the
    // previous one left.
    writer: Mutex<Writer>,
}

pub struct Session {
    id: u32,
    config: SinkConfig,
    connected: Connected,
    counters: Arc<Counters>,
}

impl Session {
    /// The batch's records grouped by target stream, each group in offset
    /// order. A message that cannot become a record (no stream name, no
    /// upsert key, over S2's record size) is skipped, counted and logged:
    /// failing the batch for it would lose the whole batch, as the runtime
    /// has committed it already.
    fn records(
        &self,
        connected: &Connected,
        topic: &TopicMetadata,
        partition: u32,
        source: &str,
        messages: &[ConsumedMessage],
    ) -> Vec<(String, OffsetRecords)> {
        let mut groups: Vec<(String, OffsetRecords)> = Vec::new();
        for message in messages {
            let target = match (connected.template.per_batch(), groups.first()) {
                (true, Some((name, _))) => Ok(name.clone()),
                _ => connected.template.render(topic, partition, message),
            };
            let mapped = target.and_then(|target| {
                let record = connected.mapper.record(source, message)?;
                Ok((target, record))
            });
            let (target, record) = match mapped {
                Ok(mapped) => mapped,
                Err(e) => {
                    self.counters.add("skipped_invalid", 1);
                    tracing::warn!(
                        "S2 sink {}: skipped the message at offset {} of {source}: {e}",
                        self.id,
                        message.offset
                    );
                    continue;
                }
            };
            match groups.iter_mut().find(|(name, _)| *name == target) {
                Some((_, records)) => records.push((message.offset, record)),
                None => groups.push((target, vec![(message.offset, record)])),
            }
        }
        groups
    }

    /// Writes one stream's records, trying again through an outage of the
    /// target as `retry` allows; each attempt is bounded by `attempt_timeout`.
    async fn write(
        &self,
        connected: &Connected,
        stream: &str,
        source: &str,
        records: &OffsetRecords,
    ) -> Result<(), String> {
        let started = Instant::now();
        let attempts = AtomicU32::new(0);
        let limit = self.config.attempt_timeout;
        let what = format!("S2 sink {}: writing to stream `{stream}`", self.id);
        let written = retry(&self.config.retry, &what, |attempt| {
            attempts.store(attempt, Ordering::Relaxed);
            async move {
                let mut writer = connected.writer.lock().await;
                let attempt = tokio::time::timeout(limit, writer.write(stream, source, records));
                match attempt.await {
                    Ok(result) => result,
                    Err(_) => {
                        // Cut mid-append: what landed is learned again.
                        writer.forget(stream);
                        Err(WriteError::timed_out(limit))
                    }
                }
            }
        })
        .await;
        let attempts = attempts.load(Ordering::Relaxed);
        self.counters
            .add("retried_attempts", u64::from(attempts.saturating_sub(1)));
        let outcome = written.map_err(|e| e.to_string())?;
        if attempts > 1 {
            tracing::info!(
                "S2 sink {}: stream `{stream}` written again after {attempts} attempts over {:.1?}",
                self.id,
                started.elapsed()
            );
        }
        self.counters.add("appended", outcome.appended);
        self.counters.add("skipped_duplicates", outcome.skipped);
        self.counters.add("resyncs", outcome.resyncs);
        self.counters.add("read_backs_cut", outcome.read_backs_cut);
        Ok(())
    }
}

#[async_trait]
impl SinkSession for Session {
    type Config = SinkConfig;
    const NAME: &'static str = "S2 sink";
    const PLUGIN: &'static str = "s2_sink";
    const COUNTERS: &'static [&'static str] = &COUNTERS;

    async fn open(id: u32, config: SinkConfig, counters: Arc<Counters>) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfigValue)?;
        let template = StreamTemplate::parse(&config.stream).map_err(Error::InvalidConfigValue)?;
        let upsert = config
            .upsert
            .as_ref()
            .map(Upsert::new)
            .transpose()
            .map_err(Error::InvalidConfigValue)?;
        let connection = &config.connection;
        let basin = connection.basin_client().map_err(Error::InitError)?;
        let fencing_token = match (config.fence, &config.fencing_token) {
            (false, _) => None,
            (true, Some(token)) => Some(
                token
                    .parse::<FencingToken>()
                    .map_err(|e| Error::InvalidConfigValue(format!("fencing_token: {e}")))?,
            ),
            (true, None) => Some(
                FencingToken::generate(16)
                    .map_err(|e| Error::InitError(format!("fencing token: {e}")))?,
            ),
        };
        let mut writer = Writer::new(
            basin,
            connection.clone(),
            fencing_token,
            config.create_stream.as_ref(),
            config.read_back,
        );
        // A fixed stream is checked now, so a wrong endpoint or basin fails `open`.
        if let Some(name) = template.fixed() {
            writer
                .prepare(name)
                .await
                .map_err(|e| Error::Connection(e.to_string()))?;
        }
        tracing::info!(
            "S2 sink {id} appends to `{}` in basin `{}` at {}{}",
            config.stream,
            connection.basin,
            connection.endpoint_for_logs(),
            if config.fence { ", fenced" } else { "" }
        );
        Ok(Self {
            id,
            config,
            connected: Connected {
                template,
                mapper: Mapper::new(upsert),
                writer: Mutex::new(writer),
            },
            counters,
        })
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        let connected = &self.connected;
        let partition = metadata.partition_id;
        let source = Position::source_of(topic, partition);
        let groups = self.records(connected, topic, partition, &source, &messages);
        for (stream, records) in &groups {
            if let Err(reason) = self.write(connected, stream, &source, records).await {
                self.counters.add("failed_batches", 1);
                let (first, last) = (messages.first(), messages.last());
                tracing::error!(
                    "S2 sink {}: gave up on the batch of offsets {}..={} of {source}: {reason}",
                    self.id,
                    first.map_or(0, |m| m.offset),
                    last.map_or(0, |m| m.offset),
                );
                return Err(Error::CannotStoreData(reason));
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}
