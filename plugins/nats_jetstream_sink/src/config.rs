//! The sink's settings: the shared NATS connection keys at the top level of
//! `[plugin_config]`, then where and how messages are published.

use iggy_connector_common::RetryPolicy;
use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::metrics::{Metered, MetricsSettings};
use iggy_connector_common::retry::{OUTAGE_DEADLINE, outage_policy};
use iggy_connector_nats_jetstream_common::NatsConnection;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize)]
pub struct SinkConfig {
    #[serde(flatten)]
    pub connection: NatsConnection,
    /// A subject, or a template over `{stream}`, `{topic}`, `{partition}`,
    /// `{header.NAME}` and `{payload.FIELD}` (a top-level JSON field).
    pub subject: String,
    #[serde(default)]
    pub on_unresolved_subject: UnresolvedSubject,
    /// Where to serve Prometheus metrics; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsSettings>,
    /// The JetStream stream expected to capture the subjects.
    pub stream: Option<String>,
    /// Creates `stream` when it does not exist.
    pub create_stream: Option<StreamSettings>,
    /// Publishes awaiting their acknowledgement at once.
    #[serde(default = "default_max_pending_acks")]
    pub max_pending_acks: usize,
    #[serde(default)]
    pub message_id: MessageIdSource,
    /// Adds `Nats-Expected-Stream: <stream>` so a message captured by another stream is refused.
    #[serde(default)]
    pub expected_stream: bool,
    /// Adds `Iggy-Stream`, `Iggy-Topic`, `Iggy-Partition`, `Iggy-Offset`,
    /// `Iggy-Timestamp`, `Iggy-Message-Id` (off by default: six headers per
    /// message cost noticeable publish throughput).
    #[serde(default)]
    pub metadata_headers: bool,
    /// Forwards Iggy headers named `Nats-*`. Off by default: NATS reads
    /// them as JetStream controls (`Nats-Expected-Last-Sequence` makes the
    /// stream refuse the message, `Nats-Msg-Id` overrides deduplication).
    #[serde(default)]
    pub allow_nats_headers: bool,
    /// Transient failures (no responders, timeouts, a lost connection) are
    /// retried until `retry.max_elapsed` (5 minutes by default).
    #[serde(default = "RetryPolicy::outage", deserialize_with = "outage_policy")]
    pub retry: RetryPolicy,
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

const MAX_PENDING_ACKS: usize = 65_536;

fn default_max_pending_acks() -> usize {
    1000
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnresolvedSubject {
    /// The message is left out, counted and logged with its offset; the
    /// rest of the batch is published.
    #[default]
    Skip,
    /// The whole batch fails. A 0.5.x runtime has committed its offsets
    /// already, so the batch is lost; only a runtime that commits after
    /// `consume` tries it again.
    Fail,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageIdSource {
    /// `Nats-Msg-Id: <stream>/<topic>/<partition>/<offset>`: a redelivered
    /// batch is dropped by JetStream's duplicate window.
    #[default]
    Position,
    /// `Nats-Msg-Id: <the Iggy message id>` (hex).
    IggyId,
    /// No `Nats-Msg-Id`: no deduplication.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// Subjects the stream captures; default: the `subject` setting with
    /// every placeholder as a `*` wildcard.
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default = "one")]
    pub replicas: usize,
    /// How long JetStream remembers a `Nats-Msg-Id`; by default as long as
    /// the default retries go on, so a retried batch is never stored twice.
    #[serde(default = "outage_deadline", with = "serde_duration")]
    pub duplicate_window: Duration,
    /// 0 keeps messages forever.
    #[serde(default, with = "serde_duration")]
    pub max_age: Duration,
    /// -1 is unlimited.
    #[serde(default = "unlimited")]
    pub max_bytes: i64,
    #[serde(default = "unlimited")]
    pub max_messages: i64,
    /// Messages kept per subject; -1 is unlimited.
    #[serde(default = "unlimited")]
    pub max_messages_per_subject: i64,
    /// What a full stream does with a new message.
    #[serde(default)]
    pub discard: Discard,
    /// A subject holding `max_messages_per_subject` refuses further messages
    /// instead of dropping its oldest (with 1: one message per subject, ever).
    #[serde(default)]
    pub discard_new_per_subject: bool,
}

impl StreamSettings {
    fn validate(&self) -> Result<(), String> {
        if self.replicas == 0 {
            return Err("create_stream.replicas must be at least 1".into());
        }
        // NATS reads 0 as unlimited too; one spelling keeps the intent clear.
        if self.max_messages_per_subject == 0 || self.max_messages_per_subject < -1 {
            return Err(format!(
                "create_stream.max_messages_per_subject must be -1 (unlimited) or at least 1, not {}",
                self.max_messages_per_subject
            ));
        }
        if self.discard_new_per_subject && self.discard != Discard::New {
            return Err(
                "create_stream.discard_new_per_subject needs create_stream.discard = \"new\""
                    .into(),
            );
        }
        if self.discard_new_per_subject && self.max_messages_per_subject < 1 {
            return Err("create_stream.discard_new_per_subject needs create_stream.max_messages_per_subject of at least 1".into());
        }
        Ok(())
    }
}

fn one() -> usize {
    1
}

fn outage_deadline() -> Duration {
    OUTAGE_DEADLINE
}

fn unlimited() -> i64 {
    -1
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    #[default]
    File,
    Memory,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discard {
    /// The oldest messages make room.
    #[default]
    Old,
    /// The new message is refused.
    New,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    #[default]
    Limits,
    Interest,
    Workqueue,
}

impl SinkConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(key) = self.unknown.keys().next() {
            return Err(format!("unknown setting `{key}`"));
        }
        self.connection.validate()?;
        self.retry.validate()?;
        // Acknowledgements queue in the client's subscription, which holds 65536.
        if !(1..=MAX_PENDING_ACKS).contains(&self.max_pending_acks) {
            return Err(format!(
                "max_pending_acks must be 1 to {MAX_PENDING_ACKS}, not {}",
                self.max_pending_acks
            ));
        }
        if self.create_stream.is_some() && self.stream.is_none() {
            return Err("create_stream needs `stream` (the name to create)".into());
        }
        if self.expected_stream && self.stream.is_none() {
            return Err("expected_stream needs `stream`".into());
        }
        if let Some(stream) = &self.stream
            && (stream.is_empty() || stream.contains(['.', ' ', '*', '>', '\t']))
        {
            return Err(format!(
                "stream: `{stream}` is not a valid JetStream stream name"
            ));
        }
        match &self.create_stream {
            Some(settings) => settings.validate(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> SinkConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn minimal_config_has_safe_defaults() {
        let config =
            parse(serde_json::json!({"servers": ["nats://127.0.0.1:4222"], "subject": "orders"}));
        assert!(config.validate().is_ok());
        assert_eq!(config.message_id, MessageIdSource::Position);
        assert_eq!(config.on_unresolved_subject, UnresolvedSubject::Skip);
        assert_eq!(config.retry, RetryPolicy::outage());
        assert!(!config.allow_nats_headers);
        assert_eq!(config.max_pending_acks, 1000);
        assert!(!config.metadata_headers);
    }

    #[test]
    fn validation_names_the_setting() {
        let base = serde_json::json!({"servers": ["nats://x:1"], "subject": "s"});
        let with = |key: &str, value: serde_json::Value| {
            let mut json = base.clone();
            json[key] = value;
            parse(json).validate().unwrap_err()
        };
        assert!(with("subjetc", "x".into()).contains("unknown setting `subjetc`"));
        assert!(with("max_pending_acks", 0.into()).contains("max_pending_acks"));
        assert!(
            with("max_pending_acks", 65_537.into()).contains("max_pending_acks must be 1 to 65536")
        );
        assert!(
            with("create_stream", serde_json::json!({})).contains("create_stream needs `stream`")
        );
        assert!(with("expected_stream", true.into()).contains("expected_stream needs `stream`"));
        assert!(with("stream", "A.B".into()).contains("stream: `A.B`"));
        assert!(with("retry", serde_json::json!({"multiplier": 0.5})).contains("retry.multiplier"));
    }

    #[test]
    fn per_subject_settings_are_checked_together() {
        let with = |create_stream: serde_json::Value| {
            parse(serde_json::json!({
                "servers": ["nats://x:1"], "subject": "orders.{payload.id}",
                "stream": "ORDERS", "create_stream": create_stream,
            }))
            .validate()
        };
        let defaults = parse(serde_json::json!({
            "servers": ["nats://x:1"], "subject": "s", "stream": "S", "create_stream": {},
        }));
        let settings = defaults.create_stream.unwrap();
        assert_eq!(
            (
                settings.max_messages_per_subject,
                settings.discard,
                settings.discard_new_per_subject
            ),
            (-1, Discard::Old, false)
        );
        let recipe = serde_json::json!({
            "max_messages_per_subject": 1, "discard": "new", "discard_new_per_subject": true,
        });
        assert_eq!(with(recipe), Ok(()));
        let old = with(
            serde_json::json!({"max_messages_per_subject": 1, "discard_new_per_subject": true}),
        );
        assert!(
            old.unwrap_err()
                .contains("discard_new_per_subject needs create_stream.discard = \"new\"")
        );
        let unlimited =
            with(serde_json::json!({"discard": "new", "discard_new_per_subject": true}));
        assert!(
            unlimited
                .unwrap_err()
                .contains("discard_new_per_subject needs create_stream.max_messages_per_subject")
        );
        let zero = with(serde_json::json!({"max_messages_per_subject": 0}));
        assert!(
            zero.unwrap_err()
                .contains("create_stream.max_messages_per_subject must be -1")
        );
        let unknown = serde_json::from_value::<SinkConfig>(serde_json::json!({
            "servers": ["nats://x:1"], "subject": "s", "stream": "S",
            "create_stream": {"discard": "newest"},
        }));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown variant `newest`")
        );
    }
}
