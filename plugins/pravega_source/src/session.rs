//! One open source: a reader in a reader group made anew from the committed
//! positions, batches of events staged until the runtime's Ack, and on a
//! Nack or a client failure a new reader at the committed positions.
//! When events of a segment not read before show up, the stream has scaled:
//! the controller is asked what replaced the segments read so far, and the
//! sealed ones give way to their successors in the positions.

use crate::config::SourceConfig;
use crate::cursor::{self, Cursor, SavedState};
use crate::mapping;
use async_trait::async_trait;
use iggy_connector_common::admission::InvalidMessages;
use iggy_connector_common::session_source::SourceSession;
use iggy_connector_common::{Counters, RateLog};
use iggy_connector_pravega_common::client::{
    EventReader, PravegaClient, ReadEvent, StreamCut, Successors,
};
use iggy_connector_pravega_common::position::is_marker;
use iggy_connector_pravega_common::{PravegaConnection, RealClient};
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessage, ProducedMessages, Schema};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "pravega_source";
const COUNTERS: [&str; 4] = ["events", "batches", "reader_restarts", "position_markers"];
/// Readers make no transactions; the client still wants a lease length.
const UNUSED_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Session {
    id: u32,
    connection: PravegaConnection,
    client: Arc<dyn PravegaClient>,
    group: String,
    /// `None` after a Nack or a failure: the next poll makes a new one.
    reader: Option<Box<dyn EventReader>>,
    cursor: Cursor,
    /// Sealed segments of the positions → their successors (never change
    /// once sealed); only segments still in the positions are kept.
    sealed: BTreeMap<i64, Successors>,
    /// Ask the controller at the next batch, even without a new segment:
    /// after a failed look-up, and at the first batch (saved positions may
    /// hold a sealed segment, e.g. from a version that did not settle them).
    check_successors: bool,
    /// `scope/stream`, in headers, message ids and the saved state.
    stream: String,
    batch_size: usize,
    poll_wait: Duration,
    schema: Schema,
    invalid_messages: InvalidMessages,
    counters: Arc<Counters>,
    rate_log: RateLog,
}

#[async_trait]
impl SourceSession for Session {
    type Config = SourceConfig;
    const NAME: &'static str = "Pravega source";
    const PLUGIN: &'static str = "pravega_source";

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    async fn open(
        id: u32,
        config: SourceConfig,
        state: Option<ConnectorState>,
    ) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfigValue)?;
        for risk in config.connection.risks() {
            tracing::warn!("{} {id}: {risk}", Self::NAME);
        }
        let client = RealClient::connect(&config.connection, UNUSED_TRANSACTION_TIMEOUT)
            .map_err(Error::InitError)?;
        Self::start(id, config, state, Arc::new(client)).await
    }

    async fn poll(&mut self) -> Result<ProducedMessages, Error> {
        self.next_batch().await
    }

    async fn on_batch_result(&mut self, result: SourceBatchResult) {
        match result {
            SourceBatchResult::Ack => self.cursor.ack(),
            // The reader has moved past the refused batch: a new one starts
            // at the committed positions and reads it again.
            SourceBatchResult::Nack => {
                if self.cursor.nack() {
                    self.drop_reader().await;
                }
            }
        }
    }

    fn invalid_messages(&self) -> InvalidMessages {
        self.invalid_messages
    }

    fn describe(&self, message: &ProducedMessage) -> String {
        mapping::position(message)
    }

    async fn close(&mut self) {
        self.drop_reader().await;
        tracing::info!(
            "Pravega source {} closed at {:?}: {}",
            self.id,
            self.cursor.committed(),
            self.counters.summary()
        );
    }
}

