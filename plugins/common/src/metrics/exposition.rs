//! The Prometheus text exposition format (version 0.0.4) of one connector.

use std::fmt::Write;
use std::sync::Arc;

use super::gauge::Gauge;
use super::histogram::{BatchMetrics, Histogram};
use crate::Counters;

/// What one connector exposes: its plugin's counters and batch histograms.
#[derive(Debug, Clone)]
pub struct Exposed {
    /// The plugin's crate suffix (`nats_jetstream_sink`): the metric prefix.
    pub plugin: &'static str,
    pub counters: Arc<Counters>,
    pub batches: Arc<BatchMetrics>,
    /// Named values that go up and down; one not yet known is left out.
    pub gauges: Vec<(&'static str, Arc<Gauge>)>,
}

impl Exposed {
    pub fn render(&self, connector: &str) -> String {
        let label = format!("connector=\"{}\"", escape(connector));
        let mut out = String::new();
        for (name, value) in self.counters.snapshot() {
            let metric = format!("iggy_{}_{name}_total", self.plugin);
            let _ = writeln!(
                out,
                "# HELP {metric} The {} plugin's `{name}` count (its README says what it counts).",
                self.plugin
            );
            let _ = writeln!(out, "# TYPE {metric} counter");
            let _ = writeln!(out, "{metric}{{{label}}} {value}");
        }
        for (name, gauge) in &self.gauges {
            if let Some(value) = gauge.get() {
                let metric = format!("iggy_{}_{name}", self.plugin);
                let _ = writeln!(out, "# TYPE {metric} gauge");
                let _ = writeln!(out, "{metric}{{{label}}} {value}");
            }
        }
        histogram(
            &mut out,
            &format!("iggy_{}_batch_messages", self.plugin),
            "Messages per batch.",
            &label,
            &self.batches.messages,
        );
        if let Some(seconds) = &self.batches.write_seconds {
            histogram(
                &mut out,
                &format!("iggy_{}_write_seconds", self.plugin),
                "Seconds from a batch's delivery until it was written or given up.",
                &label,
                seconds,
            );
        }
        out
    }
}

fn histogram(out: &mut String, metric: &str, help: &str, label: &str, histogram: &Histogram) {
    let _ = writeln!(out, "# HELP {metric} {help}");
    let _ = writeln!(out, "# TYPE {metric} histogram");
    let buckets = histogram.cumulative();
    for (bound, count) in &buckets {
        let le = bound.map_or_else(|| "+Inf".to_string(), |b| b.to_string());
        let _ = writeln!(out, "{metric}_bucket{{{label},le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{metric}_sum{{{label}}} {}", histogram.sum());
    let total = buckets.last().map_or(0, |(_, count)| *count);
    let _ = writeln!(out, "{metric}_count{{{label}}} {total}");
}

/// A label value as the format requires: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counters_and_histograms_in_the_text_format() {
        let counters = Arc::new(Counters::new(&["stored", "failed_batches"]));
        counters.add("stored", 7);
        let batches = Arc::new(BatchMetrics::sink());
        batches.record_write(7, Duration::from_millis(3));
        let lag = Arc::new(Gauge::default());
        let unknown = Arc::new(Gauge::default());
        lag.set(Some(-3));
        let exposed = Exposed {
            plugin: "test_sink",
            counters,
            batches,
            gauges: vec![("lag", lag), ("unknown", unknown)],
        };
        let text = exposed.render("orders \"eu\"");
        let lines: Vec<&str> = text.lines().collect();
        for expected in [
            "# TYPE iggy_test_sink_stored_total counter",
            "iggy_test_sink_stored_total{connector=\"orders \\\"eu\\\"\"} 7",
            "iggy_test_sink_failed_batches_total{connector=\"orders \\\"eu\\\"\"} 0",
            "# TYPE iggy_test_sink_lag gauge",
            "iggy_test_sink_lag{connector=\"orders \\\"eu\\\"\"} -3",
            "# TYPE iggy_test_sink_batch_messages histogram",
            "iggy_test_sink_batch_messages_bucket{connector=\"orders \\\"eu\\\"\",le=\"1\"} 0",
            "iggy_test_sink_batch_messages_bucket{connector=\"orders \\\"eu\\\"\",le=\"10\"} 1",
            "iggy_test_sink_batch_messages_bucket{connector=\"orders \\\"eu\\\"\",le=\"+Inf\"} 1",
            "iggy_test_sink_batch_messages_sum{connector=\"orders \\\"eu\\\"\"} 7",
            "iggy_test_sink_batch_messages_count{connector=\"orders \\\"eu\\\"\"} 1",
            "iggy_test_sink_write_seconds_bucket{connector=\"orders \\\"eu\\\"\",le=\"0.0025\"} 0",
            "iggy_test_sink_write_seconds_bucket{connector=\"orders \\\"eu\\\"\",le=\"0.005\"} 1",
            "iggy_test_sink_write_seconds_sum{connector=\"orders \\\"eu\\\"\"} 0.003",
        ] {
            assert!(lines.contains(&expected), "no `{expected}` in:\n{text}");
        }
        assert!(!text.contains("unknown"), "{text}");
    }
}
