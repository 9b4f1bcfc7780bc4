//! The source's settings (`[plugin_config]`) and their validation.
//!
//! The shared NATS connection keys (`servers`, `connection_name`,
//! `connect_timeout`, `request_timeout`, `max_reconnects`, `[auth]`, `[tls]`)
//! sit at the top level beside the source's own keys, as in the sink. serde
//! cannot combine `flatten` with `deny_unknown_fields`, so every key that is
//! not one of the source's own is handed to `NatsConnection`, which denies
//! unknown fields itself: a misspelt key is refused when the config is parsed,
//! and an error inside the connection settings keeps its path (`auth.token`).

use async_nats::datetime::{DateTime, parse_rfc3339};
use async_nats::jetstream::consumer::DeliverPolicy;
use iggy_connector_common::PayloadSchema;
use iggy_connector_common::admission::InvalidMessages;
use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::metrics::{Metered, MetricsSettings};
use iggy_connector_nats_jetstream_common::NatsConnection;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use std::time::Duration;

#[derive(Debug, Deserialize)]
pub struct SourceConfig {
    #[serde(flatten, deserialize_with = "connection_keys")]
    pub connection: NatsConnection,
    /// The JetStream stream to read.
    pub stream: String,
    /// Durable pull consumers with non-overlapping filters; when empty, the
    /// default consumer reads every subject of the stream.
    #[serde(default)]
    pub consumers: Vec<ConsumerSettings>,
    pub default_consumer: Option<DefaultConsumerSettings>,
    /// Most messages one fetch asks of one consumer.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How long a fetch waits for the first message when there is none.
    #[serde(default = "default_max_wait", with = "serde_duration")]
    pub max_wait: Duration,
    /// Most payload bytes one fetch asks of one consumer, so a batch of
    /// large messages stays bounded in memory.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// How often a source whose stream does not exist yet looks for it.
    #[serde(default = "default_stream_check_interval", with = "serde_duration")]
    pub stream_check_interval: Duration,
    /// How often the default consumer reads the stream's subjects again,
    /// to start a consumer for each subject added since.
    #[serde(default = "default_subject_check_interval", with = "serde_duration")]
    pub subject_check_interval: Duration,
    #[serde(default)]
    pub schema: PayloadSchema,
    /// What becomes of a message the runtime would refuse under `schema`.
    #[serde(default)]
    pub invalid_messages: InvalidMessages,
    /// Where to serve Prometheus metrics; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsSettings>,
    /// Headers added to every message besides the NATS headers.
    #[serde(default = "all_metadata_headers")]
    pub metadata_headers: Vec<MetadataHeader>,
    /// Bounded mode: absent means read forever.
    pub stop: Option<StopSettings>,
}

impl Metered for SourceConfig {
    fn metrics(&self) -> Option<&MetricsSettings> {
        self.metrics.as_ref()
    }
}

/// One explicit durable pull consumer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    pub durable_name: String,
    /// Absent reads every subject of the stream (then it must be the only consumer).
    pub filter_subject: Option<String>,
    #[serde(default)]
    pub deliver_policy: StartPolicy,
    #[serde(default = "default_ack_wait", with = "serde_duration")]
    pub ack_wait: Duration,
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
}

/// The consumers made when no explicit ones are given: one per subject of the stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultConsumerSettings {
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default)]
    pub deliver_policy: StartPolicy,
    #[serde(default = "default_ack_wait", with = "serde_duration")]
    pub ack_wait: Duration,
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
}

impl Default for DefaultConsumerSettings {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
            deliver_policy: StartPolicy::default(),
            ack_wait: default_ack_wait(),
            max_ack_pending: default_max_ack_pending(),
        }
    }
}

/// Where a consumer the source creates starts: `"all"`, `"new"`, `"last"`,
/// `{ by_start_sequence = 42 }` or `{ by_start_time = "2026-01-01T00:00:00Z" }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPolicy {
    #[default]
    All,
    New,
    Last,
    ByStartSequence(u64),
    ByStartTime(#[serde(deserialize_with = "rfc3339")] DateTime),
}

