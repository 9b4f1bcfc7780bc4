//! The `Sink` glue every sink shares: the config waits for `open`, which
//! builds the plugin's session with its counters and starts its metrics
//! endpoint; `consume` goes to the session, timed, and the counters are
//! logged now and then; `close` ends both and logs the totals. A plugin
//! implements `SinkSession` and exports
//! `sink_connector!(SessionSink<ItsSession>)`.

use async_trait::async_trait;
use iggy_connector_sdk::{ConsumedMessage, Error, MessagesMetadata, Sink, TopicMetadata};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{Metered, Telemetry};
use crate::{Counters, RateLog};

#[async_trait]
pub trait SinkSession: Send + Sync + Sized + 'static {
    type Config: DeserializeOwned + Metered + Send + Sync;
    /// Names the connector in messages, e.g. "S2 sink".
    const NAME: &'static str;
    /// The crate's suffix, e.g. "s2_sink": the prefix of its metric names.
    const PLUGIN: &'static str;
    /// The session's counters, in the order they are logged; the first one's
    /// rate is logged too. The metrics endpoint serves them all.
    const COUNTERS: &'static [&'static str];
    /// How often the counters are logged while batches flow.
    const REPORT_EVERY: Duration = Duration::from_secs(30);

    /// Validates the config and connects; `counters` holds `COUNTERS`.
    async fn open(id: u32, config: Self::Config, counters: Arc<Counters>) -> Result<Self, Error>;
    /// Writes a batch; `Ok` once it is durably written.
    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error>;
    /// Finishes what is in flight; the shell logs the counters afterwards.
    async fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

pub struct SessionSink<S: SinkSession> {
    id: u32,
    /// Until `open` takes it.
    pending: Option<S::Config>,
    open: Option<Opened<S>>,
}

struct Opened<S> {
    session: S,
    telemetry: Telemetry,
    counters: Arc<Counters>,
    rate_log: RateLog,
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
        let counters = Arc::new(Counters::new(S::COUNTERS));
        let mut session = S::open(self.id, config, Arc::clone(&counters)).await?;
        let mut telemetry = Telemetry::sink(S::PLUGIN, &counters);
        if let Err(error) = telemetry.serve(metrics.as_ref(), self.id).await {
            let _ = session.close().await;
            return Err(error);
        }
        self.open = Some(Opened {
            session,
            telemetry,
            counters,
            rate_log: RateLog::new(),
        });
        Ok(())
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        metadata: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        let opened = self
            .open
            .as_ref()
            .ok_or_else(|| Error::InitError(format!("{} {} is not open", S::NAME, self.id)))?;
        let count = messages.len();
        let write = opened.session.consume(topic, metadata, messages);
        let result = opened.telemetry.timed_write(count, write).await;
        opened
            .rate_log
            .maybe_log(S::PLUGIN, &opened.counters, S::REPORT_EVERY);
        result
    }

    async fn close(&mut self) -> Result<(), Error> {
        match self.open.take() {
            Some(mut opened) => {
                opened.telemetry.stop();
                let result = opened.session.close().await;
                tracing::info!(
                    "{} {} closed: {}",
                    S::NAME,
                    self.id,
                    opened.counters.summary()
                );
                result
            }
            None => Ok(()),
        }
    }
}
