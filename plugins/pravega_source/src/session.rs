//! One open source: a reader in a reader group made anew from the committed
//! positions, batches of events staged until the runtime's Ack, and on a
//! Nack or a client failure a new reader at the committed positions.

use crate::config::SourceConfig;
use crate::cursor::{Cursor, SavedState};
use crate::mapping;
use async_trait::async_trait;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessages, Schema};
use iggy_connector_shared::pravega::client::{EventReader, PravegaClient};
use iggy_connector_shared::pravega::{PravegaConnection, RealClient};
use iggy_connector_shared::session_source::SourceSession;
use iggy_connector_shared::{Counters, RateLog};
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "pravega_source";
const COUNTERS: [&str; 3] = ["events", "batches", "reader_restarts"];
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
    /// `scope/stream`, in headers, message ids and the saved state.
    stream: String,
    batch_size: usize,
    poll_wait: Duration,
    schema: Schema,
    counters: Counters,
    rate_log: RateLog,
}

#[async_trait]
impl SourceSession for Session {
    type Config = SourceConfig;
    const NAME: &'static str = "Pravega source";

    async fn open(
        id: u32,
        config: SourceConfig,
        state: Option<ConnectorState>,
    ) -> Result<Self, Error> {
        config.validate().map_err(Error::InvalidConfigValue)?;
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
            "Pravega source {id} reads {} (reader group `{group}`) from {from}: {committed:?}",
            connection.target()
        );
        Ok(Self {
            id,
            client,
            group,
            reader: Some(reader),
            cursor: Cursor::new(committed, persisted),
            stream,
            batch_size: config.batch_size,
            poll_wait: config.poll_wait,
            schema: config.schema,
            counters: Counters::new(&COUNTERS),
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
        let positions = self.cursor.after(&events);
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
