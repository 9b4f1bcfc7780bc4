//! Apache Iggy connector: reads a NATS JetStream stream into Iggy through
//! durable pull consumers. See README.md for settings and guarantees.

mod bounds;
mod client;
mod config;
mod mapping;
mod plan;
mod progress;
mod reader;
mod session;

use async_trait::async_trait;
use config::SourceConfig;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessages, Source, source_connector};
use session::Session;
use tokio::sync::Mutex;

source_connector!(NatsJetStreamSource);

pub struct NatsJetStreamSource {
    id: u32,
    /// Until `open` takes them.
    pending: Option<(SourceConfig, Option<ConnectorState>)>,
    // The SDK never overlaps poll and on_batch_result; the lock only makes
    // the session reachable from `&self`.
    session: Mutex<Option<Session>>,
}

impl NatsJetStreamSource {
    pub fn new(id: u32, config: SourceConfig, state: Option<ConnectorState>) -> Self {
        Self {
            id,
            pending: Some((config, state)),
            session: Mutex::new(None),
        }
    }
}

fn not_open(id: u32) -> Error {
    Error::InitError(format!("NATS JetStream source {id} is not open"))
}

#[async_trait]
impl Source for NatsJetStreamSource {
    async fn open(&mut self) -> Result<(), Error> {
        let (config, state) = self.pending.take().ok_or_else(|| {
            Error::InitError(format!("NATS JetStream source {} is already open", self.id))
        })?;
        *self.session.get_mut() = Some(Session::open(self.id, config, state).await?);
        Ok(())
    }

    async fn poll(&self) -> Result<ProducedMessages, Error> {
        let mut session = self.session.lock().await;
        session
            .as_mut()
            .ok_or_else(|| not_open(self.id))?
            .poll()
            .await
    }

    async fn on_batch_result(&self, result: SourceBatchResult) -> Result<(), Error> {
        let mut session = self.session.lock().await;
        session
            .as_mut()
            .ok_or_else(|| not_open(self.id))?
            .on_batch_result(result)
            .await;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        if let Some(mut session) = self.session.get_mut().take() {
            session.close().await;
        }
        Ok(())
    }
}
