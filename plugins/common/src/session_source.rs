//! The `Source` glue the session-based sources share: the config waits for
//! `open`, which builds the plugin's session; `poll` and the batch result
//! go to it; `close` ends it. A plugin implements `SourceSession` and
//! exports `source_connector!(SessionSource<ItsSession>)`.
//!
//! Every batch a session returns goes through [`Admission`] before it
//! reaches the runtime, under the session's `invalid_messages` policy, so
//! one message the runtime would refuse never blocks the source.

use async_trait::async_trait;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessage, ProducedMessages, Source};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tokio::sync::Mutex;

use crate::Counters;
use crate::admission::{Admission, InvalidMessages};
use crate::metrics::{Gauge, Metered, Telemetry};

#[async_trait]
pub trait SourceSession: Send + Sized + 'static {
    type Config: DeserializeOwned + Metered + Send + Sync;
    /// Names the connector in messages, e.g. "S2 source".
    const NAME: &'static str;
    /// The crate's suffix, e.g. "s2_source": the prefix of its metric names.
    const PLUGIN: &'static str;

    /// The session's counters, which the metrics endpoint serves.
    fn counters(&self) -> Arc<Counters>;

    async fn open(
        id: u32,
        config: Self::Config,
        state: Option<ConnectorState>,
    ) -> Result<Self, Error>;
    async fn poll(&mut self) -> Result<ProducedMessages, Error>;
    async fn on_batch_result(&mut self, result: SourceBatchResult);
    async fn close(&mut self);

    /// The config's `invalid_messages` setting; asked once, after `open`.
    fn invalid_messages(&self) -> InvalidMessages {
        InvalidMessages::Skip
    }

    /// Where `message` comes from in the source (e.g. its stream sequence
    /// number), for the log line of a message admission leaves out.
    fn describe(&self, message: &ProducedMessage) -> String {
        match message.id {
            Some(id) => format!("id {id}"),
            None => "no id".to_owned(),
        }
    }

    /// Values beside the counters that the metrics endpoint serves, as
    /// `iggy_<PLUGIN>_<name>` (e.g. a lag); asked once, after `open`.
    fn gauges(&self) -> Vec<(&'static str, Arc<Gauge>)> {
        Vec::new()
    }
}

pub struct SessionSource<S: SourceSession> {
    id: u32,
    /// Until `open` takes them.
    pending: Option<(S::Config, Option<ConnectorState>)>,
    // The SDK never overlaps poll and on_batch_result; the lock only makes
    // the session reachable from `&self`.
    session: Mutex<Option<S>>,
    /// Set by `open`, from the session's policy.
    admission: Option<Admission>,
    /// Set by `open`, with the session's counters.
    telemetry: Option<Telemetry>,
}

