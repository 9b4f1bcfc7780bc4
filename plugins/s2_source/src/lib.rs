//! Apache Iggy connector: reads S2 streams (a list, or every stream with a
//! prefix) into Iggy, resuming from positions committed on Ack.
//! See README.md for settings and guarantees.

mod config;
mod cursor;
mod mapping;
mod reader;
mod session;

use async_trait::async_trait;
use config::SourceConfig;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessages, Source, source_connector};
use session::Session;
use tokio::sync::Mutex;

source_connector!(S2Source);

pub struct S2Source {
    id: u32,
    /// Until `open` takes them.
    pending: Option<(SourceConfig, Option<ConnectorState>)>,
    // The SDK never overlaps poll and on_batch_result; the lock only makes
    // the session reachable from `&self`.
    session: Mutex<Option<Session>>,
}

impl S2Source {
    pub fn new(id: u32, config: SourceConfig, state: Option<ConnectorState>) -> Self {
        Self {
            id,
            pending: Some((config, state)),
            session: Mutex::new(None),
        }
    }
}

fn not_open(id: u32) -> Error {
    Error::InitError(format!("S2 source {id} is not open"))
}

#[async_trait]
impl Source for S2Source {
    async fn open(&mut self) -> Result<(), Error> {
        let (config, state) = self
            .pending
            .take()
            .ok_or_else(|| Error::InitError(format!("S2 source {} is already open", self.id)))?;
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
        let session = session.as_mut().ok_or_else(|| not_open(self.id))?;
        match result {
            SourceBatchResult::Ack => session.ack(),
            SourceBatchResult::Nack => session.nack(),
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        if let Some(session) = self.session.get_mut().take() {
            tracing::info!("S2 source {} closed: {}", self.id, session.summary());
        }
        Ok(())
    }
}
