//! The source's settings: the shared Pravega connection keys at the top
//! level of `[plugin_config]`, then the reader group, where it starts and
//! how batches are made.

use iggy_connector_common::admission::InvalidMessages;
use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::metrics::{Metered, MetricsSettings};
use iggy_connector_pravega_common::client::{StartAt, StreamCut};
use iggy_connector_pravega_common::{PravegaConnection, check_name};
use iggy_connector_sdk::Schema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Pravega's 255 characters less the suffix that makes each reader group's
/// name unique (`-<milliseconds>-<number>`).
const MAX_READER_GROUP_LEN: usize = 220;

#[derive(Debug, Deserialize)]
pub struct SourceConfig {
    #[serde(flatten)]
    pub connection: PravegaConnection,
    /// Default: `iggy-source-<stream>`. The start of the name of each reader
    /// group, made anew at open, after a Nack and after a failure.
    pub reader_group: Option<String>,
    #[serde(default)]
    pub start: Start,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long a poll waits for events when there are none.
    #[serde(default = "default_poll_wait", with = "serde_duration")]
    pub poll_wait: Duration,
    /// How payloads are declared to the runtime: `raw`, `json` or `text`.
    #[serde(default = "raw")]
    pub schema: Schema,
    /// An event the runtime would refuse (and with it the whole batch):
    /// `skip` it or `wrap` its payload; counted and logged either way.
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

fn default_batch_size() -> usize {
    1000
}

fn default_poll_wait() -> Duration {
    Duration::from_secs(1)
}

fn raw() -> Schema {
    Schema::Raw
}

/// Where reading starts without saved state: `"head"`, `"tail"` or
/// `{ stream_cut = { "<segment number>" = <offset>, ... } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    #[default]
    Head,
    Tail,
    StreamCut(BTreeMap<String, i64>),
}

impl SourceConfig {
    /// Checks what serde cannot; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(key) = self.unknown.keys().next() {
            return Err(format!("unknown setting `{key}`"));
        }
        self.connection.validate()?;
        let group = self.reader_group();
        check_name("reader_group", &group)?;
        if group.len() > MAX_READER_GROUP_LEN {
            return Err(format!(
                "reader_group: `{group}` is longer than {MAX_READER_GROUP_LEN} characters (each reader group's name adds a unique suffix)"
            ));
        }
        self.start_at()?;
        if !(1..=10_000).contains(&self.batch_size) {
            return Err("batch_size must be 1 to 10000".into());
        }
        if self.poll_wait > Duration::from_secs(60) {
            return Err("poll_wait must be at most 60s".into());
        }
        if !matches!(self.schema, Schema::Raw | Schema::Json | Schema::Text) {
            return Err("schema: give raw, json or text".into());
        }
        Ok(())
    }

    pub fn reader_group(&self) -> String {
        self.reader_group
            .clone()
            .unwrap_or_else(|| format!("iggy-source-{}", self.connection.stream))
    }

    pub fn start_at(&self) -> Result<StartAt, String> {
        Ok(match &self.start {
            Start::Head => StartAt::Head,
            Start::Tail => StartAt::Tail,
            Start::StreamCut(positions) => {
                if positions.is_empty() {
                    return Err("start.stream_cut: give at least one segment".into());
                }
                let cut = positions
                    .iter()
                    .map(|(segment, offset)| match (segment.parse::<i64>(), *offset) {
                        (Ok(number), offset) if number >= 0 && offset >= 0 => {
                            Ok((number, offset))
                        }
                        _ => Err(format!(
                            "start.stream_cut: `{segment}` = {offset} is not a segment number and offset (both >= 0)"
                        )),
                    })
                    .collect::<Result<StreamCut, String>>()?;
                StartAt::Cut(cut)
            }
        })
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

    const BASE: &str =
        r#""controller_uri":"tcp://127.0.0.1:9090","scope":"shop","stream":"orders""#;

    #[test]
    fn defaults_and_starts() {
        let c = parse(&format!("{{{BASE}}}")).unwrap();
        assert_eq!(c.reader_group(), "iggy-source-orders");
        assert_eq!(c.start_at(), Ok(StartAt::Head));
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.schema, Schema::Raw);
        assert_eq!(c.invalid_messages, InvalidMessages::Skip);
        let c = parse(&format!(r#"{{{BASE},"invalid_messages":"wrap"}}"#)).unwrap();
        assert_eq!(c.invalid_messages, InvalidMessages::Wrap);
        let c = parse(&format!(
            r#"{{{BASE},"start":{{"stream_cut":{{"0":120,"4294967297":0}}}},"schema":"json","reader_group":"rg.1"}}"#
        ))
        .unwrap();
        assert_eq!(
            c.start_at(),
            Ok(StartAt::Cut([(0, 120), (4_294_967_297, 0)].into()))
        );
        assert_eq!(c.reader_group(), "rg.1");
        let c = parse(&format!(r#"{{{BASE},"start":"tail"}}"#)).unwrap();
        assert_eq!(c.start_at(), Ok(StartAt::Tail));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (format!(r#"{{{BASE},"strat":"head"}}"#), "strat"),
            (format!(r#"{{{BASE},"start":"middle"}}"#), "middle"),
            (
                format!(r#"{{{BASE},"start":{{"stream_cut":{{"x":1}}}}}}"#),
                "start.stream_cut",
            ),
            (
                format!(r#"{{{BASE},"start":{{"stream_cut":{{"0":-1}}}}}}"#),
                "start.stream_cut",
            ),
            (
                format!(r#"{{{BASE},"start":{{"stream_cut":{{}}}}}}"#),
                "start.stream_cut",
            ),
            (
                format!(r#"{{{BASE},"reader_group":"a b"}}"#),
                "reader_group",
            ),
            (
                format!(r#"{{{BASE},"reader_group":"{}"}}"#, "g".repeat(221)),
                "reader_group",
            ),
            (format!(r#"{{{BASE},"batch_size":0}}"#), "batch_size"),
            (format!(r#"{{{BASE},"poll_wait":"2m"}}"#), "poll_wait"),
            (format!(r#"{{{BASE},"schema":"avro"}}"#), "schema"),
            (format!(r#"{{{BASE},"invalid_messages":"drop"}}"#), "drop"),
        ];
        for (json, expected) in cases {
            let error = parse(&json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
