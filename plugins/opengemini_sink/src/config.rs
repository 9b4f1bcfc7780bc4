//! The sink's settings (`[plugin_config]`): where and how points are written,
//! and, under `mapping`, how a message becomes a point.

use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::metrics::{Metered, MetricsSettings};
use iggy_connector_common::retry::outage_policy;
use iggy_connector_common::{RetryPolicy, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// openGemini's (and InfluxDB's) HTTP port.
pub const DEFAULT_PORT: u16 = 8086;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// One endpoint: `http(s)://host[:port][/prefix]` or `host[:port]`.
    pub url: Option<String>,
    /// Several endpoints of one cluster, for load balancing and failover.
    #[serde(default)]
    pub urls: Vec<String>,
    /// An endpoint given as host and port (plain HTTP).
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub endpoint_selection: EndpointSelection,
    pub database: String,
    pub retention_policy: Option<String>,
    /// The unit of the timestamps written (`precision=` of `/write`).
    #[serde(default)]
    pub precision: TimeUnit,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    /// How credentials travel; by default `token` when a token is set, else
    /// `basic` when a username is.
    pub auth_scheme: Option<AuthScheme>,
    #[serde(default = "ten_seconds", with = "serde_duration")]
    pub timeout: Duration,
    #[serde(default = "five_seconds", with = "serde_duration")]
    pub connect_timeout: Duration,
    #[serde(default)]
    pub gzip: bool,
    /// Points per `/write` request.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Requests of one `consume` in flight at once (lanes split by
    /// timestamp, so one point's versions stay in order).
    #[serde(default = "default_write_concurrency")]
    pub write_concurrency: usize,
    /// Transient failures of a write are retried until the server is back
    /// or `max_elapsed` (5 minutes by default) has passed: the runtime has
    /// committed the batch's offsets already, so a batch given up is lost.
    #[serde(default = "RetryPolicy::outage", deserialize_with = "outage_policy")]
    pub retry: RetryPolicy,
    /// `consume` hands its points to a background write and returns once
    /// the previous batch is written; that write's outcome is reported by
    /// the next `consume` (or `close`). Off: `consume` returns after its own
    /// points are written.
    #[serde(default)]
    pub pipelined_writes: bool,
    /// `CREATE DATABASE` at open and when a write answers 404.
    #[serde(default)]
    pub create_database: bool,
    /// Where to serve Prometheus metrics; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsSettings>,
    /// PEM file of CA certificates trusted for `https` endpoints, in
    /// addition to the system's.
    pub tls_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub mapping: MappingConfig,
}

impl Metered for SinkConfig {
    fn metrics(&self) -> Option<&MetricsSettings> {
        self.metrics.as_ref()
    }
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// The openGemini Flink sink's default.
fn default_batch_size() -> usize {
    5000
}

/// Two requests at once: measured ~1.4 times one at a time against InfluxDB
/// 1.6 on two cores (README, Speed); more lanes gain little there.
fn default_write_concurrency() -> usize {
    2
}

const MAX_WRITE_CONCURRENCY: usize = 16;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointSelection {
    /// Each request starts at the next endpoint; a failed attempt moves on.
    #[default]
    RoundRobin,
    /// Requests go to one endpoint until it fails, then to the next.
    Failover,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// `Authorization: Basic` from `username` and `password`.
    Basic,
    /// `u=` and `p=` query parameters (the password is then in the URL).
    Query,
    /// `Authorization: Token <token>` (openGemini: `user:password`).
    Token,
    /// `Authorization: Bearer <token>` (openGemini: a JWT).
    Bearer,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TimeUnit {
    #[default]
    #[serde(rename = "ns")]
    Nanoseconds,
    #[serde(rename = "us", alias = "u", alias = "µs")]
    Microseconds,
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "s")]
    Seconds,
}

impl TimeUnit {
    pub fn nanos(self) -> i128 {
        match self {
            TimeUnit::Nanoseconds => 1,
            TimeUnit::Microseconds => 1_000,
            TimeUnit::Milliseconds => 1_000_000,
            TimeUnit::Seconds => 1_000_000_000,
        }
    }

