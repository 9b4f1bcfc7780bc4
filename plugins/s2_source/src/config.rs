//! The source's settings: the shared S2 connection keys at the top level of
//! `[plugin_config]`, then which streams to read, from where, how much at once.

use iggy_connector_common::PayloadSchema;
use iggy_connector_common::admission::InvalidMessages;
use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::metrics::{Metered, MetricsSettings};
use iggy_connector_s2_common::{S2Connection, stream_name};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize)]
pub struct SourceConfig {
    #[serde(flatten)]
    pub connection: S2Connection,
    /// Streams to read; or use `stream_prefix`.
    #[serde(default)]
    pub streams: Vec<String>,
    /// Reads every stream whose name starts with this, found again every
    /// `discovery_interval`.
    pub stream_prefix: Option<String>,
    #[serde(default = "default_discovery_interval", with = "serde_duration")]
    pub discovery_interval: Duration,
    /// Where a stream without saved state starts.
    #[serde(default)]
    pub start: StartFrom,
    /// `start` for particular streams, by name (saved state still wins).
    #[serde(default)]
    pub stream_starts: BTreeMap<String, StartFrom>,
    /// Records per batch at most.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Metered bytes per batch at most, and per stream read ahead of the polls.
    #[serde(default = "default_buffer_bytes")]
    pub buffer_bytes: usize,
    /// How long a poll waits for records when no stream has any (whole
    /// seconds, 1 to 60, as when it was S2's long-poll wait).
    #[serde(default = "default_poll_wait", with = "serde_duration")]
    pub poll_wait: Duration,
    #[serde(default)]
    pub schema: PayloadSchema,
    /// What to do with a record the runtime would refuse (and with it the
    /// whole batch): `skip` or `wrap`.
    #[serde(default)]
    pub invalid_messages: InvalidMessages,
    /// Where to serve Prometheus metrics; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsSettings>,
    /// Anything not recognised, reported by `validate` (serde cannot deny
    /// unknown fields next to a flattened struct).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_json::Value>,
}

impl Metered for SourceConfig {
    fn metrics(&self) -> Option<&MetricsSettings> {
        self.metrics.as_ref()
    }
}

fn default_discovery_interval() -> Duration {
    Duration::from_secs(30)
}

/// A batch may gather several of S2's reads (each at most 1000 records and
/// 1 MiB): the runtime saves the state once per batch and its producer
/// sends in chunks of its own `batch_length`.
const MAX_BATCH_SIZE: usize = 100_000;
const MAX_BUFFER_BYTES: usize = 64 * 1024 * 1024;

fn default_batch_size() -> usize {
    1000
}

fn default_buffer_bytes() -> usize {
    1024 * 1024
}

fn default_poll_wait() -> Duration {
    Duration::from_secs(1)
}

/// `"earliest"`, `"latest"`, `{ seq_num = 42 }` or `{ timestamp = 1767225600000 }` (ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
    SeqNum(u64),
    Timestamp(u64),
}

/// Where streams without saved state start: their own `stream_starts`
/// entry, else `start`.
#[derive(Debug, Clone)]
pub struct Starts {
    default: StartFrom,
    per_stream: BTreeMap<String, StartFrom>,
}

impl Starts {
    pub fn of(&self, name: &str) -> StartFrom {
        self.per_stream.get(name).copied().unwrap_or(self.default)
    }
}

