//! Apache Iggy connector: appends Iggy messages to S2 streams, exactly once.
//! See README.md for settings and guarantees.

mod batches;
mod config;
mod mapping;
mod progress;
mod stream_template;
mod upsert;
mod writer;

use async_trait::async_trait;
use config::SinkConfig;
use iggy_connector_sdk::{
    ConsumedMessage, Error, MessagesMetadata, Sink, TopicMetadata, sink_connector,
};
use iggy_connector_shared::{Counters, RateLog};
use mapping::{Mapper, Position};
use s2_sdk::types::{AppendRecord, FencingToken};
use std::time::Duration;
use stream_template::StreamTemplate;
use tokio::sync::Mutex;
use upsert::Upsert;
use writer::Writer;

sink_connector!(S2Sink);

/// Records with the Iggy offset each came from, in offset order.
type OffsetRecords = Vec<(u64, AppendRecord)>;

const COUNTERS: [&str; 5] = [
    "appended",
    "skipped_duplicates",
    "resyncs",
    "read_backs_cut",
    "failed_batches",
];

struct Connected {
    template: StreamTemplate,
    mapper: Mapper,
    // Appends to one stream must not interleave: each needs the tail the
    // previous one left.
    writer: Mutex<Writer>,
}

pub struct S2Sink {
    id: u32,
    config: SinkConfig,
    connected: Option<Connected>,
    counters: Counters,
    rate_log: RateLog,
}

impl S2Sink {
    pub fn new(id: u32, config: SinkConfig) -> Self {
        Self {
            id,
            config,
            connected: None,
            counters: Counters::new(&COUNTERS),
            rate_log: RateLog::new(),
        }
    }

    /// The batch's records grouped by target stream, each group in offset order.
    fn records(
        &self,
        connected: &Connected,
        topic: &TopicMetadata,
        partition: u32,
        source: &str,
        messages: &[ConsumedMessage],
    ) -> Result<Vec<(String, OffsetRecords)>, String> {
        let mut groups: Vec<(String, OffsetRecords)> = Vec::new();
        for message in messages {
            let at = |e: String| format!("message at offset {}: {e}", message.offset);
            let target = match (connected.template.per_batch(), groups.first()) {
                (true, Some((name, _))) => name.clone(),
                _ => connected
                    .template
                    .render(topic, partition, message)
                    .map_err(at)?,
            };
            let record = connected.mapper.record(source, message).map_err(at)?;
            match groups.iter_mut().find(|(name, _)| *name == target) {
                Some((_, records)) => records.push((message.offset, record)),
                None => groups.push((target, vec![(message.offset, record)])),
            }
        }
        Ok(groups)
    }
}

#[async_trait]
impl Sink for S2Sink {
    async fn open(&mut self) -> Result<(), Error> {
        self.config.validate().map_err(Error::InvalidConfigValue)?;
        let template =
            StreamTemplate::parse(&self.config.stream).map_err(Error::InvalidConfigValue)?;
        let upsert = self
            .config
            .upsert
            .as_ref()
            .map(Upsert::new)
            .transpose()
            .map_err(Error::InvalidConfigValue)?;
        let connection = &self.config.connection;
        let basin = connection.basin_client().map_err(Error::InitError)?;
        let fencing_token = match (self.config.fence, &self.config.fencing_token) {
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
            self.config.create_stream.as_ref(),
            self.config.read_back,
        );
        // A fixed stream is checked now, so a wrong endpoint or basin fails `open`.
        if let Some(name) = template.fixed() {
            writer.prepare(name).await.map_err(Error::Connection)?;
        }
        tracing::info!(
            "S2 sink {} appends to `{}` in basin `{}` at {}{}",
            self.id,
            self.config.stream,
            connection.basin,
            connection.endpoint_for_logs(),
            if self.config.fence { ", fenced" } else { "" }
        );
        self.connected = Some(Connected {
            template,
            mapper: Mapper::new(upsert),
            writer: Mutex::new(writer),
        });
        Ok(())
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
            .ok_or(Error::InitError("the S2 sink is not open".into()))?;
        let partition = metadata.partition_id;
        let source = Position::source_of(topic, partition);
        let groups = self
            .records(connected, topic, partition, &source, &messages)
            .map_err(|e| {
                self.counters.add("failed_batches", 1);
                Error::InvalidRecordValue(e)
            })?;
        let mut writer = connected.writer.lock().await;
        for (stream, records) in &groups {
            match writer.write(stream, &source, records).await {
                Ok(outcome) => {
                    self.counters.add("appended", outcome.appended);
                    self.counters.add("skipped_duplicates", outcome.skipped);
                    self.counters.add("resyncs", outcome.resyncs);
                    self.counters.add("read_backs_cut", outcome.read_backs_cut);
                }
                Err(reason) => {
                    self.counters.add("failed_batches", 1);
                    tracing::error!("S2 sink {}: {reason}", self.id);
                    return Err(Error::CannotStoreData(reason));
                }
            }
        }
        self.rate_log
            .maybe_log("s2_sink", &self.counters, Duration::from_secs(30));
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.connected = None;
        tracing::info!("S2 sink {} closed: {}", self.id, self.counters.summary());
        Ok(())
    }
}