impl StartPolicy {
    pub fn deliver_policy(self) -> DeliverPolicy {
        match self {
            Self::All => DeliverPolicy::All,
            Self::New => DeliverPolicy::New,
            Self::Last => DeliverPolicy::Last,
            Self::ByStartSequence(start_sequence) => {
                DeliverPolicy::ByStartSequence { start_sequence }
            }
            Self::ByStartTime(start_time) => DeliverPolicy::ByStartTime { start_time },
        }
    }
}

/// A header the source adds to every message. Each costs encoding work in
/// the plugin and the runtime (about 1 µs per message here), so it can be
/// left out when the message id and origin timestamp say enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataHeader {
    /// `nats-subject`: the subject the message was published to.
    Subject,
    /// `nats-stream`: the stream name.
    Stream,
    /// `nats-stream-seq` (uint64): the stream sequence.
    StreamSeq,
    /// `nats-timestamp` (uint64): the publish time, µs since the epoch.
    Timestamp,
}

fn all_metadata_headers() -> Vec<MetadataHeader> {
    vec![
        MetadataHeader::Subject,
        MetadataHeader::Stream,
        MetadataHeader::StreamSeq,
        MetadataHeader::Timestamp,
    ]
}

/// Bounded mode: the source stops at the first rule reached.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopSettings {
    /// Produce messages up to and including this stream sequence.
    pub at_sequence: Option<u64>,
    /// Produce messages published up to and including this instant (RFC 3339).
    #[serde(default, deserialize_with = "optional_rfc3339")]
    pub at_time: Option<DateTime>,
    /// Produce this many messages in all, then stop.
    pub after_messages: Option<u64>,
    /// Stop at the stream's last sequence when the source first opened.
    #[serde(default)]
    pub at_last_sequence: bool,
}

fn default_batch_size() -> usize {
    1000
}

fn default_max_wait() -> Duration {
    Duration::from_millis(500)
}

/// 16 MiB: a full default batch of messages up to 16 KiB each, and a small
/// multiple of NATS's default 1 MiB max_payload.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
const MAX_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=1024 * 1024 * 1024;

fn default_max_bytes() -> usize {
    DEFAULT_MAX_BYTES
}

fn default_stream_check_interval() -> Duration {
    Duration::from_secs(1)
}

/// As often as the S2 source lists its streams again (`discovery_interval`).
fn default_subject_check_interval() -> Duration {
    Duration::from_secs(30)
}

// Longer than the runtime's 30 s wait for a batch result, so NATS does not
// redeliver a batch the runtime may still acknowledge.
fn default_ack_wait() -> Duration {
    Duration::from_secs(60)
}

// Room for the batch in flight and the one fetched meanwhile, with margin.
fn default_max_ack_pending() -> i64 {
    20_000
}

fn default_prefix() -> String {
    "iggy".into()
}

fn rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_rfc3339(&text).map_err(|error| {
        de::Error::custom(format!(
            "`{text}` is not an RFC 3339 time such as 2026-01-31T12:00:00Z: {error}"
        ))
    })
}

fn optional_rfc3339<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime>, D::Error> {
    rfc3339(deserializer).map(Some)
}

/// Reads the connection from the keys left over after the source's own.
fn connection_keys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NatsConnection, D::Error> {
    let rest = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
    // Said here, since serde's own message would list only the connection's keys.
    let connection_fields = struct_fields::<NatsConnection>();
    if let Some(key) = rest
        .keys()
        .find(|k| !connection_fields.contains(&k.as_str()))
    {
        return Err(de::Error::custom(format!(
            "field `{key}`: unknown setting (neither a source nor a connection setting)"
        )));
    }
    serde_path_to_error::deserialize(serde_json::Value::Object(rest)).map_err(|error| {
        let path = error.path().to_string();
        let reason = error.into_inner();
        if path == "." {
            de::Error::custom(reason)
        } else {
            de::Error::custom(format!("field `{path}`: {reason}"))
        }
    })
}

