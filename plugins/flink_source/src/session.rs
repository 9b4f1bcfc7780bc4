//! One open Flink source behind the shared source shell: `open` checks the
//! settings and starts the reader of the configured mode (records through
//! the SQL Gateway, or monitor over the REST API); polls, batch results and
//! `close` go to it.

use crate::client::gateway::Gateway;
use crate::client::http::HttpClient;
use crate::client::rest::Rest;
use crate::config::{FlinkSourceConfig, Mode, Settings};
use crate::metrics::Metrics;
use crate::monitor::{MonitorReader, MonitorState};
use crate::records::{RecordsReader, RecordsState};
use async_trait::async_trait;
use iggy_connector_common::Counters;
use iggy_connector_common::metrics::Gauge;
use iggy_connector_common::session_source::SourceSession;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessage, ProducedMessages};
use std::sync::Arc;

const NAME: &str = "Flink source";

enum Reader {
    Records(Box<RecordsReader>),
    Monitor(Box<MonitorReader>),
}

pub struct Session {
    reader: Reader,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl SourceSession for Session {
    type Config = FlinkSourceConfig;
    const NAME: &'static str = NAME;
    const PLUGIN: &'static str = "flink_source";

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(self.metrics.counters())
    }

    async fn open(
        id: u32,
        config: FlinkSourceConfig,
        state: Option<ConnectorState>,
    ) -> Result<Self, Error> {
        let settings = Settings::from_config(config).map_err(Error::InvalidConfigValue)?;
        for field in settings.clear_text_auth_endpoints() {
            tracing::warn!(
                "{NAME} {id}: [plugin_config.auth] credentials go in clear text over {field} \
                 (http://): anyone on the network path can read them; use https://"
            );
        }
        let http = HttpClient::new(&settings.http, settings.uses_https())
            .map_err(Error::InvalidConfigValue)?;
        let rest = settings
            .rest_url
            .clone()
            .map(|url| Rest::new(http.clone(), url));
        let metrics = Arc::new(Metrics::new(
            format!("{NAME} {id}"),
            settings.metrics_log_interval,
        ));
        let reader = match settings.mode.clone() {
            Mode::Records(records) => {
                let gateway = Gateway::connect(http, records.gateway_url.clone())
                    .await
                    .map_err(Error::Connection)?;
                let saved = state.and_then(|s| s.deserialize::<RecordsState>(NAME, id));
                Reader::Records(Box::new(
                    RecordsReader::open(
                        id,
                        *records,
                        &settings,
                        gateway,
                        rest,
                        saved,
                        Arc::clone(&metrics),
                    )
                    .await?,
                ))
            }
            Mode::Monitor(monitor) => {
                let rest = rest.ok_or_else(|| {
                    Error::InvalidConfigValue("flink_cluster_url is required".into())
                })?;
                let saved = state.and_then(|s| s.deserialize::<MonitorState>(NAME, id));
                Reader::Monitor(Box::new(MonitorReader::new(
                    id,
                    monitor,
                    &settings,
                    rest,
                    saved,
                    Arc::clone(&metrics),
                )))
            }
        };
        Ok(Self { reader, metrics })
    }

    async fn poll(&mut self) -> Result<ProducedMessages, Error> {
        match &mut self.reader {
            Reader::Records(reader) => reader.poll().await,
            Reader::Monitor(reader) => reader.poll().await,
        }
    }

    async fn on_batch_result(&mut self, result: SourceBatchResult) {
        let ack = result == SourceBatchResult::Ack;
        match &mut self.reader {
            Reader::Records(reader) => reader.on_batch_result(ack),
            Reader::Monitor(reader) => reader.on_batch_result(ack),
        }
    }

    /// Records mode stops the query's job (with a savepoint unless turned
    /// off); monitor mode holds nothing to release.
    async fn close(&mut self) {
        if let Reader::Records(reader) = &mut self.reader {
            reader.close().await;
        }
    }

    fn describe(&self, message: &ProducedMessage) -> String {
        let what = match self.reader {
            Reader::Records(_) => "row",
            Reader::Monitor(_) => "event",
        };
        match message.id {
            Some(id) => format!("{what} id {id:032x}"),
            None => format!("{what} without id"),
        }
    }

    fn gauges(&self) -> Vec<(&'static str, Arc<Gauge>)> {
        vec![("lag", Arc::clone(self.metrics.lag()))]
    }
}