    /// The `precision=` value. InfluxDB 1.x reads an unknown value as
    /// nanoseconds without a word, and knows microseconds only as `u`.
    pub fn query_value(self) -> &'static str {
        match self {
            TimeUnit::Nanoseconds => "ns",
            TimeUnit::Microseconds => "u",
            TimeUnit::Milliseconds => "ms",
            TimeUnit::Seconds => "s",
        }
    }
}

/// How a message becomes a point. Field paths are dotted (`a.b` is field
/// `b` of object `a`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// A fixed measurement; the fallback when `measurement_field` is absent.
    /// Without either, the Iggy topic name.
    pub measurement: Option<String>,
    pub measurement_field: Option<String>,
    /// Where the point's time is; without it, the Iggy message timestamp.
    pub timestamp_field: Option<String>,
    /// The unit of a numeric `timestamp_field`.
    pub timestamp_unit: TimeUnit,
    /// Payload fields written as tags (the tag key is the path).
    pub tags: Vec<String>,
    /// Iggy headers written as tags (the tag key is the header name).
    pub header_tags: Vec<String>,
    /// `stream`, `topic`, `partition`, as tags `iggy_stream`, `iggy_topic`, `iggy_partition`.
    pub metadata_tags: Vec<MetadataTag>,
    /// Payload fields written as fields; empty: every field not used above.
    pub fields: Vec<String>,
    /// Joins the keys of nested objects into one field key.
    pub flatten_separator: String,
    /// With the Iggy timestamp and precision `ns`: adds `offset % 1000` ns,
    /// so the messages of a batch (Iggy stamps a batch with one time) stay
    /// distinct points. Deterministic: a replay still overwrites.
    pub offset_nanos: bool,
    pub arrays: ArrayRule,
    pub numbers: NumberRule,
    pub large_unsigned: LargeUnsignedRule,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            measurement: None,
            measurement_field: None,
            timestamp_field: None,
            timestamp_unit: TimeUnit::Milliseconds,
            tags: Vec::new(),
            header_tags: Vec::new(),
            metadata_tags: Vec::new(),
            fields: Vec::new(),
            flatten_separator: "_".into(),
            offset_nanos: true,
            arrays: ArrayRule::default(),
            numbers: NumberRule::default(),
            large_unsigned: LargeUnsignedRule::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataTag {
    Stream,
    Topic,
    Partition,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrayRule {
    /// A string field holding the array as compact JSON.
    #[default]
    Json,
    /// Left out.
    Skip,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberRule {
    /// JSON integers as integer fields (`1i`), others as floats.
    #[default]
    Typed,
    /// Every number as a float, so producers mixing `1` and `1.5` in one
    /// field do not cause type conflicts.
    Float,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LargeUnsignedRule {
    /// The record is refused: openGemini has no unsigned type, and a float
    /// where other points have integers is a type conflict.
    #[default]
    Reject,
    /// Written as a float (exact up to 2^53).
    Float,
}

impl SinkConfig {
    /// Checks what serde cannot; messages name the setting.
    pub fn validate(&self) -> Result<(), String> {
        let given = usize::from(self.url.is_some())
            + usize::from(!self.urls.is_empty())
            + usize::from(self.host.is_some());
        if given != 1 {
            return Err("set exactly one of `url`, `urls` or `host`".into());
        }
        if self.port.is_some() && self.host.is_none() {
            return Err("`port` goes with `host`; put the port into `url` instead".into());
        }
        if self.database.is_empty() {
            return Err("database must not be empty".into());
        }
        if self.retention_policy.as_deref() == Some("") {
            return Err("retention_policy must not be empty when set".into());
        }
        if self.batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }
        if !(1..=MAX_WRITE_CONCURRENCY).contains(&self.write_concurrency) {
            return Err(format!(
                "write_concurrency must be between 1 and {MAX_WRITE_CONCURRENCY}"
            ));
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err("timeout and connect_timeout must be greater than zero".into());
        }
        self.retry.validate()?;
        self.auth()?;
        Ok(())
    }

    /// The endpoints as written (not yet parsed as URLs).
    pub fn endpoint_texts(&self) -> Vec<String> {
        match (&self.url, &self.host) {
            (Some(url), _) => vec![url.clone()],
            (None, Some(host)) => vec![format!(
                "http://{host}:{}",
                self.port.unwrap_or(DEFAULT_PORT)
            )],
            (None, None) => self.urls.clone(),
        }
    }

    /// The effective credentials, or why they do not fit together.
    pub fn auth(&self) -> Result<Credentials<'_>, String> {
        let scheme = match (self.auth_scheme, &self.token, &self.username) {
            (Some(scheme), _, _) => scheme,
            (None, Some(_), Some(_)) => {
                return Err("set either token or username and password, not both".into());
            }
            (None, Some(_), _) => AuthScheme::Token,
            (None, None, Some(_)) => AuthScheme::Basic,
            (None, None, None) => {
                if self.password.is_some() {
                    return Err("password needs username".into());
                }
                return Ok(Credentials::None);
            }
        };
        match scheme {
            AuthScheme::Basic | AuthScheme::Query => {
                if self.token.is_some() {
                    return Err(format!(
                        "auth_scheme `{}` uses username and password, not token",
                        scheme.name()
                    ));
                }
                let (Some(user), Some(password)) = (&self.username, &self.password) else {
                    return Err(format!(
                        "auth_scheme `{}` needs username and password",
                        scheme.name()
                    ));
                };
                Ok(Credentials::Password {
                    user,
                    password,
                    in_query: scheme == AuthScheme::Query,
                })
            }
            AuthScheme::Token | AuthScheme::Bearer => {
                if self.username.is_some() || self.password.is_some() {
                    return Err(format!(
                        "auth_scheme `{}` uses token, not username and password",
                        scheme.name()
                    ));
                }
                let Some(token) = self.token.as_ref().filter(|t| !t.is_empty()) else {
                    return Err(format!("auth_scheme `{}` needs token", scheme.name()));
                };
                Ok(Credentials::Header {
                    scheme: if scheme == AuthScheme::Token {
                        "Token"
                    } else {
                        "Bearer"
                    },
                    token,
                })
            }
        }
    }

    /// Every secret of the config, for scrubbing text a server sends back.
    pub fn secrets(&self) -> Vec<Secret> {
        self.password
            .iter()
            .chain(self.token.iter())
            .cloned()
            .collect()
    }
}

impl AuthScheme {
    fn name(self) -> &'static str {
        match self {
            AuthScheme::Basic => "basic",
            AuthScheme::Query => "query",
            AuthScheme::Token => "token",
            AuthScheme::Bearer => "bearer",
        }
    }
}

