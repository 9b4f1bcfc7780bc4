//! Cumulative histograms with fixed bucket bounds, updated lock-free on the
//! hot path and read only by a scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Messages per batch: the runtime's batches run from one message to a few
/// thousand.
const MESSAGES_BOUNDS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];
/// Seconds to write one batch: a local write takes a millisecond, an outage
/// ridden out takes minutes.
const SECONDS_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
];

#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound plus `+Inf`; not cumulative (the scrape sums them).
    buckets: Box<[AtomicU64]>,
    /// The sum in millionths, so it fits an atomic integer.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let index = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let micros = (value.max(0.0) * 1e6).round() as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last as `None`;
    /// the last count is the total.
    pub fn cumulative(&self) -> Vec<(Option<f64>, u64)> {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (index, bucket) in self.buckets.iter().enumerate() {
            total += bucket.load(Ordering::Relaxed);
            out.push((self.bounds.get(index).copied(), total));
        }
        out
    }

    pub fn sum(&self) -> f64 {
        self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// What a connector records per batch: its size, and for a sink the time
/// from `consume` until the batch was written (or given up).
#[derive(Debug)]
pub struct BatchMetrics {
    pub messages: Histogram,
    pub write_seconds: Option<Histogram>,
}

impl BatchMetrics {
    pub fn sink() -> Self {
        Self {
            messages: Histogram::new(MESSAGES_BOUNDS),
            write_seconds: Some(Histogram::new(SECONDS_BOUNDS)),
        }
    }

    pub fn source() -> Self {
        Self {
            messages: Histogram::new(MESSAGES_BOUNDS),
            write_seconds: None,
        }
    }

    /// A source batch of `messages` (an empty poll is not a batch).
    pub fn record_batch(&self, messages: usize) {
        if messages > 0 {
            self.messages.observe(messages as f64);
        }
    }

    /// A sink batch of `messages` that took `took` to write.
    pub fn record_write(&self, messages: usize, took: Duration) {
        self.messages.observe(messages as f64);
        if let Some(seconds) = &self.write_seconds {
            seconds.observe(took.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_with_the_total() {
        let h = Histogram::new(&[1.0, 10.0]);
        for value in [0.5, 1.0, 3.0, 10.0, 11.0, 500.0] {
            h.observe(value);
        }
        assert_eq!(h.cumulative(), [(Some(1.0), 2), (Some(10.0), 4), (None, 6)]);
        assert!((h.sum() - 525.5).abs() < 1e-9);
    }

    #[test]
    fn a_source_records_no_empty_polls_and_no_write_time() {
        let batches = BatchMetrics::source();
        batches.record_batch(0);
        batches.record_batch(100);
        assert_eq!(batches.messages.cumulative().last(), Some(&(None, 1)));
        assert!(batches.write_seconds.is_none());
        let sink = BatchMetrics::sink();
        sink.record_write(10, Duration::from_millis(20));
        let seconds = sink.write_seconds.as_ref().unwrap();
        assert_eq!(seconds.cumulative().last(), Some(&(None, 1)));
        assert!((seconds.sum() - 0.02).abs() < 1e-9);
    }
}
