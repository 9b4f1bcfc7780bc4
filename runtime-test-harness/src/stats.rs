//! Per-connector counters, the connector's status as the runtime's HTTP API
//! reports it, the live progress line and the closing summary.

use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A connector's status, named as GET /sources and GET /sinks name them
/// (runtime/src/manager/source.rs and sink.rs, `update_status` and `set_error`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Starting,
    Running,
    Stopping,
    Stopped,
    Error,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Error => "error",
        }
    }
}

/// The runtime's `last_error`: the latest error message and when it was set
/// (microseconds since the Unix epoch).
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub message: String,
    pub timestamp: u64,
}

#[derive(Debug, Default)]
struct Health {
    /// The plugin id the connector was opened with.
    id: Option<u32>,
    status: Status,
    last_error: Option<LastError>,
    /// The first error: the one that explains the rest.
    failure: Option<String>,
}

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
    /// Source batches refused whole (a message the runtime would not store).
    pub refused: AtomicU64,
    /// Batches being delivered right now (a long `consume` or its retries):
    /// a run is not idle while any is in flight.
    pub in_flight: AtomicU64,
    health: Mutex<Health>,
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

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an error and puts the connector in status `error` with this
    /// message, as the runtime's `set_error` does; the run then fails.
    pub fn fail(&self, reason: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.set_error(reason);
    }

    /// Status `error` with this message, without counting an error (for
    /// callers that counted it already).
    pub fn set_error(&self, message: String) {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut health = self.health();
        health.status = Status::Error;
        health.failure.get_or_insert_with(|| message.clone());
        health.last_error = Some(LastError { message, timestamp });
    }

    /// A new status; `error` stays until the connector stops, as in the
    /// runtime, where only `update_status(Running | Stopped)` clears it and
    /// the forwarding loop sets Running once, before its first batch.
    pub fn set_status(&self, status: Status) {
        let mut health = self.health();
        if health.status != Status::Error {
            health.status = status;
        }
    }

    pub fn set_id(&self, id: u32) {
        self.health().id = Some(id);
    }

    pub fn status(&self) -> Status {
        self.health().status
    }

    pub fn failure(&self) -> Option<String> {
        self.health().failure.clone()
    }

    /// The counters and the status as they are when the run ends, before
    /// the connectors are closed (the runtime then shows every one `stopped`).
    pub fn report(&self, elapsed: Duration) -> ConnectorReport {
        let health = self.health();
        let out = self.messages_out.load(Ordering::Relaxed);
        ConnectorReport {
            id: health.id,
            key: self.key.clone(),
            kind: self.kind,
            messages_in: self.messages_in.load(Ordering::Relaxed),
            messages_out: out,
            batches: self.batches.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            nacks: self.nacks.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            rate_per_sec: out as f64 / elapsed.as_secs_f64().max(1e-9),
            status: health.status,
            last_error: health.last_error.clone(),
            failure: health.failure.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectorReport {
    /// The plugin id, given in the order connectors are opened, as the runtime gives them.
    pub id: Option<u32>,
    pub key: String,
    pub kind: &'static str,
    pub messages_in: u64,
    pub messages_out: u64,
    pub batches: u64,
    pub errors: u64,
    pub retries: u64,
    pub nacks: u64,
    pub refused: u64,
    pub rate_per_sec: f64,
    /// As GET /sources and GET /sinks report it.
    pub status: Status,
    pub last_error: Option<LastError>,
    /// The first error message (the runtime keeps only the latest).
    pub failure: Option<String>,
}

impl ConnectorReport {
    pub fn failed(&self) -> bool {
        self.status == Status::Error
    }
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
        "{:<24} {:<6} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>7} {:>12}  {}\n",
        "connector",
        "kind",
        "in",
        "out",
        "batches",
        "errors",
        "retries",
        "nacks",
        "refused",
        "msg/s",
        "status"
    );
    for r in reports {
        out.push_str(&format!(
            "{:<24} {:<6} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>7} {:>12.0}  {}\n",
            r.key,
            r.kind,
            r.messages_in,
            r.messages_out,
            r.batches,
            r.errors,
            r.retries,
            r.nacks,
            r.refused,
            r.rate_per_sec,
            r.status.name()
        ));
        if let Some(error) = &r.last_error {
            out.push_str(&format!("  ! {}: {}\n", r.key, error.message));
        }
        if let Some(first) = r.failure.as_ref().filter(|first| {
            r.last_error
                .as_ref()
                .is_none_or(|last| &last.message != *first)
        }) {
            out.push_str(&format!("    (first error: {first})\n"));
        }
    }
    out.push_str(&format!(
        "elapsed {:.2}s (msg/s: from the start to each connector's last output)",
        elapsed.as_secs_f64()
    ));
    out
}