/// The field names a derived `Deserialize` struct reads, which serde hands
/// to `deserialize_struct`; this deserializer only records them.
fn struct_fields<T: de::DeserializeOwned>() -> &'static [&'static str] {
    struct FieldNames(Option<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for &mut FieldNames {
        type Error = de::value::Error;

        fn deserialize_any<V: de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only struct field names are read"))
        }

        fn deserialize_struct<V: de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(de::Error::custom("only struct field names are read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut names = FieldNames(None);
    let _ = T::deserialize(&mut names);
    names.0.unwrap_or_default()
}

/// NATS forbids these in stream and consumer names.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c))
}

fn is_valid_filter(filter: &str) -> bool {
    let tokens: Vec<&str> = filter.split('.').collect();
    tokens.iter().enumerate().all(|(i, token)| {
        !token.is_empty()
            && !token.contains(char::is_whitespace)
            && (*token == ">" && i == tokens.len() - 1 || !token.contains('>'))
            && (*token == "*" || !token.contains('*'))
    })
}

fn check_max_ack_pending(field: &str, value: i64) -> Result<(), String> {
    if value == 0 || value < -1 {
        return Err(format!(
            "{field}: must be -1 (unlimited) or at least 1, got {value}"
        ));
    }
    Ok(())
}

fn check_ack_wait(field: &str, value: Duration) -> Result<(), String> {
    if value.is_zero() {
        return Err(format!("{field}: must be greater than zero"));
    }
    Ok(())
}

impl SourceConfig {
    /// Checks what serde cannot; the message names the field. Overlapping
    /// explicit filters are checked when the consumers are planned at open.
    pub fn validate(&self) -> Result<(), String> {
        self.connection.validate()?;
        if !is_valid_name(&self.stream) {
            return Err(format!(
                "stream: `{}` is not a valid JetStream stream name",
                self.stream
            ));
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return Err(format!(
                "batch_size: must be between 1 and 100000, got {}",
                self.batch_size
            ));
        }
        if self.max_wait < Duration::from_millis(1) {
            return Err("max_wait: must be at least 1ms".into());
        }
        if !MAX_BYTES_RANGE.contains(&self.max_bytes) {
            return Err(format!(
                "max_bytes: must be between {} and {}, got {}",
                MAX_BYTES_RANGE.start(),
                MAX_BYTES_RANGE.end(),
                self.max_bytes
            ));
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(600))
            .contains(&self.stream_check_interval)
        {
            return Err("stream_check_interval: must be between 10ms and 10m".into());
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600))
            .contains(&self.subject_check_interval)
        {
            return Err("subject_check_interval: must be between 10ms and 1h".into());
        }
        if !self.consumers.is_empty() && self.default_consumer.is_some() {
            return Err("consumers and default_consumer: give one or the other, not both".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, consumer) in self.consumers.iter().enumerate() {
            let field = format!("consumers[{i}]");
            if !is_valid_name(&consumer.durable_name) {
                return Err(format!(
                    "{field}.durable_name: `{}` is not a valid consumer name (no spaces, `.`, `*`, `>`, `/`)",
                    consumer.durable_name
                ));
            }
            if !names.insert(consumer.durable_name.as_str()) {
                return Err(format!(
                    "{field}.durable_name: `{}` is used by two consumers",
                    consumer.durable_name
                ));
            }
            if let Some(filter) = &consumer.filter_subject
                && !is_valid_filter(filter)
            {
                return Err(format!(
                    "{field}.filter_subject: `{filter}` is not a valid subject filter"
                ));
            }
            check_ack_wait(&format!("{field}.ack_wait"), consumer.ack_wait)?;
            check_max_ack_pending(
                &format!("{field}.max_ack_pending"),
                consumer.max_ack_pending,
            )?;
        }
        if let Some(default) = &self.default_consumer {
            if !is_valid_name(&default.prefix) {
                return Err(format!(
                    "default_consumer.prefix: `{}` is not valid in a consumer name (no spaces, `.`, `*`, `>`, `/`)",
                    default.prefix
                ));
            }
            check_ack_wait("default_consumer.ack_wait", default.ack_wait)?;
            check_max_ack_pending("default_consumer.max_ack_pending", default.max_ack_pending)?;
        }
        if let Some(stop) = &self.stop
            && stop.at_sequence.is_none()
            && stop.at_time.is_none()
            && stop.after_messages.is_none()
            && !stop.at_last_sequence
        {
            return Err(
                "stop: give at least one of at_sequence, at_time, after_messages or at_last_sequence = true"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SourceConfig, String> {
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(json)).map_err(
            |error| {
                let path = error.path().to_string();
                format!("{path}: {}", error.into_inner())
            },
        )
    }

    fn minimal() -> &'static str {
        r#"{"servers":["nats://127.0.0.1:4222"],"stream":"ORDERS"}"#
    }

    #[test]
    fn defaults() {
        let config = parse(minimal()).unwrap();
        assert_eq!(config.stream, "ORDERS");
        assert_eq!(config.batch_size, 1000);
        assert_eq!(config.max_wait, Duration::from_millis(500));
        assert_eq!(config.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(config.invalid_messages, InvalidMessages::Skip);
        assert_eq!(config.stream_check_interval, Duration::from_secs(1));
        assert_eq!(config.subject_check_interval, Duration::from_secs(30));
        assert_eq!(config.schema, PayloadSchema::Raw);
        assert_eq!(config.metadata_headers, all_metadata_headers());
        assert!(config.consumers.is_empty() && config.default_consumer.is_none());
        assert_eq!(config.connection.servers, ["nats://127.0.0.1:4222"]);
        config.validate().unwrap();
    }

    #[test]
    fn consumers_and_policies() {
        let config = parse(
            r#"{"servers":["nats://h:1"],"stream":"S","schema":"json","max_wait":"50ms",
                "metadata_headers":["subject","stream_seq"],
                "consumers":[
                  {"durable_name":"a","filter_subject":"orders.eu.>","deliver_policy":"new","ack_wait":"5s"},
                  {"durable_name":"b","filter_subject":"orders.us.*","deliver_policy":{"by_start_sequence":42}},
                  {"durable_name":"c","filter_subject":"audit","deliver_policy":{"by_start_time":"2026-01-31T12:00:00Z"},"max_ack_pending":-1}
                ],
                "stop":{"at_sequence":10,"at_time":"2026-02-01T00:00:00+01:00"},
                "auth":{"token":"t0k"}}"#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.schema, PayloadSchema::Json);
        assert_eq!(
            config.metadata_headers,
            [MetadataHeader::Subject, MetadataHeader::StreamSeq]
        );
        assert_eq!(config.consumers[0].deliver_policy, StartPolicy::New);
        assert_eq!(config.consumers[0].ack_wait, Duration::from_secs(5));
        assert_eq!(
            config.consumers[1].deliver_policy.deliver_policy(),
            DeliverPolicy::ByStartSequence { start_sequence: 42 }
        );
        let StartPolicy::ByStartTime(time) = config.consumers[2].deliver_policy else {
            panic!("by_start_time expected");
        };
        assert_eq!(time.unix_timestamp(), 1_769_860_800);
        assert_eq!(config.consumers[2].max_ack_pending, -1);
        let stop = config.stop.unwrap();
        assert_eq!(stop.at_sequence, Some(10));
        assert_eq!(stop.at_time.unwrap().unix_timestamp(), 1_769_900_400);
        assert_eq!(config.connection.auth.token.unwrap().expose(), "t0k");
    }

    #[test]
    fn unknown_keys_are_refused_and_named() {
        let error = parse(r#"{"servers":["nats://h:1"],"stream":"S","batch_sise":5}"#).unwrap_err();
        assert!(error.contains("`batch_sise`: unknown setting"), "{error}");
        assert!(struct_fields::<NatsConnection>().contains(&"servers"));
        let error =
            parse(r#"{"servers":["nats://h:1"],"stream":"S","auth":{"pasword":"x"}}"#).unwrap_err();
        assert!(
            error.contains("auth") && error.contains("pasword"),
            "{error}"
        );
        let error = parse(
            r#"{"servers":["nats://h:1"],"stream":"S","consumers":[{"durable_name":"a","filter":"x"}]}"#,
        )
        .unwrap_err();
        assert!(
            error.contains("consumers[0]") && error.contains("filter"),
            "{error}"
        );
        let error =
            parse(r#"{"servers":["nats://h:1"],"stream":"S","stop":{"at_seq":1}}"#).unwrap_err();
        assert!(
            error.contains("stop") && error.contains("at_seq"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let error = parse(r#"{"servers":["nats://h:1"],"stream":"S","connect_timeout":"soon"}"#)
            .unwrap_err();
        assert!(error.contains("connect_timeout"), "{error}");
        let error =
            parse(r#"{"servers":["nats://h:1"],"stream":"S","schema":"avro"}"#).unwrap_err();
        assert!(error.contains("schema"), "{error}");
        let error = parse(
            r#"{"servers":["nats://h:1"],"stream":"S","consumers":[{"durable_name":"a","deliver_policy":{"by_start_time":"yesterday"}}]}"#,
        )
        .unwrap_err();
        assert!(
            error.contains("consumers[0].deliver_policy") && error.contains("RFC 3339"),
            "{error}"
        );
        let error = parse(r#"{"stream":"S"}"#).unwrap_err();
        assert!(error.contains("servers"), "{error}");
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (r#""stream":"OR.DERS""#, "stream:"),
            (r#""stream":"S","batch_size":0"#, "batch_size"),
            (r#""stream":"S","max_wait":0"#, "max_wait"),
            (r#""stream":"S","max_bytes":100"#, "max_bytes"),
            (
                r#""stream":"S","stream_check_interval":"1ms""#,
                "stream_check_interval",
            ),
            (
                r#""stream":"S","subject_check_interval":"2h""#,
                "subject_check_interval: must be between 10ms and 1h",
            ),
            (
                r#""stream":"S","consumers":[{"durable_name":"a.b"}]"#,
                "consumers[0].durable_name",
            ),
            (
                r#""stream":"S","consumers":[{"durable_name":"a"},{"durable_name":"a"}]"#,
                "consumers[1].durable_name",
            ),
            (
                r#""stream":"S","consumers":[{"durable_name":"a","filter_subject":"x.>.y"}]"#,
                "consumers[0].filter_subject",
            ),
            (
                r#""stream":"S","consumers":[{"durable_name":"a","max_ack_pending":0}]"#,
                "consumers[0].max_ack_pending",
            ),
            (
                r#""stream":"S","consumers":[{"durable_name":"a","ack_wait":0}]"#,
                "consumers[0].ack_wait",
            ),
            (
                r#""stream":"S","consumers":[{"durable_name":"a"}],"default_consumer":{}"#,
                "not both",
            ),
            (
                r#""stream":"S","default_consumer":{"prefix":"a b"}"#,
                "default_consumer.prefix",
            ),
            (r#""stream":"S","stop":{}"#, "stop:"),
            (r#""stream":"S","servers":[]"#, "servers"),
        ];
        for (body, expected) in cases {
            let json = if body.contains("\"servers\"") {
                format!("{{{body}}}")
            } else {
                format!(r#"{{"servers":["nats://h:1"],{body}}}"#)
            };
            let error = parse(&json).unwrap().validate().unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn filters() {
        for good in ["a", "a.b", "a.*", "a.*.c", ">", "a.>"] {
            assert!(is_valid_filter(good), "{good}");
        }
        for bad in ["", "a.", ".a", "a..b", "a.>.b", "a b", "a.b*", "a>"] {
            assert!(!is_valid_filter(bad), "{bad}");
        }
    }
}
