//! Apache Iggy connector: brings data and events from an Apache Flink
//! cluster into Iggy over Flink's HTTP APIs. Records mode reads the rows of a
//! streaming query through the SQL Gateway; monitor mode turns the REST
//! API's view of jobs into events. See README.md for settings and guarantees.

mod client;
mod config;
mod message;
mod metrics;
mod monitor;
mod records;

use async_trait::async_trait;
use client::gateway::Gateway;
use client::http::HttpClient;
use client::rest::Rest;
use config::{FlinkSourceConfig, Mode, Settings};
use iggy_connector_common::metrics::Telemetry;
use iggy_connector_sdk::source::SourceBatchResult;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessages, Source, source_connector};
use metrics::Metrics;
use monitor::{MonitorReader, MonitorState};
use records::{RecordsReader, RecordsState};
use std::sync::Arc;
use tokio::sync::Mutex;

source_connector!(FlinkSource);
iggy_connector_common::connector_debug!(FlinkSource);

const PLUGIN: &str = "Flink source";

enum Reader {
    Records(Box<RecordsReader>),
    Monitor(Box<MonitorReader>),
}

pub struct FlinkSource {
    id: u32,
    /// Until `open` takes them.
    pending: Option<(FlinkSourceConfig, Option<ConnectorState>)>,
    // The SDK never overlaps poll and on_batch_result; the lock only makes
    // the reader reachable from `&self`.
    reader: Mutex<Option<Reader>>,
    /// Set by `open`.
    telemetry: Option<Telemetry>,
}

impl FlinkSource {
    pub fn new(id: u32, config: FlinkSourceConfig, state: Option<ConnectorState>) -> Self {
        Self {
            id,
            pending: Some((config, state)),
            reader: Mutex::new(None),
            telemetry: None,
        }
    }
}

fn not_open(id: u32) -> Error {
    Error::InitError(format!("{PLUGIN} {id} is not open"))
}

#[async_trait]
impl Source for FlinkSource {
    async fn open(&mut self) -> Result<(), Error> {
        let id = self.id;
        let (config, state) = self
            .pending
            .take()
            .ok_or_else(|| Error::InitError(format!("{PLUGIN} {id} is already open")))?;
        let settings = Settings::from_config(config).map_err(Error::InvalidConfigValue)?;
        for field in settings.clear_text_auth_endpoints() {
            tracing::warn!(
                "{PLUGIN} {id}: [plugin_config.auth] credentials go in clear text over {field} \
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
            format!("{PLUGIN} {id}"),
            settings.metrics_log_interval,
        ));
        let mut telemetry =
            Telemetry::source("flink_source", metrics.counters()).with_gauge("lag", metrics.lag());
        telemetry.serve(settings.metrics.as_ref(), id).await?;
        let reader = match settings.mode.clone() {
            Mode::Records(records) => {
                let gateway = Gateway::connect(http, records.gateway_url.clone())
                    .await
                    .map_err(Error::Connection)?;
                let saved = state.and_then(|s| s.deserialize::<RecordsState>(PLUGIN, id));
                Reader::Records(Box::new(
                    RecordsReader::open(id, *records, &settings, gateway, rest, saved, metrics)
                        .await?,
                ))
            }
            Mode::Monitor(monitor) => {
                let rest = rest.ok_or_else(|| {
                    Error::InvalidConfigValue("flink_cluster_url is required".into())
                })?;
                let saved = state.and_then(|s| s.deserialize::<MonitorState>(PLUGIN, id));
                Reader::Monitor(Box::new(MonitorReader::new(
                    id, monitor, &settings, rest, saved, metrics,
                )))
            }
        };
        *self.reader.get_mut() = Some(reader);
        self.telemetry = Some(telemetry);
        Ok(())
    }

    async fn poll(&self) -> Result<ProducedMessages, Error> {
        let batch = match self.reader.lock().await.as_mut() {
            Some(Reader::Records(reader)) => reader.poll().await,
            Some(Reader::Monitor(reader)) => reader.poll().await,
            None => Err(not_open(self.id)),
        }?;
        if let Some(telemetry) = &self.telemetry {
            telemetry.record_batch(batch.messages.len());
        }
        Ok(batch)
    }

    async fn on_batch_result(&self, result: SourceBatchResult) -> Result<(), Error> {
        let ack = result == SourceBatchResult::Ack;
        match self.reader.lock().await.as_mut() {
            Some(Reader::Records(reader)) => reader.on_batch_result(ack),
            Some(Reader::Monitor(reader)) => reader.on_batch_result(ack),
            None => return Err(not_open(self.id)),
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        if let Some(Reader::Records(reader)) = self.reader.get_mut().as_mut() {
            reader.close().await;
        }
        *self.reader.get_mut() = None;
        self.telemetry = None;
        Ok(())
    }
}
