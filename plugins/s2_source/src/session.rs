//! One open source: finds streams, keeps a read session open on each (see
//! `feed`), takes a batch from what they read, streams in turn (waiting only
//! when none has anything), stages the positions it reached and commits them
//! when the runtime acknowledges the batch.

use crate::config::{SourceConfig, StartFrom, Starts};
use crate::cursor::{Cursors, Position, SavedState, initial};
use crate::feed::{Feed, Read};
use crate::mapping;
use crate::reader::{Reader, Streams};
use async_trait::async_trait;
use iggy_connector_common::admission::InvalidMessages;
use iggy_connector_common::session_source::SourceSession;
use iggy_connector_common::{Counters, RateLog};
use iggy_connector_s2_common::S2Connection;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessage, ProducedMessages, Schema};
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
    invalid_messages: InvalidMessages,
    /// Which stream a poll reads first, so that none starves the others.
    rotation: usize,
    feeds: BTreeMap<String, Feed>,
    /// Streams whose session failed: when it is opened again.
    retry_at: BTreeMap<String, Instant>,
    /// Notified by every feed that has read something.
    arrived: Arc<Notify>,
    pub(crate) counters: Arc<Counters>,
    rate_log: RateLog,
}

/// A batch being put together.
struct Batch {
    positions: BTreeMap<String, Position>,
    messages: Vec<ProducedMessage>,
    bytes: usize,
}

impl Session {
    /// Adds newly found streams at their saved position or the start
    /// behaviour; `check` also asks each stream's tail (it must exist) and
    /// fails on the first that cannot be started. Otherwise a stream that
    /// cannot be started now is logged and found again by the next discovery.
    async fn discover(&mut self, check: bool) -> Result<(), String> {
        let found = self.reader.discover().await?;
        self.start_streams(found, check).await
    }

    async fn start_streams(&mut self, names: Vec<String>, check: bool) -> Result<(), String> {
        for name in names {
            match self.start_stream(&name, check).await {
                Ok(()) => {}
                Err(e) if check => return Err(e),
                Err(e) => tracing::warn!(
                    "S2 source {}: {}; stream `{name}` is tried again at the next discovery",
                    self.id,
                    self.connection.describe(&e)
                ),
            }
        }
        Ok(())
    }

    async fn start_stream(&mut self, name: &str, check: bool) -> Result<(), String> {
        let start = self.starts.of(name);
        let tail = if check || start == StartFrom::Latest {
            Some(self.reader.tail(name).await?)
        } else {
            None
        };
        // `latest` is the only start without a position of its own, and it
        // always asks the tail.
        if !self.cursors.contains(name)
            && let Some(position) = initial(start).or(tail.map(Position::Next))
        {
            tracing::info!(
                "S2 source {}: stream `{name}` starts at {position:?}",
                self.id
            );
            self.cursors.start(name, position);
        }
        self.reader.admit(name)
    }

    fn ack(&mut self) {
        self.cursors.ack();
    }

    /// The feeds that read past the committed positions are restarted from
    /// them by the next poll.
    fn nack(&mut self) {
        self.cursors.nack();
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
                let feed = Feed::start(
                    stream,
                    name,
                    position,
                    self.buffer_bytes,
                    self.arrived.clone(),
                );
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

    fn take(&mut self, name: &str, records: Vec<Read>, batch: &mut Batch) {
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
        for record in records {
            let Some((message, dropped)) = record.message else {
                self.counters.add("command_records_skipped", 1);
                continue;
            };
            batch.bytes += record.size;
            self.counters.add("headers_dropped", dropped as u64);
            self.counters.add("records", 1);
            batch.messages.push(message);
        }
    }
}

#[async_trait]
impl SourceSession for Session {
    type Config = SourceConfig;
    const NAME: &'static str = "S2 source";
    const PLUGIN: &'static str = "s2_source";

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    async fn open(
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
            invalid_messages: config.invalid_messages,
            rotation: 0,
            feeds: BTreeMap::new(),
            retry_at: BTreeMap::new(),
            arrived: Arc::new(Notify::new()),
            counters: Arc::new(Counters::new(&COUNTERS)),
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

    async fn poll(&mut self) -> Result<ProducedMessages, Error> {
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

    async fn on_batch_result(&mut self, result: SourceBatchResult) {
        match result {
            SourceBatchResult::Ack => self.ack(),
            SourceBatchResult::Nack => self.nack(),
        }
    }

    async fn close(&mut self) {
        tracing::info!("S2 source {} closed: {}", self.id, self.counters.summary());
    }

    fn invalid_messages(&self) -> InvalidMessages {
        self.invalid_messages
    }

    fn describe(&self, message: &ProducedMessage) -> String {
        mapping::describe(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_harness_test_support::s2::S2Lite;
    use s2_sdk::types::{AppendInput, AppendRecord, AppendRecordBatch, CreateStreamInput};

    const BASIN: &str = "iggy-tests";

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Steps through discovery by hand against a real s2-lite, so that the
    /// server can go away exactly between the listing and the tail check: no
    /// run through the harness can time that.
    #[test]
    fn a_stream_whose_first_tail_check_fails_is_started_at_the_next_discovery() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = S2Lite::start_on_disk(dir.path(), &[BASIN]);
        let rt = runtime();
        let config: SourceConfig = serde_json::from_value(serde_json::json!({
            "endpoint": server.endpoint(),
            "basin": BASIN,
            "request_timeout": "1s",
            "max_retries": 0,
            "stream_prefix": "late-",
            "start": "latest",
            "discovery_interval": "100ms",
        }))
        .unwrap();
        let mut session = rt.block_on(Session::open(1, config, None)).unwrap();
        assert_eq!(session.reader.names().count(), 0, "no stream yet");

        let client = server.basin_client(&rt, BASIN);
        rt.block_on(client.create_stream(CreateStreamInput::new("late-a".parse().unwrap())))
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let found = rt.block_on(session.reader.discover()).unwrap();
        assert_eq!(found, ["late-a"]);
        // The listing succeeded; the tail check that follows cannot.
        server.kill();
        rt.block_on(session.start_streams(found, false)).unwrap();
        assert!(!session.cursors.contains("late-a"), "not started");

        server.restart();
        std::thread::sleep(Duration::from_millis(150));
        let stream = server
            .basin_client(&rt, BASIN)
            .stream("late-a".parse().unwrap());
        let (mut received, mut appended) = (Vec::new(), false);
        // Each poll waits at most `poll_wait` (1 s); the records are
        // appended once the stream is read from its (latest) tail.
        for _ in 0..10 {
            let batch = rt.block_on(session.poll()).unwrap();
            received.extend(batch.messages.into_iter().map(|m| m.payload));
            if session.cursors.contains("late-a") && !appended {
                appended = true;
                let records = (0..3).map(|n| AppendRecord::new(format!("{n}")).unwrap());
                let batch = AppendRecordBatch::try_from_iter(records).unwrap();
                rt.block_on(stream.append(AppendInput::new(batch))).unwrap();
            }
            session.ack();
            if received.len() >= 3 {
                break;
            }
        }
        assert_eq!(received, [b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]);
    }
}