// Upstream's SDK requires `Debug` of a connector type; the config and the
// session may hold credentials, so only the connector's name and id show.
impl<S: SourceSession> std::fmt::Debug for SessionSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSource")
            .field("connector", &S::NAME)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<S: SourceSession> SessionSource<S> {
    pub fn new(id: u32, config: S::Config, state: Option<ConnectorState>) -> Self {
        Self {
            id,
            pending: Some((config, state)),
            session: Mutex::new(None),
            admission: None,
            telemetry: None,
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
        let metrics = config.metrics().cloned();
        let mut session = S::open(self.id, config, state).await?;
        let mut telemetry = session.gauges().into_iter().fold(
            Telemetry::source(S::PLUGIN, &session.counters()),
            |telemetry, (name, gauge)| telemetry.with_gauge(name, &gauge),
        );
        if let Err(error) = telemetry.serve(metrics.as_ref(), self.id).await {
            session.close().await;
            return Err(error);
        }
        self.telemetry = Some(telemetry);
        self.admission = Some(Admission::new(
            format!("{} {}", S::NAME, self.id),
            session.invalid_messages(),
        ));
        *self.session.get_mut() = Some(session);
        Ok(())
    }

    async fn poll(&self) -> Result<ProducedMessages, Error> {
        let mut session = self.session.lock().await;
        let (Some(session), Some(admission), Some(telemetry)) =
            (session.as_mut(), &self.admission, &self.telemetry)
        else {
            return Err(self.not_open());
        };
        let mut batch = session.poll().await?;
        admission.admit(&mut batch, |message| session.describe(message));
        telemetry.record_batch(batch.messages.len());
        Ok(batch)
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
        if let Some(telemetry) = &mut self.telemetry {
            telemetry.stop();
        }
        if let Some(admission) = &self.admission
            && admission.skipped() + admission.wrapped() > 0
        {
            tracing::warn!(
                "{} {} closed; invalid messages: {}",
                S::NAME,
                self.id,
                admission.summary()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_connector_sdk::Schema;

    impl Metered for InvalidMessages {
        fn metrics(&self) -> Option<&crate::metrics::MetricsSettings> {
            None
        }
    }

    /// Returns one JSON batch with a message the runtime would refuse.
    struct OneBatch {
        policy: InvalidMessages,
    }

    #[async_trait]
    impl SourceSession for OneBatch {
        type Config = InvalidMessages;
        const NAME: &'static str = "test source";
        const PLUGIN: &'static str = "test_source";

        fn counters(&self) -> Arc<Counters> {
            Arc::new(Counters::new(&[]))
        }

        async fn open(
            _id: u32,
            policy: InvalidMessages,
            _state: Option<ConnectorState>,
        ) -> Result<Self, Error> {
            Ok(Self { policy })
        }

        async fn poll(&mut self) -> Result<ProducedMessages, Error> {
            let message = |id, payload: &[u8]| ProducedMessage {
                id: Some(id),
                checksum: None,
                timestamp: None,
                origin_timestamp: None,
                headers: None,
                payload: payload.to_vec(),
            };
            Ok(ProducedMessages {
                schema: Schema::Json,
                messages: vec![message(1, b"{}"), message(2, b"oops"), message(3, b"[]")],
                state: None,
            })
        }

        async fn on_batch_result(&mut self, _result: SourceBatchResult) {}
        async fn close(&mut self) {}

        fn invalid_messages(&self) -> InvalidMessages {
            self.policy
        }
    }

    async fn first_batch(policy: InvalidMessages) -> ProducedMessages {
        let mut source = SessionSource::<OneBatch>::new(7, policy, None);
        source.open().await.unwrap();
        let batch = source.poll().await.unwrap();
        source.close().await.unwrap();
        batch
    }

    #[tokio::test]
    async fn poll_applies_the_sessions_policy() {
        let skipped = first_batch(InvalidMessages::Skip).await;
        let ids: Vec<_> = skipped.messages.iter().filter_map(|m| m.id).collect();
        assert_eq!(ids, [1, 3]);

        let wrapped = first_batch(InvalidMessages::Wrap).await;
        let ids: Vec<_> = wrapped.messages.iter().filter_map(|m| m.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(
            wrapped.messages[1].payload,
            br#"{"invalid_payload_text":"oops"}"#
        );
    }

    /// Serves a lag gauge beside its counters.
    struct Lagging {
        lag: Arc<Gauge>,
    }

    impl Metered for crate::metrics::MetricsSettings {
        fn metrics(&self) -> Option<&crate::metrics::MetricsSettings> {
            Some(self)
        }
    }

    #[async_trait]
    impl SourceSession for Lagging {
        type Config = crate::metrics::MetricsSettings;
        const NAME: &'static str = "test source";
        const PLUGIN: &'static str = "test_source";

        fn counters(&self) -> Arc<Counters> {
            Arc::new(Counters::new(&["events"]))
        }

        async fn open(
            _id: u32,
            _config: Self::Config,
            _state: Option<ConnectorState>,
        ) -> Result<Self, Error> {
            let lag = Arc::new(Gauge::default());
            lag.set(Some(5));
            Ok(Self { lag })
        }

        async fn poll(&mut self) -> Result<ProducedMessages, Error> {
            Err(Error::InitError("not polled".into()))
        }

        async fn on_batch_result(&mut self, _result: SourceBatchResult) {}
        async fn close(&mut self) {}

        fn gauges(&self) -> Vec<(&'static str, Arc<Gauge>)> {
            vec![("lag", Arc::clone(&self.lag))]
        }
    }

    #[tokio::test]
    async fn the_sessions_gauges_are_served() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A port free a moment ago; the endpoint cannot tell its port back.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap();
        let settings = crate::metrics::MetricsSettings {
            address,
            connector: None,
        };
        let mut source = SessionSource::<Lagging>::new(9, settings, None);
        source.open().await.unwrap();
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        source.close().await.unwrap();
        assert!(
            response.contains("iggy_test_source_lag{connector=\"test_source-9\"} 5"),
            "{response}"
        );
        assert!(
            response.contains("iggy_test_source_events_total{connector=\"test_source-9\"} 0"),
            "{response}"
        );
    }

    #[tokio::test]
    async fn poll_before_open_is_an_error() {
        let source = SessionSource::<OneBatch>::new(8, InvalidMessages::Skip, None);
        assert!(source.poll().await.is_err());
    }
}
