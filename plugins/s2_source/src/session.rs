//! One open source: finds streams, keeps a read session open on each (see
//! `feed`), takes a batch from what they read, streams in turn (waiting only
//! when none has anything), stages the positions it reached and commits them
//! when the runtime acknowledges the batch.

use crate::config::{SourceConfig, StartFrom, Starts};
use crate::cursor::{Cursors, Position, SavedState, initial};
use crate::feed::Feed;
use crate::mapping::StreamHeaders;
use crate::reader::{Reader, Streams};
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessage, ProducedMessages, Schema};
use iggy_connector_shared::s2::S2Connection;
use iggy_connector_shared::{Counters, RateLog};
use s2_sdk::types::{MeteredBytes, SequencedRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

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
    feeds: BTreeMap<String, Feed>,
    /// Streams whose session failed: when it is opened again.
    retry_at: BTreeMap<String, Instant>,
    /// Notified by every feed that has read something.
    arrived: Arc<Notify>,
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
            feeds: BTreeMap::new(),
            retry_at: BTreeMap::new(),
            arrived: Arc::new(Notify::new()),
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
        self.start_feeds(&names, &batch.positions);
        if !names.is_empty() {
            self.rotation = (self.rotation + 1) % names.len();
        }
        // A moved position is handed over first: a long wait could outlast a
        // shutdown, and a restart would start over.
        if !self.take_ready(&names, &mut batch)
            && self.cursors.state_to_save(&batch.positions).is_none()
        {
            // A notification can be left over from records already taken:
            // it is waited for again, until `poll_wait` has passed.
            let deadline = Instant::now() + Duration::from_secs(u64::from(self.wait));
            while tokio::time::timeout_at(deadline, self.arrived.notified())
                .await
                .is_ok()
                && !self.take_ready(&names, &mut batch)
            {}
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

    /// The feeds that read past the committed positions are restarted from
    /// them by the next poll.
    pub fn nack(&mut self) {
        self.cursors.nack();
    }

    pub fn close(&self) {
        tracing::info!("S2 source {} closed: {}", self.id, self.counters.summary());
    }

    /// Opens a session for each stream without one, from the position the
    /// poll begins at; a feed that read on from elsewhere (its batch was
    /// Nacked, or never acknowledged) is dropped and opened again from there.
    fn start_feeds(&mut self, names: &[String], positions: &BTreeMap<String, Position>) {
        let now = Instant::now();
        for name in names {
            let Some(&position) = positions.get(name) else {
                continue;
            };
            if self.feeds.get(name).is_some_and(|f| f.next() != position) {
                self.feeds.remove(name);
            }
            if self.feeds.contains_key(name) || self.retry_at.get(name).is_some_and(|at| now < *at)
            {
                continue;
            }
            self.retry_at.remove(name);
            if let Some(stream) = self.reader.stream(name) {
                let feed = Feed::start(stream, position, self.buffer_bytes, self.arrived.clone());
                self.feeds.insert(name.clone(), feed);
            }
        }
    }

    /// Takes what the feeds have read, streams in turn so that none starves
    /// the others; whether anything came. A failed session is logged and
    /// opened again after `poll_wait`.
    fn take_ready(&mut self, names: &[String], batch: &mut Batch) -> bool {
        let mut took = false;
        for name in names.iter().cycle().skip(self.rotation).take(names.len()) {
            let count = self.batch_size.saturating_sub(batch.messages.len());
            let bytes = self.buffer_bytes.saturating_sub(batch.bytes);
            if count == 0 || bytes == 0 {
                break;
            }
            let Some(feed) = self.feeds.get_mut(name) else {
                continue;
            };
            match feed.take(count, bytes, batch.messages.is_empty()) {
                Ok(records) if records.is_empty() => {}
                Ok(records) => {
                    took = true;
                    self.take(name, records, batch);
                }
                Err(e) => {
                    tracing::warn!(
                        "S2 source {}: {}",
                        self.id,
                        self.connection
                            .describe(&format!("cannot read stream `{name}`: {e}"))
                    );
                    self.feeds.remove(name);
                    let wait = Duration::from_secs(u64::from(self.wait));
                    self.retry_at.insert(name.clone(), Instant::now() + wait);
                }
            }
        }
        took
    }

    fn take(&mut self, name: &str, records: Vec<SequencedRecord>, batch: &mut Batch) {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
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
        for record in records {
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
