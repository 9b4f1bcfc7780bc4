//! What an operator writes under `[plugin_config]`, as serde reads it: our
//! own keys, plus the flat keys of the proposed Iggy Flink source (see
//! `proposal.rs`), which are folded into ours before anything is checked.
//! A value that can take several forms is kept as JSON here, so the checks
//! in `settings.rs` can say which forms exist instead of serde's
//! "did not match any variant".

use iggy_connector_common::duration::{serde_duration, serde_opt_duration};
use iggy_connector_common::metrics::{Metered, MetricsSettings};
use iggy_connector_common::{RetryPolicy, Secret};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlinkSourceConfig {
    /// Flink's REST API (the JobManager, port 8081).
    #[serde(default)]
    pub flink_cluster_url: Option<String>,
    /// The SQL Gateway's REST endpoint (port 8083); records mode only.
    #[serde(default)]
    pub sql_gateway_url: Option<String>,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    /// Default 200 in records mode, 1000 in monitor mode (each scan costs
    /// the JobManager a few requests per job).
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// Records mode: ceiling of the backoff while the query has nothing new.
    #[serde(default = "defaults::max_poll_interval_ms")]
    pub max_poll_interval_ms: u64,
    #[serde(default, with = "serde_opt_duration")]
    pub request_timeout: Option<Duration>,
    #[serde(default, with = "serde_opt_duration")]
    pub connect_timeout: Option<Duration>,
    #[serde(default = "defaults::metrics_log_interval", with = "serde_duration")]
    pub metrics_log_interval: Duration,
    /// Where to serve Prometheus metrics; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsSettings>,
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    #[serde(default)]
    pub auth: Option<AuthTable>,
    #[serde(default)]
    pub tls: TlsTable,
    #[serde(default)]
    pub records: Option<RecordsConfig>,
    #[serde(default)]
    pub monitor: Option<MonitorConfig>,
    // The proposed connector's top-level keys that are not ours; each is
    // mapped onto ours or refused in favour of one (`proposal.rs`).
    #[serde(default)]
    pub connection_timeout_secs: Option<u64>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub source_type: Option<Value>,
    #[serde(default)]
    pub source_identifier: Option<String>,
    #[serde(default)]
    pub source_pattern: Option<String>,
    #[serde(default)]
    pub start_position: Option<Value>,
    #[serde(default)]
    pub initial_offset: Option<Value>,
    #[serde(default)]
    pub skip_errors: Option<bool>,
    #[serde(default)]
    pub properties: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub enable_checkpointing: Option<bool>,
    #[serde(default)]
    pub checkpoint_interval_secs: Option<u64>,
    #[serde(default)]
    pub restore_from_checkpoint: Option<String>,
    #[serde(default)]
    pub parallelism: Option<u32>,
    #[serde(default)]
    pub output_schema: Option<Value>,
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub schema_registry: Option<Value>,
    #[serde(default)]
    pub enable_background_fetch: Option<bool>,
    #[serde(default)]
    pub watermark_strategy: Option<Value>,
    #[serde(default)]
    pub job_name_pattern: Option<Value>,
    #[serde(default)]
    pub job_id: Option<Value>,
}

impl Metered for FlinkSourceConfig {
    fn metrics(&self) -> Option<&MetricsSettings> {
        self.metrics.as_ref()
    }
}

