//! Named counters a plugin bumps on its hot path and reports periodically.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use tokio::time::Instant;

/// A monotonically increasing count; `Relaxed` is enough because counters
/// are only reported, never used to synchronise other memory.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A fixed set of named counters, e.g.
/// `Counters::new(&["messages", "bytes", "batches", "errors", "retries"])`.
///
/// The set is small, so lookup by name is a linear scan; that keeps the API
/// free of per-plugin enums.
#[derive(Debug)]
pub struct Counters {
    entries: Box<[(&'static str, Counter)]>,
}

impl Counters {
    /// Repeated names are kept once, in first-seen order.
    pub fn new(names: &[&'static str]) -> Self {
        let mut entries: Vec<(&'static str, Counter)> = Vec::with_capacity(names.len());
        for &name in names {
            if !entries.iter().any(|(n, _)| *n == name) {
                entries.push((name, Counter::default()));
            }
        }
        Self {
            entries: entries.into_boxed_slice(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Counter> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c)
    }

    /// Adds to the named counter; an unknown name is ignored so that a typo
    /// costs a statistic, not a panic inside the plugin.
    pub fn add(&self, name: &str, n: u64) {
        if let Some(counter) = self.get(name) {
            counter.add(n);
        }
    }

    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.entries.iter().map(|(n, c)| (*n, c.get())).collect()
    }

    /// `"messages=10 bytes=1024 batches=1 errors=0 retries=0"`.
    pub fn summary(&self) -> String {
        self.entries
            .iter()
            .map(|(n, c)| format!("{n}={}", c.get()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Throttles periodic `info!` reports of a [`Counters`] set.
///
/// The first call only records a baseline; later calls log at most once per
/// `every`, with the per-second rate of the first counter since the last report.
#[derive(Debug, Default)]
pub struct RateLog {
    last: Mutex<Option<Mark>>,
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    first: u64,
}

impl RateLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs `counters` if `every` has passed since the last report; returns
    /// whether it logged. Cheap enough to call after every batch.
    pub fn maybe_log(&self, plugin: &str, counters: &Counters, every: Duration) -> bool {
        // Another thread holding the lock is about to log; no need to wait.
        let mut last = match self.last.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => return false,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        let now = Instant::now();
        let (first_name, first_value) = counters
            .entries
            .first()
            .map_or(("", 0), |(n, c)| (*n, c.get()));
        let mark = Mark {
            at: now,
            first: first_value,
        };
        let Some(previous) = *last else {
            *last = Some(mark);
            return false;
        };
        let elapsed = now.duration_since(previous.at);
        if elapsed < every {
            return false;
        }
        *last = Some(mark);
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            first_value.saturating_sub(previous.first) as f64 / secs
        } else {
            0.0
        };
        tracing::info!(
            plugin,
            "{plugin}: {} ({first_name}/s: {rate:.1})",
            counters.summary()
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_snapshot() {
        let c = Counters::new(&["messages", "bytes", "batches", "errors", "retries", "bytes"]);
        c.get("messages").unwrap().add(10);
        c.add("bytes", 1000);
        c.add("bytes", 24);
        c.get("batches").unwrap().inc();
        c.add("no_such_counter", 5);
        assert!(c.get("no_such_counter").is_none());
        assert_eq!(
            c.snapshot(),
            [
                ("messages", 10),
                ("bytes", 1024),
                ("batches", 1),
                ("errors", 0),
                ("retries", 0)
            ]
        );
        assert_eq!(
            c.summary(),
            "messages=10 bytes=1024 batches=1 errors=0 retries=0"
        );
        assert_eq!(Counters::new(&[]).summary(), "");
    }

    #[test]
    fn counters_are_shared_across_threads() {
        let c = Counters::new(&["messages"]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.add("messages", 1);
                    }
                });
            }
        });
        assert_eq!(c.get("messages").map(Counter::get), Some(4000));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_log_is_throttled() {
        let c = Counters::new(&["messages"]);
        let log = RateLog::new();
        let every = Duration::from_secs(10);
        assert!(
            !log.maybe_log("test", &c, every),
            "first call only sets a baseline"
        );
        c.add("messages", 50);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!log.maybe_log("test", &c, every));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(log.maybe_log("test", &c, every));
        assert!(!log.maybe_log("test", &c, every));
        tokio::time::advance(every).await;
        assert!(log.maybe_log("test", &c, every));
    }
}
