//! The sink's settings: the shared Pravega connection keys at the top level
//! of `[plugin_config]`, then how events are routed and delivered.

use iggy_connector_common::RetryPolicy;
use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::metrics::{Metered, MetricsSettings};
use iggy_connector_common::retry::outage_policy;
use iggy_connector_pravega_common::{MAX_EVENT_BYTES, PravegaConnection};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize)]
pub struct SinkConfig {
    #[serde(flatten)]
    pub connection: PravegaConnection,
    #[serde(default)]
    pub writer_mode: WriterMode,
    #[serde(default)]
    pub routing_key: RoutingKey,
    /// What to do with a message whose routing key cannot be found.
    #[serde(default)]
    pub missing_routing_key: MissingRoutingKey,
    /// Larger events are refused (at most the client's 8 MiB).
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// `exactly_once`: how long an open transaction lives without a ping.
    #[serde(default = "default_transaction_timeout", with = "serde_duration")]
    pub transaction_timeout: Duration,
    /// Retries of a batch after a transient failure; what the table leaves
    /// out rides out an outage of up to five minutes.
    #[serde(default = "RetryPolicy::outage", deserialize_with = "outage_policy")]
    pub retry: RetryPolicy,
    /// One attempt at a batch gives up after this (the writer is then made
    /// anew): a stalled server must not hold the batch past the retries.
    #[serde(default = "default_attempt_timeout", with = "serde_duration")]
    pub attempt_timeout: Duration,
    /// Where to serve Prometheus metrics; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsSettings>,
    /// Anything not recognised, reported by `validate` (serde cannot deny
    /// unknown fields next to a flattened struct).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

impl Metered for SinkConfig {
    fn metrics(&self) -> Option<&MetricsSettings> {
        self.metrics.as_ref()
    }
}

fn default_max_event_bytes() -> usize {
    MAX_EVENT_BYTES
}

fn default_attempt_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_transaction_timeout() -> Duration {
    Duration::from_secs(90)
}

/// Pravega's writer guarantees, as its Flink connector names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterMode {
    /// Hand the events to the client and return.
    BestEffort,
    /// Return once every event of the batch is acknowledged.
    #[default]
    AtLeastOnce,
    /// One transaction per batch, committed before returning.
    ExactlyOnce,
}

/// What an event's routing key is: `"none"`, `"partition"` (the Iggy
/// partition id), `{ field = "a.b" }` (a JSON payload field) or
/// `{ header = "name" }` (an Iggy header).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingKey {
    #[default]
    None,
    Partition,
    Field(String),
    Header(String),
}

/// A message whose configured routing key is absent: `skip` it (counted and
/// logged), or write it with `no_key` (to any segment: no order with the
/// other events of its key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingRoutingKey {
    #[default]
    Skip,
    NoKey,
}

impl SinkConfig {
    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(key) = self.unknown.keys().next() {
            return Err(format!("unknown setting `{key}`"));
        }
        self.connection.validate()?;
        if self.max_event_bytes == 0 || self.max_event_bytes > MAX_EVENT_BYTES {
            return Err(format!(
                "max_event_bytes must be 1 to {MAX_EVENT_BYTES} (the client's limit)"
            ));
        }
        match &self.routing_key {
            RoutingKey::Field(path) if path.split('.').any(str::is_empty) => {
                return Err(format!("routing_key.field: `{path}` is not a field path"));
            }
            RoutingKey::Header(name) if name.is_empty() => {
                return Err("routing_key.header: give a header name".into());
            }
            _ => {}
        }
        if self.transaction_timeout < Duration::from_secs(10) {
            return Err("transaction_timeout must be at least 10s".into());
        }
        self.retry.validate()?;
        if self.attempt_timeout.is_zero() {
            return Err("attempt_timeout must be greater than zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SinkConfig, String> {
        serde_json::from_str::<SinkConfig>(json)
            .map_err(|e| e.to_string())
            .and_then(|c| c.validate().map(|()| c))
    }

    const BASE: &str =
        r#""controller_uri":"tcp://127.0.0.1:9090","scope":"shop","stream":"orders""#;

    #[test]
    fn defaults_and_full_config() {
        let c = parse(&format!("{{{BASE}}}")).unwrap();
        assert_eq!(c.writer_mode, WriterMode::AtLeastOnce);
        assert_eq!(c.routing_key, RoutingKey::None);
        assert_eq!(c.max_event_bytes, 8 * 1024 * 1024);
        assert_eq!(c.missing_routing_key, MissingRoutingKey::Skip);
        assert_eq!(c.retry, RetryPolicy::outage());
        assert_eq!(c.attempt_timeout, Duration::from_secs(60));
        let c = parse(&format!(
            r#"{{{BASE},"retry":{{"max_elapsed":"20s"}},"missing_routing_key":"no_key"}}"#
        ))
        .unwrap();
        assert_eq!(c.retry.max_elapsed, Some(Duration::from_secs(20)));
        assert_eq!(
            c.retry.max_attempts,
            u32::MAX,
            "the rest from the outage policy"
        );
        assert_eq!(c.missing_routing_key, MissingRoutingKey::NoKey);
        let c = parse(&format!(
            r#"{{{BASE},"writer_mode":"exactly_once","routing_key":{{"field":"customer.id"}},
            "max_event_bytes":1024,"transaction_timeout":"30s"}}"#
        ))
        .unwrap();
        assert_eq!(c.writer_mode, WriterMode::ExactlyOnce);
        assert_eq!(c.routing_key, RoutingKey::Field("customer.id".into()));
        assert_eq!(c.transaction_timeout, Duration::from_secs(30));
        let c = parse(&format!(r#"{{{BASE},"routing_key":"partition"}}"#)).unwrap();
        assert_eq!(c.routing_key, RoutingKey::Partition);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (format!(r#"{{{BASE},"writer_mod":"x"}}"#), "writer_mod"),
            (
                format!(r#"{{{BASE},"writer_mode":"sometimes"}}"#),
                "sometimes",
            ),
            (
                format!(r#"{{{BASE},"max_event_bytes":9000000}}"#),
                "max_event_bytes",
            ),
            (
                format!(r#"{{{BASE},"routing_key":{{"field":"a..b"}}}}"#),
                "routing_key.field",
            ),
            (
                format!(r#"{{{BASE},"routing_key":{{"header":""}}}}"#),
                "routing_key.header",
            ),
            (
                format!(r#"{{{BASE},"transaction_timeout":"1s"}}"#),
                "transaction_timeout",
            ),
            (
                r#"{"controller_uri":"x","scope":"s","stream":"t"}"#.to_string(),
                "controller_uri",
            ),
            (
                r#"{"scope":"s","stream":"t"}"#.to_string(),
                "controller_uri",
            ),
            (
                format!(r#"{{{BASE},"retry":{{"max_attempts":0}}}}"#),
                "retry.max_attempts",
            ),
            (
                format!(r#"{{{BASE},"attempt_timeout":"0s"}}"#),
                "attempt_timeout",
            ),
            (
                format!(r#"{{{BASE},"missing_routing_key":"drop"}}"#),
                "drop",
            ),
        ];
        for (json, expected) in cases {
            let error = parse(&json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
