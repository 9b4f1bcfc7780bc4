//! What a connector holds for its metrics: the counters and batch
//! histograms it records into, and the endpoint while it is open.

use std::sync::Arc;
use std::time::Instant;

use iggy_connector_sdk::Error;

use super::endpoint::MetricsEndpoint;
use super::exposition::Exposed;
use super::gauge::Gauge;
use super::histogram::BatchMetrics;
use super::settings::MetricsSettings;
use crate::Counters;

#[derive(Debug)]
pub struct Telemetry {
    exposed: Exposed,
    endpoint: Option<MetricsEndpoint>,
}

impl Telemetry {
    /// A sink's: batch sizes and write times besides its counters.
    pub fn sink(plugin: &'static str, counters: &Arc<Counters>) -> Self {
        Self::new(plugin, counters, BatchMetrics::sink())
    }

    /// A source's: batch sizes besides its counters.
    pub fn source(plugin: &'static str, counters: &Arc<Counters>) -> Self {
        Self::new(plugin, counters, BatchMetrics::source())
    }

    fn new(plugin: &'static str, counters: &Arc<Counters>, batches: BatchMetrics) -> Self {
        Self {
            exposed: Exposed {
                plugin,
                counters: Arc::clone(counters),
                batches: Arc::new(batches),
                gauges: Vec::new(),
            },
            endpoint: None,
        }
    }

    /// Serves `gauge` too, as `iggy_<plugin>_<name>`.
    pub fn with_gauge(mut self, name: &'static str, gauge: &Arc<Gauge>) -> Self {
        self.exposed.gauges.push((name, Arc::clone(gauge)));
        self
    }

    /// Starts serving when the config asks for it (call from `open`).
    pub async fn serve(
        &mut self,
        settings: Option<&MetricsSettings>,
        id: u32,
    ) -> Result<(), Error> {
        if let Some(settings) = settings {
            let endpoint = MetricsEndpoint::start(settings, id, self.exposed.clone()).await?;
            self.endpoint = Some(endpoint);
        }
        Ok(())
    }

    /// Stops serving (call from `close`).
    pub fn stop(&mut self) {
        self.endpoint = None;
    }

    pub fn record_batch(&self, messages: usize) {
        self.exposed.batches.record_batch(messages);
    }

    /// Runs a sink's write of a batch of `messages`, recording its time.
    pub async fn timed_write<T>(&self, messages: usize, write: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let outcome = write.await;
        self.exposed
            .batches
            .record_write(messages, started.elapsed());
        outcome
    }
}
