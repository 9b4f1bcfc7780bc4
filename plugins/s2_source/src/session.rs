//! One open source: finds streams, reads a batch across them in turn (a
//! long-poll only when all are caught up; after a full batch the next read is
//! already under way), stages the positions it reached and commits them when
//! the runtime acknowledges the batch.

use crate::config::{SourceConfig, StartFrom, Starts};
use crate::cursor::{Cursors, Position, SavedState, initial};
use crate::mapping::StreamHeaders;
use crate::read_ahead::ReadAhead;
use crate::reader::{self, Limits, Reader, Streams};
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessage, ProducedMessages, Schema};
use iggy_connector_shared::s2::S2Connection;
use iggy_connector_shared::{Counters, RateLog};
use s2_sdk::types::{MeteredBytes, ReadBatch};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinSet;

const NAME: &str = "s2_source";
const COUNTERS: [&str; 5] = [
    "records",
    "command_records_skipped",
    "gaps",
    "gap_records",
    "headers_dropped",
];

pub struct Session {
    id: u32,
    connection: S2Connection,
    reader: Reader,
    cursors: Cursors,
    /// Where each stream without saved state starts.
    starts: Starts,
    batch_size: usize,
    buffer_bytes: usize,
    wait: u32,
    schema: Schema,
    /// Which stream a poll reads first, so that none starves the others.
    rotation: usize,
    /// The first read of the next poll, started when a batch came out full.
    read_ahead: Option<ReadAhead>,
    counters: Counters,
    rate_log: RateLog,
}

/// A batch being put together.
struct Batch {
    positions: BTreeMap<String, Position>,
    messages: Vec<ProducedMessage>,
    bytes: usize,
}