impl SourceConfig {
    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(key) = self.unknown.keys().next() {
            return Err(format!("unknown setting `{key}`"));
        }
        self.connection.validate()?;
        match (&self.stream_prefix, self.streams.is_empty()) {
            (Some(_), false) | (None, true) => {
                return Err("streams: give a list of streams or a stream_prefix (not both)".into());
            }
            (Some(prefix), true) if prefix.is_empty() => {
                return Err("stream_prefix: must not be empty".into());
            }
            _ => {}
        }
        for name in &self.streams {
            stream_name(name).map_err(|e| format!("streams: {e}"))?;
        }
        for name in self.stream_starts.keys() {
            stream_name(name).map_err(|e| format!("stream_starts: {e}"))?;
            let read = match &self.stream_prefix {
                Some(prefix) => name.starts_with(prefix.as_str()),
                None => self.streams.contains(name),
            };
            if !read {
                return Err(format!(
                    "stream_starts: `{name}` is not one of the streams read (see `streams` / `stream_prefix`)"
                ));
            }
        }
        if self.discovery_interval.is_zero() {
            return Err("discovery_interval must be greater than zero".into());
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(format!("batch_size must be between 1 and {MAX_BATCH_SIZE}"));
        }
        if !(1024..=MAX_BUFFER_BYTES).contains(&self.buffer_bytes) {
            return Err(format!(
                "buffer_bytes must be between 1024 and {MAX_BUFFER_BYTES}"
            ));
        }
        if !(1..=60).contains(&self.poll_wait.as_secs()) || self.poll_wait.subsec_nanos() != 0 {
            return Err("poll_wait must be whole seconds from 1s to 60s".into());
        }
        Ok(())
    }

    pub fn starts(&self) -> Starts {
        Starts {
            default: self.start,
            per_stream: self.stream_starts.clone(),
        }
    }

    /// `poll_wait` in whole seconds (validated to fit).
    pub fn poll_wait_secs(&self) -> u32 {
        u32::try_from(self.poll_wait.as_secs()).unwrap_or(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SourceConfig, String> {
        serde_json::from_str::<SourceConfig>(json)
            .map_err(|e| e.to_string())
            .and_then(|c| c.validate().map(|()| c))
    }

    const BASE: &str = r#""basin":"orders-basin","endpoint":"http://127.0.0.1:1""#;

    #[test]
    fn start_behaviours_parse() {
        for (json, expected) in [
            (r#""earliest""#, StartFrom::Earliest),
            (r#""latest""#, StartFrom::Latest),
            (r#"{"seq_num":42}"#, StartFrom::SeqNum(42)),
            (
                r#"{"timestamp":1767225600000}"#,
                StartFrom::Timestamp(1767225600000),
            ),
        ] {
            let c = parse(&format!(r#"{{{BASE},"streams":["a"],"start":{json}}}"#)).unwrap();
            assert_eq!(c.start, expected);
        }
        let c = parse(&format!(r#"{{{BASE},"stream_prefix":"orders-"}}"#)).unwrap();
        assert_eq!(c.start, StartFrom::Earliest);
        assert_eq!(c.poll_wait_secs(), 1);
    }

    #[test]
    fn a_stream_start_overrides_start_for_that_stream_only() {
        let c = parse(&format!(
            r#"{{{BASE},"streams":["a","b"],"start":"latest","stream_starts":{{"b":{{"seq_num":7}}}}}}"#
        ))
        .unwrap();
        assert_eq!(c.starts().of("a"), StartFrom::Latest);
        assert_eq!(c.starts().of("b"), StartFrom::SeqNum(7));
        let c = parse(&format!(
            r#"{{{BASE},"stream_prefix":"orders-","stream_starts":{{"orders-eu":"latest"}}}}"#
        ))
        .unwrap();
        assert_eq!(c.starts().of("orders-eu"), StartFrom::Latest);
        assert_eq!(c.starts().of("orders-us"), StartFrom::Earliest);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (format!(r#"{{{BASE}}}"#), "streams"),
            (
                format!(r#"{{{BASE},"streams":["a"],"stream_prefix":"b"}}"#),
                "not both",
            ),
            (
                format!(r#"{{{BASE},"streams":["a"],"start":"middle"}}"#),
                "middle",
            ),
            (
                format!(r#"{{{BASE},"streams":["a"],"batch_size":0}}"#),
                "batch_size",
            ),
            (
                format!(r#"{{{BASE},"streams":["a"],"batch_size":100001}}"#),
                "batch_size must be between 1 and 100000",
            ),
            (
                format!(r#"{{{BASE},"streams":["a"],"buffer_bytes":67108865}}"#),
                "buffer_bytes must be between 1024 and 67108864",
            ),
            (
                format!(r#"{{{BASE},"streams":["a"],"poll_wait":"500ms"}}"#),
                "poll_wait",
            ),
            (
                format!(r#"{{{BASE},"streams":["a"],"bufer_bytes":1}}"#),
                "bufer_bytes",
            ),
            (
                format!(r#"{{{BASE},"streams":["a"],"stream_starts":{{"b":"latest"}}}}"#),
                "stream_starts: `b` is not one of the streams read",
            ),
            (
                format!(r#"{{{BASE},"stream_prefix":"x-","stream_starts":{{"y-1":"latest"}}}}"#),
                "stream_starts: `y-1`",
            ),
            (
                format!(r#"{{{BASE},"streams":["a"],"stream_starts":{{"a":"middle"}}}}"#),
                "middle",
            ),
        ];
        for (json, expected) in cases {
            let error = parse(&json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
