//! The plugin's own metrics, as the reference connector listed them:
//! messages and bytes read, batches, errors, last offset and lag. Counted
//! when a batch is acknowledged (a Nacked batch is read again, not twice),
//! logged every `metrics_log_interval`.

use iggy_connector_common::metrics::Gauge;
use iggy_connector_common::{Counters, RateLog};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Metrics {
    label: String,
    counters: Arc<Counters>,
    log: RateLog,
    every: Duration,
    last_offset: Mutex<Option<String>>,
    lag: Arc<Gauge>,
}

impl Metrics {
    pub fn new(label: String, every: Duration) -> Self {
        Self {
            label,
            counters: Arc::new(Counters::new(&[
                "messages_read",
                "bytes_read",
                "batches",
                "errors",
                "skipped",
            ])),
            log: RateLog::new(),
            every,
            last_offset: Mutex::new(None),
            lag: Arc::new(Gauge::default()),
        }
    }

    pub fn delivered(&self, messages: u64, bytes: u64) {
        self.counters.add("messages_read", messages);
        self.counters.add("bytes_read", bytes);
        self.counters.add("batches", 1);
    }

    pub fn error(&self) {
        self.counters.add("errors", 1);
    }

    pub fn skipped(&self, records: u64) {
        self.counters.add("skipped", records);
    }

    pub fn set_last_offset(&self, offset: String) {
        *self.last_offset() = Some(offset);
    }

    /// Records Flink reports as not yet read by the query's sources.
    pub fn set_lag(&self, lag: Option<i64>) {
        self.lag.set(lag);
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub fn lag(&self) -> &Arc<Gauge> {
        &self.lag
    }

    /// Logs when due; `true` when it did, so a caller can refresh gauges.
    pub fn maybe_log(&self) -> bool {
        if !self.log.maybe_log(&self.label, &self.counters, self.every) {
            return false;
        }
        tracing::info!(
            "{}: last_offset={} lag={}",
            self.label,
            self.last_offset().as_deref().unwrap_or("-"),
            self.lag
                .get()
                .map_or_else(|| "-".to_string(), |lag| lag.to_string())
        );
        true
    }

    fn last_offset(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