impl Session {
    pub async fn open(
        id: u32,
        config: SourceConfig,
        state: Option<ConnectorState>,
    ) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfigValue)?;
        let connection = config.connection.clone();
        let basin = connection.basin_client().map_err(Error::InitError)?;
        let wanted = match &config.stream_prefix {
            Some(prefix) => Streams::Prefix(prefix.clone()),
            None => Streams::Fixed(config.streams.clone()),
        };
        let saved = state.and_then(|s| s.deserialize::<SavedState>(NAME, id));
        let mut session = Self {
            id,
            reader: Reader::new(basin, wanted, config.discovery_interval),
            cursors: Cursors::new(saved),
            starts: config.starts(),
            batch_size: config.batch_size,
            buffer_bytes: config.buffer_bytes,
            wait: config.poll_wait_secs(),
            schema: config.schema.into(),
            rotation: 0,
            read_ahead: None,
            counters: Counters::new(&COUNTERS),
            rate_log: RateLog::new(),
            connection,
        };
        // Fails `open` on a wrong endpoint, basin or stream name.
        session
            .discover(true)
            .await
            .map_err(|e| Error::Connection(session.connection.describe(&e)))?;
        tracing::info!(
            "S2 source {id} reads {} stream(s) of basin `{}` at {}",
            session.reader.names().count(),
            session.connection.basin,
            session.connection.endpoint_for_logs()
        );
        Ok(session)
    }

    /// Adds newly found streams at their saved position or the start
    /// behaviour; `check` also asks each stream's tail (it must exist).
    async fn discover(&mut self, check: bool) -> Result<(), String> {
        for name in self.reader.discover().await? {
            let start = self.starts.of(&name);
            let tail = if check || start == StartFrom::Latest {
                Some(self.reader.tail(&name).await?)
            } else {
                None
            };
            if self.cursors.contains(&name) {
                continue;
            }
            let position = match (initial(start), tail) {
                (Some(position), _) => position,
                (None, Some(tail)) => Position::Next(tail),
                (None, None) => Position::Next(self.reader.tail(&name).await?),
            };
            tracing::info!(
                "S2 source {}: stream `{name}` starts at {position:?}",
                self.id
            );
            self.cursors.start(&name, position);
        }
        Ok(())
    }

    pub async fn poll(&mut self) -> Result<ProducedMessages, Error> {
        if let Err(e) = self.discover(false).await {
            tracing::warn!("S2 source {}: {}", self.id, self.connection.describe(&e));
        }
        let names: Vec<String> = self.reader.names().cloned().collect();
        let mut batch = Batch {
            positions: self.cursors.working(),
            messages: Vec::new(),
            bytes: 0,
        };
        if names.is_empty() {
            tokio::time::sleep(Duration::from_secs(u64::from(self.wait))).await;
        } else {
            self.rotation = (self.rotation + 1) % names.len();
            let mut read_any = false;
            for name in names.iter().cycle().skip(self.rotation).take(names.len()) {
                let Some(limits) = self.limits(&batch, 0) else {
                    break;
                };
                read_any |= self.read_into(name, limits, &mut batch).await?;
            }
            // A moved position is handed over first: a long wait could
            // outlast a shutdown, and a restart would start over.
            if !read_any && self.cursors.state_to_save(&batch.positions).is_none() {
                self.long_poll(&names, &mut batch).await?;
            }
        }
        self.rate_log
            .maybe_log(NAME, &self.counters, Duration::from_secs(30));
        // Saved with every batch, and also without messages when a position
        // moved (a `latest` start fixed, command records passed), so that a
        // restart does not start over.
        let state = self
            .cursors
            .state_to_save(&batch.positions)
            .and_then(|saved| ConnectorState::serialize(&saved, NAME, self.id));
        self.read_ahead = self.read_ahead_after(&names, &batch);
        self.cursors.stage(batch.positions);
        Ok(ProducedMessages {
            schema: self.schema,
            messages: batch.messages,
            state,
        })
    }

    pub fn ack(&mut self) {
        self.cursors.ack();
    }

    pub fn nack(&mut self) {
        // It reads on from positions this Nack drops.
        self.read_ahead = None;
        self.cursors.nack();
    }

    pub fn close(&self) {
        tracing::info!("S2 source {} closed: {}", self.id, self.counters.summary());
    }

    fn limits(&self, batch: &Batch, wait: u32) -> Option<Limits> {
        let count = self.batch_size.saturating_sub(batch.messages.len());
        let bytes = self.buffer_bytes.saturating_sub(batch.bytes);
        (count > 0 && bytes > 0).then_some(Limits { count, bytes, wait })
    }

    /// After a full batch more is likely waiting: the next poll's first read
    /// (the next stream in turn, from where this batch left it) starts now.
    fn read_ahead_after(&self, names: &[String], batch: &Batch) -> Option<ReadAhead> {
        if names.is_empty() || self.limits(batch, 0).is_some() {
            return None;
        }
        let name = &names[(self.rotation + 1) % names.len()];
        let (stream, from) = (self.reader.stream(name)?, batch.positions.get(name)?);
        let limits = Limits {
            count: self.batch_size,
            bytes: self.buffer_bytes,
            wait: 0,
        };
        Some(ReadAhead::start(name, stream, *from, limits))
    }

    /// Reads one stream without waiting; whether anything came.
    async fn read_into(
        &mut self,
        name: &str,
        limits: Limits,
        batch: &mut Batch,
    ) -> Result<bool, Error> {
        let (Some(stream), Some(&position)) = (self.reader.stream(name), batch.positions.get(name))
        else {
            return Ok(false);
        };
        let ahead = match self.read_ahead.take() {
            Some(ahead) => ahead.take(name, position, limits).await,
            None => None,
        };
        let result = match ahead {
            Some(result) => result,
            None => reader::read(stream, position.read_from(), limits).await,
        };
        match result {
            Ok(Some(records)) => {
                self.take(name, records, batch);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(Error::Connection(
                self.connection
                    .describe(&format!("cannot read stream `{name}`: {e}")),
            )),
        }
    }

    /// Waits on every stream at once; the first that has records wins (the
    /// other reads are dropped: reading has no side effects).
    async fn long_poll(&mut self, names: &[String], batch: &mut Batch) -> Result<(), Error> {
        let Some(limits) = self.limits(batch, self.wait) else {
            return Ok(());
        };
        let mut reads = JoinSet::new();
        for name in names {
            if let (Some(stream), Some(position)) =
                (self.reader.stream(name), batch.positions.get(name))
            {
                let (stream, from, name) = (stream.clone(), position.read_from(), name.clone());
                reads.spawn(async move { (name, reader::read(&stream, from, limits).await) });
            }
        }
        while let Some(joined) = reads.join_next().await {
            match joined {
                Ok((name, Ok(Some(records)))) => {
                    self.take(&name, records, batch);
                    return Ok(());
                }
                Ok((_, Ok(None))) => {}
                Ok((name, Err(e))) => {
                    return Err(Error::Connection(
                        self.connection
                            .describe(&format!("cannot read stream `{name}`: {e}")),
                    ));
                }
                Err(e) => tracing::warn!("S2 source {}: a read task ended: {e}", self.id),
            }
        }
        Ok(())
    }

    fn take(&mut self, name: &str, records: ReadBatch, batch: &mut Batch) {
        let (Some(first), Some(last)) = (records.records.first(), records.records.last()) else {
            return;
        };
        let position = batch
            .positions
            .get(name)
            .copied()
            .unwrap_or(Position::Earliest);
        let (next, gap) = position.after(first.seq_num, last.seq_num);
        if let Some(gap) = gap {
            // Reported, not hidden: S2 silently starts a read at the trim point.
            self.counters.add("gaps", 1);
            self.counters.add("gap_records", gap.end - gap.start);
            tracing::warn!(
                "S2 source {}: stream `{name}` jumped from seq_num {position:?} to {}: records {}..{} were trimmed or expired (or the stream was made again)",
                self.id,
                first.seq_num,
                gap.start,
                gap.end
            );
        }
        batch.positions.insert(name.to_string(), next);
        let headers = StreamHeaders::new(name);
        for record in records.records {
            if record.is_command_record() {
                self.counters.add("command_records_skipped", 1);
                continue;
            }
            batch.bytes += record.metered_bytes();
            let (message, dropped) = headers.message(record);
            self.counters.add("headers_dropped", dropped as u64);
            self.counters.add("records", 1);
            batch.messages.push(message);
        }
    }
}
