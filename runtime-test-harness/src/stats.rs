//! Per-connector counters, the live progress line and the closing summary.

use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct ConnectorStats {
    pub key: String,
    pub kind: &'static str,
    /// Sink: messages handed to `consume`; source: messages the plugin produced.
    pub messages_in: AtomicU64,
    /// Sink: messages in batches `consume` accepted; source: messages stored.
    pub messages_out: AtomicU64,
    pub batches: AtomicU64,
    pub errors: AtomicU64,
    pub retries: AtomicU64,
    pub nacks: AtomicU64,
    /// Batches being delivered right now (a long `consume` or its retries):
    /// a run is not idle while any is in flight.
    pub in_flight: AtomicU64,
    failure: Mutex<Option<String>>,
}

/// Marks one batch in flight for as long as it lives.
pub struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    pub fn start(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectorStats {
    pub fn new(key: &str, kind: &'static str) -> Self {
        Self {
            key: key.to_string(),
            kind,
            ..Self::default()
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records why the connector stopped working; the run then fails.
    pub fn fail(&self, reason: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert(reason);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn report(&self, elapsed: Duration) -> ConnectorReport {
        let out = self.messages_out.load(Ordering::Relaxed);
        ConnectorReport {
            key: self.key.clone(),
            kind: self.kind,
            messages_in: self.messages_in.load(Ordering::Relaxed),
            messages_out: out,
            batches: self.batches.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            nacks: self.nacks.load(Ordering::Relaxed),
            rate_per_sec: out as f64 / elapsed.as_secs_f64().max(1e-9),
            failure: self.failure(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectorReport {
    pub key: String,
    pub kind: &'static str,
    pub messages_in: u64,
    pub messages_out: u64,
    pub batches: u64,
    pub errors: u64,
    pub retries: u64,
    pub nacks: u64,
    pub rate_per_sec: f64,
    pub failure: Option<String>,
}

pub fn progress_line(stats: &[std::sync::Arc<ConnectorStats>], elapsed: Duration) -> String {
    let parts: Vec<String> = stats
        .iter()
        .map(|s| {
            format!(
                "{} {}→{}{}",
                s.key,
                s.messages_in.load(Ordering::Relaxed),
                s.messages_out.load(Ordering::Relaxed),
                match s.errors.load(Ordering::Relaxed) {
                    0 => String::new(),
                    n => format!(" ({n} errors)"),
                }
            )
        })
        .collect();
    format!("[{:>6.1}s] {}", elapsed.as_secs_f64(), parts.join(" | "))
}

pub fn summary_table(reports: &[ConnectorReport], elapsed: Duration) -> String {
    let mut out = format!(
        "{:<24} {:<6} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>12}\n",
        "connector", "kind", "in", "out", "batches", "errors", "retries", "nacks", "msg/s"
    );
    for r in reports {
        out.push_str(&format!(
            "{:<24} {:<6} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>12.0}\n",
            r.key,
            r.kind,
            r.messages_in,
            r.messages_out,
            r.batches,
            r.errors,
            r.retries,
            r.nacks,
            r.rate_per_sec
        ));
        if let Some(failure) = &r.failure {
            out.push_str(&format!("  ! {}: {failure}\n", r.key));
        }
    }
    out.push_str(&format!(
        "elapsed {:.2}s (msg/s: from the start to each connector's last output)",
        elapsed.as_secs_f64()
    ));
    out
}
