//! The flow of an open source: fetch from every consumer, judge and map what
//! came, hand it over as one batch, then acknowledge it in NATS on Ack or NAK
//! it on Nack.
//!
//! Each consumer has at most one fetch running. The next one starts as soon
//! as a batch is handed over, so NATS delivers while the runtime stores the
//! batch; a Nack then waits for those fetches and NAKs everything held, in
//! order, so the consumer sends it all again from the first NAKed message.

mod attach;
mod gather;
mod results;
mod subjects;

use crate::bounds::{BoundWatch, StopRules};
use crate::client::{self, consumers, fetch};
use crate::config::SourceConfig;
use crate::mapping::{Mapper, Prepared};
use crate::plan;
use crate::progress::Progress;
use crate::reader::Reader;
use async_nats::jetstream::stream::Stream;
use async_trait::async_trait;
use gather::Gathered;
use iggy_connector_common::admission::InvalidMessages;
use iggy_connector_common::session_source::SourceSession;
use iggy_connector_common::{Counters, RateLog};
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessage, ProducedMessages, Schema};
use std::sync::Arc;
use std::time::Duration;
use subjects::SubjectWatch;
use tokio::task::{JoinError, JoinSet};

const COUNTERS: [&str; 7] = [
    "messages",
    "batches",
    "skipped_redeliveries",
    "nacked_batches",
    "recreated_consumers",
    "fetch_errors",
    "dropped_headers",
];
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How long a finished (bounded) source sleeps in each poll.
const FINISHED_PAUSE: Duration = Duration::from_secs(1);
/// The most `close` waits for outstanding acks and the final flush: with the
/// server gone, async-nats would wait for a reconnect that may never come.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// A fetch task's output: the reader's index and what it brought, mapped.
type FetchOutput = (usize, fetch::Fetched<Prepared>);
type FetchResult = Result<(tokio::task::Id, FetchOutput), JoinError>;

pub struct Session {
    id: u32,
    client: async_nats::Client,
    /// `None` until the stream exists (see `attach`).
    stream: Option<Stream>,
    /// While the stream does not exist: the settings to attach with.
    waiting: Option<SourceConfig>,
    stream_check_interval: Duration,
    /// The default consumer's watch for subjects added to the stream.
    subject_watch: Option<SubjectWatch>,
    readers: Vec<Reader>,
    fetches: JoinSet<FetchOutput>,
    /// Acks of committed batches still awaiting the server's confirmation.
    confirmations: JoinSet<()>,
    mapper: Arc<Mapper>,
    schema: Schema,
    batch_size: usize,
    max_wait: Duration,
    max_bytes: usize,
    invalid_messages: InvalidMessages,
    rules: Option<StopRules>,
    watch: BoundWatch,
    /// Progress stored in Iggy (acknowledged by the runtime).
    committed: Progress,
    /// Progress including the batch in flight.
    staged: Option<Progress>,
    pub(crate) counters: Arc<Counters>,
    rate_log: RateLog,
}

