//! The `Source` glue the session-based sources share: the config waits for
//! `open`, which builds the plugin's session; `poll` and the batch result
//! go to it; `close` ends it. A plugin implements `SourceSession` and
//! exports `source_connector!(SessionSource<ItsSession>)`.

use async_trait::async_trait;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessages, Source};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

#[async_trait]
pub trait SourceSession: Send + Sized + 'static {
    type Config: DeserializeOwned + Send + Sync;
    /// Names the connector in messages, e.g. "S2 source".
    const NAME: &'static str;

    async fn open(
        id: u32,
        config: Self::Config,
        state: Option<ConnectorState>,
    ) -> Result<Self, Error>;
    async fn poll(&mut self) -> Result<ProducedMessages, Error>;
    async fn on_batch_result(&mut self, result: SourceBatchResult);
    async fn close(&mut self);
}

pub struct SessionSource<S: SourceSession> {
    id: u32,
    /// Until `open` takes them.
    pending: Option<(S::Config, Option<ConnectorState>)>,
    // The SDK never overlaps poll and on_batch_result; the lock only makes
    // the session reachable from `&self`.
    session: Mutex<Option<S>>,
}

impl<S: SourceSession> SessionSource<S> {
    pub fn new(id: u32, config: S::Config, state: Option<ConnectorState>) -> Self {
        Self {
            id,
            pending: Some((config, state)),
            session: Mutex::new(None),
        }
    }

    fn not_open(&self) -> Error {
        Error::InitError(format!("{} {} is not open", S::NAME, self.id))
    }
}

#[async_trait]
impl<S: SourceSession> Source for SessionSource<S> {
    async fn open(&mut self) -> Result<(), Error> {
        let (config, state) = self
            .pending
            .take()
            .ok_or_else(|| Error::InitError(format!("{} {} is already open", S::NAME, self.id)))?;
        *self.session.get_mut() = Some(S::open(self.id, config, state).await?);
        Ok(())
    }

    async fn poll(&self) -> Result<ProducedMessages, Error> {
        let mut session = self.session.lock().await;
        session
            .as_mut()
            .ok_or_else(|| self.not_open())?
            .poll()
            .await
    }

    async fn on_batch_result(&self, result: SourceBatchResult) -> Result<(), Error> {
        let mut session = self.session.lock().await;
        session
            .as_mut()
            .ok_or_else(|| self.not_open())?
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
