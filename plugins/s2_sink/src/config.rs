//! The sink's settings: the shared S2 connection keys at the top level of
//! `[plugin_config]`, then where and how records are appended.

use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::metrics::{Metered, MetricsSettings};
use iggy_connector_common::retry::{RetryPolicy, outage_policy};
use iggy_connector_s2_common::S2Connection;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize)]
pub struct SinkConfig {
    #[serde(flatten)]
    pub connection: S2Connection,
    /// A stream name, or a template over `{stream}`, `{topic}`,
    /// `{partition}` and `{header.NAME}`.
    pub stream: String,
    /// Appends a fence command on first use of each stream and sends its
    /// token with every append, so another writer that fences the stream
    /// stops this one (and appends with any other token are refused).
    #[serde(default)]
    pub fence: bool,
    /// The token to fence with (at most 36 bytes); default: random per open.
    pub fencing_token: Option<String>,
    /// Creates a missing stream on first use.
    pub create_stream: Option<CreateStream>,
    /// Keyed changelog mode: `@key` and `@action` headers.
    pub upsert: Option<UpsertSettings>,
    /// How far back a stream is read, the first time an Iggy partition
    /// writes to it, to find that partition's last record.
    #[serde(default)]
    pub read_back: ReadBack,
    /// How a write that failed for a passing reason (the server unreachable
    /// or overloaded, a timeout) is tried again: by default for up to five
    /// minutes, since the runtime has committed the batch already.
    #[serde(default = "RetryPolicy::outage", deserialize_with = "outage_policy")]
    pub retry: RetryPolicy,
    /// One attempt at writing a batch (learning the stream, reading back,
    /// appending) gives up after this and counts as a transient failure.
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

fn default_attempt_timeout() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStream {
    /// `"infinite"` or an age such as `"7d"`; absent: the basin's default.
    pub retention: Option<Retention>,
}

/// Whichever comes first ends the read-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadBack {
    pub records: u64,
    /// Metered bytes (as S2 counts them).
    pub bytes: u64,
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
}

impl Default for ReadBack {
    fn default() -> Self {
        Self {
            records: 100_000,
            bytes: 128 * 1024 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Infinite,
    Age(Duration),
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "infinite" {
            return Ok(Self::Infinite);
        }
        serde_duration::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&text))
            .map(Self::Age)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpsertSettings {
    /// Top-level payload fields that form the key, in this order.
    pub key_fields: Vec<String>,
    /// An Iggy header holding the action.
    pub action_header: Option<String>,
    /// A top-level payload field holding the action (Debezium: `op`).
    pub action_field: Option<String>,
}

impl SinkConfig {
    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(key) = self.unknown.keys().next() {
            return Err(format!("unknown setting `{key}`"));
        }
        self.connection.validate()?;
        if let Some(token) = &self.fencing_token {
            if !self.fence {
                return Err("fencing_token: set `fence = true` to use it".into());
            }
            if token.is_empty() || token.len() > 36 {
                return Err("fencing_token: must be 1 to 36 bytes".into());
            }
        }
        if let Some(Retention::Age(age)) = self.create_stream.as_ref().and_then(|c| c.retention)
            && age.as_secs() == 0
        {
            return Err("create_stream.retention: must be at least one second".into());
        }
        if self.read_back.records == 0 {
            return Err("read_back.records must be at least 1".into());
        }
        if self.read_back.bytes < 1024 * 1024 {
            return Err("read_back.bytes must be at least 1048576 (one read)".into());
        }
        if self.read_back.timeout.is_zero() {
            return Err("read_back.timeout must be greater than zero".into());
        }
        self.retry.validate()?;
        // A read-back cut by the attempt's end would be cut again each time.
        if self.attempt_timeout <= self.read_back.timeout {
            return Err(format!(
                "attempt_timeout ({:?}) must be longer than read_back.timeout ({:?})",
                self.attempt_timeout, self.read_back.timeout
            ));
        }
        if let Some(upsert) = &self.upsert {
            if upsert.key_fields.is_empty() || upsert.key_fields.iter().any(String::is_empty) {
                return Err("upsert.key_fields: give at least one payload field".into());
            }
            if upsert.action_header.is_some() == upsert.action_field.is_some() {
                return Err("upsert: give exactly one of action_header or action_field".into());
            }
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

    const BASE: &str = r#""basin":"orders-basin","endpoint":"http://127.0.0.1:1","stream":"s""#;

    #[test]
    fn full_config_parses() {
        let c = parse(&format!(
            r#"{{{BASE},"fence":true,"fencing_token":"me","create_stream":{{"retention":"7d"}},
            "upsert":{{"key_fields":["id"],"action_field":"op"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            c.create_stream.unwrap().retention,
            Some(Retention::Age(Duration::from_secs(7 * 86400)))
        );
        let c = parse(&format!(
            r#"{{{BASE},"create_stream":{{"retention":"infinite"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            c.create_stream.unwrap().retention,
            Some(Retention::Infinite)
        );
        assert_eq!(c.read_back, ReadBack::default());
        let c = parse(&format!(r#"{{{BASE},"read_back":{{"records":500}}}}"#)).unwrap();
        assert_eq!(c.read_back.records, 500);
        assert_eq!(c.read_back.timeout, ReadBack::default().timeout);
        assert_eq!(c.retry, RetryPolicy::outage());
        assert_eq!(c.attempt_timeout, Duration::from_secs(60));
        let c = parse(&format!(
            r#"{{{BASE},"retry":{{"max_elapsed":"20s"}},"attempt_timeout":"45s"}}"#
        ))
        .unwrap();
        assert_eq!(c.retry.max_elapsed, Some(Duration::from_secs(20)));
        assert_eq!(
            c.retry.max_attempts,
            u32::MAX,
            "the rest stays the outage policy"
        );
        assert_eq!(c.attempt_timeout, Duration::from_secs(45));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (format!(r#"{{{BASE},"stram":"x"}}"#), "stram"),
            (format!(r#"{{{BASE},"fencing_token":"t"}}"#), "fence = true"),
            (
                format!(
                    r#"{{{BASE},"fence":true,"fencing_token":"{}"}}"#,
                    "x".repeat(37)
                ),
                "fencing_token",
            ),
            (
                format!(r#"{{{BASE},"upsert":{{"key_fields":[],"action_field":"op"}}}}"#),
                "upsert.key_fields",
            ),
            (
                format!(r#"{{{BASE},"upsert":{{"key_fields":["id"]}}}}"#),
                "exactly one of",
            ),
            (
                format!(r#"{{{BASE},"create_stream":{{"retention":"soon"}}}}"#),
                "soon",
            ),
            (
                format!(r#"{{{BASE},"read_back":{{"records":0}}}}"#),
                "read_back.records",
            ),
            (
                format!(r#"{{{BASE},"read_back":{{"bytes":10}}}}"#),
                "read_back.bytes",
            ),
            (
                format!(r#"{{{BASE},"read_back":{{"timeout":"0s"}}}}"#),
                "read_back.timeout",
            ),
            (format!(r#"{{{BASE},"read_back":{{"recs":5}}}}"#), "recs"),
            (
                format!(r#"{{{BASE},"retry":{{"jitter":2.0}}}}"#),
                "retry.jitter",
            ),
            (format!(r#"{{{BASE},"retry":{{"tries":2}}}}"#), "tries"),
            (
                format!(r#"{{{BASE},"attempt_timeout":"10s"}}"#),
                "attempt_timeout",
            ),
        ];
        for (json, expected) in cases {
            let error = parse(&json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