pub enum Credentials<'a> {
    None,
    Password {
        user: &'a str,
        password: &'a Secret,
        in_query: bool,
    },
    Header {
        scheme: &'static str,
        token: &'a Secret,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<SinkConfig, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn base() -> serde_json::Value {
        serde_json::json!({"url": "http://127.0.0.1:8086", "database": "metrics"})
    }

    fn invalid(change: serde_json::Value) -> String {
        let mut json = base();
        for (key, value) in change.as_object().unwrap() {
            if value.is_null() {
                json.as_object_mut().unwrap().remove(key);
            } else {
                json[key] = value.clone();
            }
        }
        match parse(json) {
            Ok(config) => config.validate().unwrap_err(),
            Err(error) => error,
        }
    }

    #[test]
    fn minimal_config_has_the_documented_defaults() {
        let config = parse(base()).unwrap();
        config.validate().unwrap();
        assert_eq!(config.batch_size, 5000);
        assert_eq!(config.write_concurrency, 2);
        assert_eq!(config.precision, TimeUnit::Nanoseconds);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.connect_timeout, Duration::from_secs(5));
        assert_eq!(config.endpoint_selection, EndpointSelection::RoundRobin);
        assert!(!config.gzip && !config.create_database && !config.pipelined_writes);
        assert!(matches!(config.auth(), Ok(Credentials::None)));
        assert_eq!(config.mapping.flatten_separator, "_");
        assert_eq!(config.mapping.timestamp_unit, TimeUnit::Milliseconds);
        assert_eq!(config.mapping.large_unsigned, LargeUnsignedRule::Reject);
        assert_eq!(config.endpoint_texts(), ["http://127.0.0.1:8086"]);
        assert_eq!(config.retry, RetryPolicy::outage());
        assert_eq!(config.retry.max_elapsed, Some(Duration::from_secs(300)));
    }

    #[test]
    fn a_partial_retry_table_keeps_the_outage_defaults() {
        let mut json = base();
        json["retry"] = serde_json::json!({"max_delay": "2s"});
        let retry = parse(json).unwrap().retry;
        assert_eq!(retry.max_delay, Duration::from_secs(2));
        assert_eq!(retry.max_attempts, u32::MAX);
        assert_eq!(retry.max_elapsed, Some(Duration::from_secs(300)));
    }

    #[test]
    fn host_and_port_make_an_endpoint() {
        let config = parse(serde_json::json!({"host": "db1", "database": "d"})).unwrap();
        config.validate().unwrap();
        assert_eq!(config.endpoint_texts(), ["http://db1:8086"]);
        let config =
            parse(serde_json::json!({"host": "db1", "port": 9086, "database": "d"})).unwrap();
        assert_eq!(config.endpoint_texts(), ["http://db1:9086"]);
    }

    #[test]
    fn precision_accepts_influx_spellings_and_sends_u_for_microseconds() {
        for (text, unit) in [
            ("ns", TimeUnit::Nanoseconds),
            ("us", TimeUnit::Microseconds),
            ("u", TimeUnit::Microseconds),
            ("ms", TimeUnit::Milliseconds),
            ("s", TimeUnit::Seconds),
        ] {
            let mut json = base();
            json["precision"] = text.into();
            assert_eq!(parse(json).unwrap().precision, unit, "{text}");
        }
        assert_eq!(TimeUnit::Microseconds.query_value(), "u");
        assert!(invalid(serde_json::json!({"precision": "h"})).contains("unknown variant"));
    }

    #[test]
    fn credentials_pick_their_scheme() {
        let mut json = base();
        json["username"] = "writer".into();
        json["password"] = "pw".into();
        let config = parse(json.clone()).unwrap();
        assert!(matches!(
            config.auth(),
            Ok(Credentials::Password {
                in_query: false,
                ..
            })
        ));
        json["auth_scheme"] = "query".into();
        assert!(matches!(
            parse(json).unwrap().auth(),
            Ok(Credentials::Password { in_query: true, .. })
        ));
        let mut json = base();
        json["token"] = "t0k".into();
        assert!(matches!(
            parse(json.clone()).unwrap().auth(),
            Ok(Credentials::Header {
                scheme: "Token",
                ..
            })
        ));
        json["auth_scheme"] = "bearer".into();
        assert!(matches!(
            parse(json).unwrap().auth(),
            Ok(Credentials::Header {
                scheme: "Bearer",
                ..
            })
        ));
    }

    #[test]
    fn validation_names_the_setting() {
        let cases = [
            (
                serde_json::json!({"urls": ["http://a:1"]}),
                "exactly one of",
            ),
            (serde_json::json!({"url": null}), "exactly one of"),
            (serde_json::json!({"port": 1}), "`port` goes with `host`"),
            (serde_json::json!({"database": ""}), "database"),
            (
                serde_json::json!({"retention_policy": ""}),
                "retention_policy",
            ),
            (serde_json::json!({"batch_size": 0}), "batch_size"),
            (
                serde_json::json!({"write_concurrency": 0}),
                "write_concurrency",
            ),
            (
                serde_json::json!({"write_concurrency": 17}),
                "write_concurrency",
            ),
            (serde_json::json!({"timeout": 0}), "timeout"),
            (
                serde_json::json!({"password": "x"}),
                "password needs username",
            ),
            (
                serde_json::json!({"username": "u"}),
                "`basic` needs username and password",
            ),
            (
                serde_json::json!({"username": "u", "password": "p", "token": "t"}),
                "not both",
            ),
            (
                serde_json::json!({"username": "u", "password": "p", "token": "t", "auth_scheme": "basic"}),
                "not token",
            ),
            (
                serde_json::json!({"auth_scheme": "bearer", "token": ""}),
                "needs token",
            ),
            (
                serde_json::json!({"retry": {"max_attempts": 0}}),
                "retry.max_attempts",
            ),
            (
                serde_json::json!({"databse": "x"}),
                "unknown field `databse`",
            ),
            (
                serde_json::json!({"mapping": {"tag": ["a"]}}),
                "unknown field `tag`",
            ),
        ];
        for (change, expected) in cases {
            let error = invalid(change.clone());
            assert!(error.contains(expected), "{change}: {error}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let mut json = base();
        json["username"] = "writer".into();
        json["password"] = "hunter2-secret".into();
        let config = parse(json).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2-secret"), "{printed}");
        assert_eq!(config.secrets().len(), 1);
    }
}