#[async_trait]
impl SourceSession for Session {
    type Config = SourceConfig;
    const NAME: &'static str = "NATS JetStream source";
    const PLUGIN: &'static str = "nats_jetstream_source";

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    async fn open(
        id: u32,
        config: SourceConfig,
        state: Option<ConnectorState>,
    ) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfigValue)?;
        if !config.consumers.is_empty() {
            // Explicit filters can be checked before touching the server.
            plan::plan(&config, &[]).map_err(Error::InvalidConfigValue)?;
        }
        let mapper = Arc::new(
            Mapper::new(&config.stream, &config.metadata_headers)
                .map_err(Error::InvalidConfigValue)?,
        );
        let client = client::connect(&config.connection)
            .await
            .map_err(Error::InitError)?;
        let stream = client::find_stream(&client, &config.connection, &config.stream)
            .await
            .map_err(Error::InitError)?;
        let mut session = Self {
            id,
            client,
            stream: None,
            waiting: None,
            stream_check_interval: config.stream_check_interval,
            subject_watch: None,
            readers: Vec::new(),
            fetches: JoinSet::new(),
            confirmations: JoinSet::new(),
            mapper,
            schema: config.schema.into(),
            batch_size: config.batch_size,
            max_wait: config.max_wait,
            max_bytes: config.max_bytes,
            invalid_messages: config.invalid_messages,
            rules: None,
            watch: BoundWatch::default(),
            committed: Progress::restore(state, &config.stream, id),
            staged: None,
            counters: Arc::new(Counters::new(&COUNTERS)),
            rate_log: RateLog::new(),
        };
        match stream {
            Some(stream) => session
                .attach(stream, &config)
                .await
                .map_err(Error::InitError)?,
            None => session.wait_for_stream(config),
        }
        Ok(session)
    }

    async fn poll(&mut self) -> Result<ProducedMessages, Error> {
        if !self.look_for_stream().await? {
            return Ok(self.batch(Vec::new(), None));
        }
        if self.committed.finished {
            tokio::time::sleep(FINISHED_PAUSE).await;
            return Ok(self.batch(Vec::new(), None));
        }
        self.check_subjects().await;
        self.recreate_lost_consumers().await?;
        let mut staged = self.committed.clone();
        self.start_fetches(staged.produced);
        let mut gathered = Gathered::default();
        match self.fetches.join_next_with_id().await {
            Some(first) => {
                self.absorb(first, &mut staged, &mut gathered);
                while let Some(ready) = self.fetches.try_join_next_with_id() {
                    self.absorb(ready, &mut staged, &mut gathered);
                }
            }
            // Nothing can fetch now (every consumer done, or waiting for acks).
            None => tokio::time::sleep(self.max_wait).await,
        }
        if gathered.messages.is_empty()
            && gathered.came_back_empty.is_empty()
            && !gathered.fetch_errors.is_empty()
        {
            self.counters
                .add("fetch_errors", gathered.fetch_errors.len() as u64);
            return Err(Error::Connection(gathered.fetch_errors.join("; ")));
        }
        for error in &gathered.fetch_errors {
            tracing::warn!("NATS JetStream source {}: {error}", self.id);
            self.counters.add("fetch_errors", 1);
        }
        self.conclude_empty_readers(&gathered.came_back_empty).await;
        staged.finished = self.is_finished(&staged);
        // The next fetches run while the runtime stores this batch.
        self.start_fetches(staged.produced);
        let state = (staged != self.committed)
            .then(|| staged.to_state(self.id))
            .flatten();
        self.staged = Some(staged);
        Ok(self.batch(gathered.messages, state))
    }

    fn invalid_messages(&self) -> InvalidMessages {
        self.invalid_messages
    }

    fn describe(&self, message: &ProducedMessage) -> String {
        self.mapper.describe(message)
    }

    async fn on_batch_result(&mut self, result: SourceBatchResult) {
        match result {
            SourceBatchResult::Ack => self.commit().await,
            SourceBatchResult::Nack => self.roll_back().await,
        }
        self.rate_log
            .maybe_log("nats_jetstream_source", &self.counters, REPORT_EVERY);
    }

    async fn close(&mut self) {
        self.fetches.abort_all();
        let finish = async {
            self.settle_acks(0).await;
            // Acks are fire-and-forget but for the last of each batch; send what is queued.
            self.client.flush().await
        };
        match tokio::time::timeout(CLOSE_LIMIT, finish).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!("NATS JetStream source {}: flush on close: {error}", self.id)
            }
            Err(_) => {
                // Unconfirmed acks lose nothing: the saved progress skips what NATS resends.
                self.confirmations.abort_all();
                tracing::warn!(
                    "NATS JetStream source {}: the server did not confirm the last acks within {CLOSE_LIMIT:?}; closing without them",
                    self.id
                );
            }
        }
        tracing::info!(
            "NATS JetStream source {} closed: {}",
            self.id,
            self.counters.summary()
        );
    }
}

impl Session {
    fn batch(
        &self,
        messages: Vec<ProducedMessage>,
        state: Option<ConnectorState>,
    ) -> ProducedMessages {
        ProducedMessages {
            schema: self.schema,
            messages,
            state,
        }
    }

    /// Recreates consumers that lost deliveries, just after what Iggy holds
    /// (once their running fetch, if any, is over).
    async fn recreate_lost_consumers(&mut self) -> Result<(), Error> {
        let lost = |r: &Reader| r.cursor.lost_deliveries && r.fetch.is_none();
        if !self.readers.iter().any(lost) {
            return Ok(());
        }
        let Some(stream) = &self.stream else {
            return Ok(());
        };
        // Acks still on their way belong to the consumer about to go.
        while self.confirmations.join_next().await.is_some() {}
        for reader in self.readers.iter_mut().filter(|r| lost(r)) {
            let position = self.committed.last(&reader.name).unwrap_or_default();
            let opened = consumers::reposition(stream, &reader.config, position)
                .await
                .map_err(Error::Connection)?;
            tracing::info!(
                "consumer `{}` recreated to start after stream sequence {position}",
                reader.name
            );
            reader.reopened(opened);
            self.counters.add("recreated_consumers", 1);
        }
        Ok(())
    }
}
