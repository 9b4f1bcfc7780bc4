//! The `Sink` glue every sink shares: the config waits for `open`, which
//! builds the plugin's session and starts its metrics endpoint; `consume`
//! goes to the session, timed; `close` ends both. A plugin implements
//! `SinkSession` and exports `sink_connector!(SessionSink<ItsSession>)`.

use async_trait::async_trait;
use iggy_connector_sdk::{ConsumedMessage, Error, MessagesMetadata, Sink, TopicMetadata};
use serde::de::DeserializeOwned;
use std::sync::Arc;

use crate::Counters;
use crate::metrics::{Metered, Telemetry};

#[async_trait]
pub trait SinkSession: Send + Sync + Sized + 'static {
    type Config: DeserializeOwned + Metered + Send + Sync;
    /// Names the connector in messages, e.g. "S2 sink".
    const NAME: &'static str;
    /// The crate's suffix, e.g. "s2_sink": the prefix of its metric names.
    const PLUGIN: &'static str;

    /// Validates the config and connects.
    async fn open(id: u32, config: Self::Config) -> Result<Self, Error>;
    /// The session's counters, which the metrics endpoint serves.
    fn counters(&self) -> Arc<Counters>;
    /// Writes a batch; `Ok` once it is durably written.
    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error>;
    async fn close(&mut self) -> Result<(), Error>;
}

pub struct SessionSink<S: SinkSession> {
    id: u32,
    /// Until `open` takes it.
    pending: Option<S::Config>,
    open: Option<(S, Telemetry)>,
}

// Upstream's SDK requires `Debug` of a connector type; the config and the
// session may hold credentials, so only the connector's name and id show.
impl<S: SinkSession> std::fmt::Debug for SessionSink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSink")
            .field("connector", &S::NAME)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<S: SinkSession> SessionSink<S> {
    pub fn new(id: u32, config: S::Config) -> Self {
        Self {
            id,
            pending: Some(config),
            open: None,
        }
    }
}

#[async_trait]
impl<S: SinkSession> Sink for SessionSink<S> {
    async fn open(&mut self) -> Result<(), Error> {
        let config = self
            .pending
            .take()
            .ok_or_else(|| Error::InitError(format!("{} {} is already open", S::NAME, self.id)))?;
        let metrics = config.metrics().cloned();
        let mut session = S::open(self.id, config).await?;
        let mut telemetry = Telemetry::sink(S::PLUGIN, &session.counters());
        if let Err(error) = telemetry.serve(metrics.as_ref(), self.id).await {
            let _ = session.close().await;
            return Err(error);
        }
        self.open = Some((session, telemetry));
        Ok(())
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        let (session, telemetry) = self
            .open
            .as_ref()
            .ok_or_else(|| Error::InitError(format!("{} {} is not open", S::NAME, self.id)))?;
        let count = messages.len();
        let write = session.consume(topic, metadata, messages);
        telemetry.timed_write(count, write).await
    }

    async fn close(&mut self) -> Result<(), Error> {
        match self.open.take() {
            Some((mut session, mut telemetry)) => {
                telemetry.stop();
                session.close().await
            }
            None => Ok(()),
        }
    }
}