impl Session {
    /// `open` once the client is made: finds where to start and starts reading.
    pub async fn start(
        id: u32,
        config: SourceConfig,
        state: Option<ConnectorState>,
        client: Arc<dyn PravegaClient>,
    ) -> Result<Self, Error> {
        let connection = config.connection.clone();
        let stream = format!("{}/{}", connection.scope, connection.stream);
        let saved = state
            .and_then(|s| s.deserialize::<SavedState>(NAME, id))
            .filter(|saved| {
                let ours = saved.stream == stream && !saved.positions.is_empty();
                if !ours {
                    tracing::warn!(
                        "Pravega source {id}: saved state is for `{}`, not `{stream}`; ignored",
                        saved.stream
                    );
                }
                ours
            });
        let describe = |e: &dyn std::fmt::Display| Error::Connection(connection.describe(e));
        if let Some(create) = &connection.create {
            let policy = create.scaling_policy().map_err(Error::InvalidConfigValue)?;
            client
                .ensure_stream(policy)
                .await
                .map_err(|e| describe(&e))?;
        }
        let (committed, persisted, from) = match saved {
            Some(saved) => (saved.positions, true, "its saved state".to_string()),
            None => {
                let start = config.start_at().map_err(Error::InvalidConfigValue)?;
                let cut = client.resolve(&start).await.map_err(|e| describe(&e))?;
                (cut, false, format!("{:?}", config.start))
            }
        };
        if committed.is_empty() {
            return Err(describe(&"the stream has no segments to read"));
        }
        let group = config.reader_group();
        // Fails `open` on a wrong controller, scope or stream.
        let reader = client
            .reader(&group, &committed)
            .await
            .map_err(|e| describe(&e))?;
        tracing::info!(
            "Pravega source {id} reads {} (reader groups `{group}-…`) from {from}: {committed:?}",
            connection.target()
        );
        Ok(Self {
            id,
            client,
            group,
            reader: Some(reader),
            cursor: Cursor::new(committed, persisted),
            sealed: BTreeMap::new(),
            check_successors: true,
            stream,
            batch_size: config.batch_size,
            poll_wait: config.poll_wait,
            schema: config.schema,
            invalid_messages: config.invalid_messages,
            counters: Arc::new(Counters::new(&COUNTERS)),
            rate_log: RateLog::new(),
            connection,
        })
    }

    async fn next_batch(&mut self) -> Result<ProducedMessages, Error> {
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => {
                self.counters.add("reader_restarts", 1);
                let reader = self
                    .client
                    .reader(&self.group, self.cursor.committed())
                    .await
                    .map_err(|e| Error::Connection(self.connection.describe(&e)))?;
                self.reader.insert(reader)
            }
        };
        let events = match reader.read(self.batch_size, self.poll_wait).await {
            Ok(events) => events,
            Err(e) => {
                self.drop_reader().await;
                return Err(Error::Connection(self.connection.describe(&e)));
            }
        };
        if reader.stalled() {
            // The next poll starts a new reader at the committed positions:
            // past the event it stopped at once this batch is acknowledged.
            self.drop_reader().await;
        }
        let mut positions = self.cursor.after(&events);
        self.settle(&events, &mut positions).await;
        // Also without events, until the runtime holds the start positions.
        let state = self
            .cursor
            .to_save(&positions)
            .map(|positions| SavedState {
                stream: self.stream.clone(),
                positions,
            })
            .and_then(|saved| ConnectorState::serialize(&saved, NAME, self.id));
        self.cursor.stage(positions);
        // The Pravega sink's position markers are its bookkeeping, not data:
        // passed over (the positions above already go past them).
        let (markers, events): (Vec<ReadEvent>, Vec<ReadEvent>) =
            events.into_iter().partition(|e| is_marker(&e.payload));
        self.counters.add("position_markers", markers.len() as u64);
        self.counters.add("events", events.len() as u64);
        self.counters.add("batches", u64::from(!events.is_empty()));
        self.rate_log
            .maybe_log(NAME, &self.counters, Duration::from_secs(30));
        let messages = events
            .into_iter()
            .map(|event| mapping::message(&self.stream, event))
            .collect();
        Ok(ProducedMessages {
            schema: self.schema,
            messages,
            state,
        })
    }

    /// After events of a segment not in the committed positions (a scale):
    /// learns what replaced the segments of `positions`, then lets the
    /// sealed ones give way (`cursor::settle`).
    async fn settle(&mut self, events: &[ReadEvent], positions: &mut StreamCut) {
        let committed = self.cursor.committed();
        let new_segment = events.iter().any(|e| !committed.contains_key(&e.segment));
        if new_segment || self.check_successors {
            self.check_successors = false;
            for segment in positions.keys() {
                if self.sealed.contains_key(segment) {
                    continue;
                }
                match self.client.successors(*segment).await {
                    Ok(successors) if successors.is_empty() => {}
                    Ok(successors) => {
                        self.sealed.insert(*segment, successors);
                    }
                    Err(e) => {
                        // Kept until known: a sealed segment left in the
                        // positions only costs re-reads after a restart.
                        self.check_successors = true;
                        tracing::warn!(
                            "Pravega source {}: successors of segment {segment} unknown: {}",
                            self.id,
                            self.connection.describe(&e)
                        );
                    }
                }
            }
        }
        cursor::settle(positions, &self.sealed);
        let committed = self.cursor.committed();
        self.sealed.retain(|segment, _| {
            positions.contains_key(segment) || committed.contains_key(segment)
        });
    }

    /// Takes the reader offline and removes its group, so that none is left
    /// holding segments.
    async fn drop_reader(&mut self) {
        if let Some(mut reader) = self.reader.take()
            && let Err(e) = reader.close().await
        {
            tracing::warn!(
                "Pravega source {}: reader not released cleanly: {}",
                self.id,
                self.connection.describe(&e)
            );
        }
    }
}