/// `auth_type` with the fields it needs; checked in `settings.rs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthTable {
    /// `bearer`, `basic`, or `none`; the proposal's `sasl_plain`,
    /// `sasl_scram` and `certificate` are refused.
    pub auth_type: String,
    pub token: Option<Secret>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The proposal's; refused (SASL is a Kafka table option).
    pub sasl_mechanism: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsTable {
    /// PEM CA certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and key, for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// The proposal's names for the three above.
    pub ca_path: Option<PathBuf>,
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
    /// The proposal's switch; TLS follows the URLs' scheme here.
    pub enabled: Option<bool>,
    /// The proposal's; host names are always verified.
    pub verify_hostname: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// The streaming query; or leave it out and describe the source below.
    pub sql: Option<String>,
    /// Run before `sql` (CREATE TABLE, SET, USE ...).
    #[serde(default)]
    pub setup_statements: Vec<String>,
    /// Skip rows that cannot become messages (and, for json/csv tables,
    /// records the format cannot decode) instead of failing.
    pub skip_errors: Option<bool>,
    /// A connector name, or `{ custom = "<connector>" }`.
    pub source_type: Option<Value>,
    pub source_identifier: Option<String>,
    /// Kafka: a regex over topic names, instead of `source_identifier`.
    pub source_pattern: Option<String>,
    /// For a custom connector: the table option that takes `source_identifier`.
    pub identifier_option: Option<String>,
    #[serde(default = "defaults::table_name")]
    pub table_name: String,
    /// Column definitions of the built table, e.g. `"order_id BIGINT"`.
    #[serde(default)]
    pub columns: Vec<String>,
    pub initial_offset: Option<Value>,
    /// Table options (`WITH (...)`) of the built table; they win over the ones derived above.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub header_columns: HeaderColumns,
    /// A column whose time becomes each message's `origin_timestamp`.
    pub timestamp_column: Option<String>,
    #[serde(default)]
    pub session_properties: BTreeMap<String, String>,
    #[serde(default = "defaults::job_name")]
    pub job_name: String,
    /// Rows of a streaming query become readable only when a checkpoint completes.
    #[serde(default, with = "serde_opt_duration")]
    pub checkpoint_interval: Option<Duration>,
    #[serde(default = "defaults::enabled")]
    pub savepoint_on_close: bool,
    pub savepoint_dir: Option<String>,
    #[serde(default = "defaults::savepoint_timeout", with = "serde_duration")]
    pub savepoint_timeout: Duration,
    /// How long Flink may take to plan and submit the query's job.
    #[serde(default = "defaults::statement_timeout", with = "serde_duration")]
    pub statement_timeout: Duration,
    /// Savepoint or retained checkpoint path the first query starts from.
    pub restore_from_checkpoint: Option<String>,
    #[serde(default = "defaults::heartbeat_interval", with = "serde_duration")]
    pub heartbeat_interval: Duration,
}

impl Default for RecordsConfig {
    /// The section as if written empty: the serde defaults are the only ones.
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every records field has a default")
    }
}

/// Columns whose values become the `source`, `partition` and `offset` headers
/// (and leave the payload).
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderColumns {
    pub source: Option<String>,
    pub partition: Option<String>,
    pub offset: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    #[serde(default)]
    pub job_ids: Vec<String>,
    pub job_name_pattern: Option<String>,
    /// Matched against the names of a job's source vertices.
    pub source_name_pattern: Option<String>,
    /// One metrics sample per job per interval; `0` turns samples off.
    #[serde(default = "defaults::metrics_interval", with = "serde_duration")]
    pub metrics_interval: Duration,
    #[serde(default = "defaults::max_exceptions")]
    pub max_exceptions: u32,
    #[serde(default = "defaults::max_jobs")]
    pub max_jobs: usize,
}

pub mod defaults {
    use std::time::Duration;

    pub fn batch_size() -> usize {
        1000
    }
    pub const RECORDS_POLL_INTERVAL_MS: u64 = 200;
    pub const MONITOR_POLL_INTERVAL_MS: u64 = 1000;
    pub fn max_poll_interval_ms() -> u64 {
        1000
    }
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
    pub fn metrics_log_interval() -> Duration {
        Duration::from_secs(60)
    }
    pub fn table_name() -> String {
        "iggy_flink_source".into()
    }
    pub fn job_name() -> String {
        "iggy-flink-source".into()
    }
    pub fn enabled() -> bool {
        true
    }
    pub fn savepoint_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn statement_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn heartbeat_interval() -> Duration {
        Duration::from_secs(30)
    }
    pub fn metrics_interval() -> Duration {
        Duration::from_secs(10)
    }
    pub fn max_exceptions() -> u32 {
        10
    }
    pub fn max_jobs() -> usize {
        100
    }
}
