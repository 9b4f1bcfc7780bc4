//! Opt-in Prometheus metrics: a plugin's counters and batch histograms,
//! served in the text exposition format from a small HTTP endpoint that the
//! plugin starts at `open` when its config has a `metrics` address.
//!
//! Metric names carry the plugin (`iggy_<plugin>_<counter>_total`), since
//! the same counter name means different things in different plugins; the
//! `connector` label tells connectors of one plugin apart.

mod endpoint;
mod exposition;
mod gauge;
mod histogram;
mod settings;
mod telemetry;

pub use endpoint::MetricsEndpoint;
pub use exposition::Exposed;
pub use gauge::Gauge;
pub use histogram::{BatchMetrics, Histogram};
pub use settings::{Metered, MetricsSettings};
pub use telemetry::Telemetry;
