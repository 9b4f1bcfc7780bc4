//! What an operator writes under `[plugin_config]`, with its defaults, and
//! the checks serde cannot make. `Settings::from_config` turns it into the
//! checked form the rest of the plugin uses; its errors name the field.

use iggy_connector_shared::duration::serde_duration;
use iggy_connector_shared::{RetryPolicy, Secret};
use regex::Regex;
use reqwest::Url;
use serde::Deserialize;
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
    #[serde(default = "defaults::request_timeout", with = "serde_duration")]
    pub request_timeout: Duration,
    #[serde(default = "defaults::connect_timeout", with = "serde_duration")]
    pub connect_timeout: Duration,
    #[serde(default = "defaults::metrics_log_interval", with = "serde_duration")]
    pub metrics_log_interval: Duration,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub records: Option<RecordsConfig>,
    #[serde(default)]
    pub monitor: Option<MonitorConfig>,
}

/// Sent on every request, for proxies in front of Flink (Flink itself has no auth).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "auth_type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    Bearer { token: Secret },
    Basic { username: String, password: Secret },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and key, for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
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
    #[serde(default)]
    pub skip_errors: bool,
    pub source_type: Option<String>,
    pub source_identifier: Option<String>,
    /// For a custom connector: the table option that takes `source_identifier`.
    pub identifier_option: Option<String>,
    #[serde(default = "defaults::table_name")]
    pub table_name: String,
    /// Column definitions of the built table, e.g. `"order_id BIGINT"`.
    #[serde(default)]
    pub columns: Vec<String>,
    pub initial_offset: Option<InitialOffset>,
    /// Table options (`WITH (...)`) of the built table; they win over the ones derived above.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub header_columns: HeaderColumns,
    #[serde(default)]
    pub session_properties: BTreeMap<String, String>,
    #[serde(default = "defaults::job_name")]
    pub job_name: String,
    /// Rows of a streaming query become readable only when a checkpoint completes.
    #[serde(default = "defaults::checkpoint_interval", with = "serde_duration")]
    pub checkpoint_interval: Duration,
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

/// Columns whose values become the `source`, `partition` and `offset` headers
/// (and leave the payload).
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderColumns {
    pub source: Option<String>,
    pub partition: Option<String>,
    pub offset: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum InitialOffset {
    Earliest,
    Latest,
    /// The consumer group's committed offsets (Kafka only).
    Committed,
    TimestampMs(i64),
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

mod defaults {
    use std::time::Duration;

    pub fn batch_size() -> usize {
        1000
    }
    pub const RECORDS_POLL_INTERVAL_MS: u64 = 200;
    pub const MONITOR_POLL_INTERVAL_MS: u64 = 1000;
    pub fn max_poll_interval_ms() -> u64 {
        1000
    }
    pub fn request_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn connect_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn metrics_log_interval() -> Duration {
        Duration::from_secs(60)
    }
    pub fn table_name() -> String {
        "iggy_flink_source".into()
    }
    pub fn job_name() -> String {
        "iggy-flink-source".into()
    }
    pub fn checkpoint_interval() -> Duration {
        Duration::from_secs(1)
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

/// The connector systems the plugin knows the table options of.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    Kafka,
    Kinesis,
    Filesystem,
    Datagen,
    /// Any other Flink table connector, by its `connector` name.
    Custom(String),
}

impl SourceKind {
    fn parse(name: &str) -> Self {
        match name.trim().to_ascii_lowercase().as_str() {
            "kafka" => Self::Kafka,
            "kinesis" => Self::Kinesis,
            "filesystem" | "file_system" => Self::Filesystem,
            "datagen" => Self::Datagen,
            _ => Self::Custom(name.trim().to_string()),
        }
    }

    pub fn connector(&self) -> &str {
        match self {
            Self::Kafka => "kafka",
            Self::Kinesis => "kinesis",
            Self::Filesystem => "filesystem",
            Self::Datagen => "datagen",
            Self::Custom(name) => name,
        }
    }
}

/// A table built from `source_type` and friends.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub kind: SourceKind,
    pub identifier: Option<String>,
    pub identifier_option: Option<String>,
    pub table_name: String,
    pub columns: Vec<String>,
    pub initial_offset: Option<InitialOffset>,
    pub properties: BTreeMap<String, String>,
    pub skip_errors: bool,
}

#[derive(Debug, Clone)]
pub enum QuerySpec {
    Sql { setup: Vec<String>, select: String },
    Table(TableSpec),
}

#[derive(Debug, Clone)]
pub struct RecordsSettings {
    pub gateway_url: Url,
    pub skip_errors: bool,
    pub query: QuerySpec,
    pub header_columns: HeaderColumns,
    pub session_properties: BTreeMap<String, String>,
    pub job_name: String,
    pub checkpoint_interval: Duration,
    pub savepoint_on_close: bool,
    pub savepoint_dir: Option<String>,
    pub savepoint_timeout: Duration,
    pub statement_timeout: Duration,
    pub restore_from_checkpoint: Option<String>,
    pub heartbeat_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct MonitorSettings {
    pub job_ids: Vec<String>,
    pub job_name_pattern: Option<Regex>,
    pub source_name_pattern: Option<Regex>,
    pub metrics_interval: Option<Duration>,
    pub max_exceptions: u32,
    pub max_jobs: usize,
}

#[derive(Debug, Clone)]
pub enum Mode {
    Records(Box<RecordsSettings>),
    Monitor(MonitorSettings),
}

/// How the plugin talks HTTP, shared by both modes.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub auth: Option<AuthConfig>,
    pub ca_file: Option<PathBuf>,
    pub client_identity: Option<(PathBuf, PathBuf)>,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub rest_url: Option<Url>,
    pub http: HttpSettings,
    pub batch_size: usize,
    pub poll_interval: Duration,
    pub max_poll_interval: Duration,
    pub metrics_log_interval: Duration,
    pub mode: Mode,
}

impl Settings {
    pub fn from_config(config: FlinkSourceConfig) -> Result<Self, String> {
        let rest_url = config
            .flink_cluster_url
            .as_deref()
            .map(|url| parse_url("flink_cluster_url", url))
            .transpose()?;
        if !(1..=100_000).contains(&config.batch_size) {
            return Err(format!(
                "batch_size must be between 1 and 100000 (got {})",
                config.batch_size
            ));
        }
        let poll_interval_ms = config.poll_interval_ms.unwrap_or(match config.monitor {
            Some(_) => defaults::MONITOR_POLL_INTERVAL_MS,
            None => defaults::RECORDS_POLL_INTERVAL_MS,
        });
        if !(10..=3_600_000).contains(&poll_interval_ms) {
            return Err(format!(
                "poll_interval_ms must be between 10 and 3600000 (got {poll_interval_ms})"
            ));
        }
        let max_poll_interval_ms = config.max_poll_interval_ms.max(poll_interval_ms);
        positive("request_timeout", config.request_timeout)?;
        positive("connect_timeout", config.connect_timeout)?;
        positive("metrics_log_interval", config.metrics_log_interval)?;
        config.retry.validate()?;
        if let Some(AuthConfig::Basic { username, .. }) = &config.auth
            && (username.is_empty() || username.contains(':'))
        {
            return Err("auth.username must be non-empty and must not contain ':'".into());
        }
        if let Some(AuthConfig::Bearer { token }) = &config.auth
            && token.is_empty()
        {
            return Err("auth.token must not be empty".into());
        }
        let client_identity = match (config.tls.client_cert_file, config.tls.client_key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(
                    "tls.client_cert_file and tls.client_key_file must be set together".into(),
                );
            }
        };
        let mode = match (config.records, config.monitor) {
            (Some(records), None) => Mode::Records(Box::new(records_settings(
                records,
                config.sql_gateway_url.as_deref(),
            )?)),
            (None, Some(monitor)) => {
                if rest_url.is_none() {
                    return Err("flink_cluster_url is required by [plugin_config.monitor]".into());
                }
                if config.sql_gateway_url.is_some() {
                    return Err(
                        "sql_gateway_url is only used by [plugin_config.records]; remove it".into(),
                    );
                }
                Mode::Monitor(monitor_settings(monitor)?)
            }
            _ => {
                return Err(
                    "set exactly one of [plugin_config.records] (read a query's rows through the SQL Gateway) or [plugin_config.monitor] (job events from the REST API)"
                        .into(),
                );
            }
        };
        if let Mode::Records(records) = &mode
            && records.savepoint_on_close
            && rest_url.is_none()
        {
            return Err(
                "records.savepoint_on_close needs flink_cluster_url (the savepoint is taken through the REST API); set it or set savepoint_on_close = false"
                    .into(),
            );
        }
        Ok(Self {
            rest_url,
            http: HttpSettings {
                request_timeout: config.request_timeout,
                connect_timeout: config.connect_timeout,
                auth: config.auth,
                ca_file: config.tls.ca_file,
                client_identity,
                retry: config.retry,
            },
            batch_size: config.batch_size,
            poll_interval: Duration::from_millis(poll_interval_ms),
            max_poll_interval: Duration::from_millis(max_poll_interval_ms),
            metrics_log_interval: config.metrics_log_interval,
            mode,
        })
    }

    /// The settings of endpoints that `[plugin_config.auth]` would reach
    /// in clear text (`http://`), for a warning at open.
    pub fn clear_text_auth_endpoints(&self) -> Vec<&'static str> {
        if self.http.auth.is_none() {
            return Vec::new();
        }
        let gateway = match &self.mode {
            Mode::Records(records) => Some(("sql_gateway_url", &records.gateway_url)),
            Mode::Monitor(_) => None,
        };
        self.rest_url
            .iter()
            .map(|url| ("flink_cluster_url", url))
            .chain(gateway)
            .filter(|(_, url)| url.scheme() == "http")
            .map(|(field, _)| field)
            .collect()
    }

    /// Whether any configured endpoint needs TLS.
    pub fn uses_https(&self) -> bool {
        let gateway = match &self.mode {
            Mode::Records(records) => Some(&records.gateway_url),
            Mode::Monitor(_) => None,
        };
        self.rest_url
            .iter()
            .chain(gateway)
            .any(|url| url.scheme() == "https")
    }
}

fn positive(field: &str, value: Duration) -> Result<(), String> {
    if value.is_zero() {
        return Err(format!("{field} must be greater than zero"));
    }
    Ok(())
}

fn parse_url(field: &str, text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{field} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{field} must be an http:// or https:// URL (got scheme {})",
            url.scheme()
        ));
    }
    // A URL is logged; credentials in it would be too.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{field} must not carry credentials; put them in [plugin_config.auth]"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{field} must not have a query or fragment"));
    }
    Ok(url)
}

fn records_settings(
    records: RecordsConfig,
    gateway_url: Option<&str>,
) -> Result<RecordsSettings, String> {
    let gateway_url = parse_url(
        "sql_gateway_url",
        gateway_url.ok_or("sql_gateway_url is required by [plugin_config.records]")?,
    )?;
    let query = match (records.sql, records.source_type) {
        (Some(_), Some(_)) => {
            return Err(
                "records.sql and records.source_type exclude each other: give the query or describe the source"
                    .into(),
            );
        }
        (None, None) => {
            return Err("records needs either `sql` (a streaming query) or `source_type`".into());
        }
        (Some(sql), None) => {
            let built_only = [
                ("source_identifier", records.source_identifier.is_some()),
                ("identifier_option", records.identifier_option.is_some()),
                ("columns", !records.columns.is_empty()),
                ("initial_offset", records.initial_offset.is_some()),
                ("properties", !records.properties.is_empty()),
            ];
            if let Some((field, _)) = built_only.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "records.{field} only applies with records.source_type; with records.sql put it in the query or records.setup_statements"
                ));
            }
            let select = sql.trim().trim_end_matches(';').trim().to_string();
            if select.is_empty() {
                return Err("records.sql must not be empty".into());
            }
            if records
                .setup_statements
                .iter()
                .any(|statement| statement.trim().is_empty())
            {
                return Err("records.setup_statements must not contain empty statements".into());
            }
            QuerySpec::Sql {
                setup: records.setup_statements,
                select,
            }
        }
        (None, Some(source_type)) => {
            if !records.setup_statements.is_empty() {
                return Err("records.setup_statements only applies with records.sql".into());
            }
            QuerySpec::Table(table_spec(
                SourceKind::parse(&source_type),
                records.source_identifier,
                records.identifier_option,
                records.table_name,
                records.columns,
                records.initial_offset,
                records.properties,
                records.skip_errors,
            )?)
        }
    };
    if records.job_name.trim().is_empty() {
        return Err("records.job_name must not be empty".into());
    }
    positive("records.checkpoint_interval", records.checkpoint_interval)?;
    positive("records.savepoint_timeout", records.savepoint_timeout)?;
    positive("records.statement_timeout", records.statement_timeout)?;
    positive("records.heartbeat_interval", records.heartbeat_interval)?;
    if let Some(path) = &records.restore_from_checkpoint
        && !looks_like_path(path)
    {
        return Err(
            "records.restore_from_checkpoint must be a savepoint or retained checkpoint path (e.g. file:///savepoints/savepoint-1a2b3c-0123456789ab or s3://bucket/checkpoints/<job>/chk-42); Flink cannot restore from a bare checkpoint id"
                .into(),
        );
    }
    Ok(RecordsSettings {
        gateway_url,
        skip_errors: records.skip_errors,
        query,
        header_columns: records.header_columns,
        session_properties: records.session_properties,
        job_name: records.job_name,
        checkpoint_interval: records.checkpoint_interval,
        savepoint_on_close: records.savepoint_on_close,
        savepoint_dir: records.savepoint_dir,
        savepoint_timeout: records.savepoint_timeout,
        statement_timeout: records.statement_timeout,
        restore_from_checkpoint: records.restore_from_checkpoint,
        heartbeat_interval: records.heartbeat_interval,
    })
}

fn looks_like_path(path: &str) -> bool {
    path.starts_with('/') || path.contains(":/")
}

#[allow(clippy::too_many_arguments)]
fn table_spec(
    kind: SourceKind,
    identifier: Option<String>,
    identifier_option: Option<String>,
    table_name: String,
    columns: Vec<String>,
    initial_offset: Option<InitialOffset>,
    properties: BTreeMap<String, String>,
    skip_errors: bool,
) -> Result<TableSpec, String> {
    if kind.connector().is_empty() {
        return Err("records.source_type must not be empty".into());
    }
    if table_name.trim().is_empty() {
        return Err("records.table_name must not be empty".into());
    }
    if columns.is_empty() || columns.iter().any(|column| column.trim().is_empty()) {
        return Err(
            "records.columns must list the table's columns, e.g. [\"order_id BIGINT\", \"customer STRING\"]"
                .into(),
        );
    }
    let needs_identifier = matches!(
        kind,
        SourceKind::Kafka | SourceKind::Kinesis | SourceKind::Filesystem
    );
    match (&kind, &identifier, &identifier_option) {
        (_, None, _) if needs_identifier => {
            return Err(format!(
                "records.source_identifier is required for source_type = \"{}\" (the {})",
                kind.connector(),
                match kind {
                    SourceKind::Kafka => "topic",
                    SourceKind::Kinesis => "stream",
                    _ => "path",
                }
            ));
        }
        (SourceKind::Datagen, Some(_), _) => {
            return Err(
                "records.source_identifier has no meaning for source_type = \"datagen\"".into(),
            );
        }
        (SourceKind::Custom(name), Some(_), None) => {
            return Err(format!(
                "records.identifier_option must name the table option of connector \"{name}\" that takes records.source_identifier"
            ));
        }
        (SourceKind::Custom(_), _, _) => {}
        (_, _, Some(_)) => {
            return Err(
                "records.identifier_option only applies to custom source types; the option is known for this one"
                    .into(),
            );
        }
        _ => {}
    }
    if let Some(offset) = initial_offset {
        let supported = match kind {
            SourceKind::Kafka => true,
            SourceKind::Kinesis => offset != InitialOffset::Committed,
            _ => false,
        };
        if !supported {
            return Err(format!(
                "records.initial_offset = {offset:?} has no equivalent for source_type = \"{}\"{}",
                kind.connector(),
                match kind {
                    SourceKind::Kinesis => " (Kinesis has no committed offsets)",
                    SourceKind::Kafka => "",
                    _ => "; set the connector's own startup option in records.properties",
                }
            ));
        }
    }
    Ok(TableSpec {
        kind,
        identifier,
        identifier_option,
        table_name,
        columns,
        initial_offset,
        properties,
        skip_errors,
    })
}

fn monitor_settings(monitor: MonitorConfig) -> Result<MonitorSettings, String> {
    for job_id in &monitor.job_ids {
        if job_id.len() != 32 || !job_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "monitor.job_ids: {job_id:?} is not a Flink job id (32 hex digits)"
            ));
        }
    }
    let pattern = |field: &str, text: Option<String>| {
        text.map(|text| {
            Regex::new(&text).map_err(|e| format!("monitor.{field} is not a valid regex: {e}"))
        })
        .transpose()
    };
    if !(1..=10_000).contains(&monitor.max_jobs) {
        return Err(format!(
            "monitor.max_jobs must be between 1 and 10000 (got {})",
            monitor.max_jobs
        ));
    }
    if !(1..=1000).contains(&monitor.max_exceptions) {
        return Err(format!(
            "monitor.max_exceptions must be between 1 and 1000 (got {})",
            monitor.max_exceptions
        ));
    }
    Ok(MonitorSettings {
        job_ids: monitor
            .job_ids
            .into_iter()
            .map(|id| id.to_ascii_lowercase())
            .collect(),
        job_name_pattern: pattern("job_name_pattern", monitor.job_name_pattern)?,
        source_name_pattern: pattern("source_name_pattern", monitor.source_name_pattern)?,
        metrics_interval: (!monitor.metrics_interval.is_zero()).then_some(monitor.metrics_interval),
        max_exceptions: monitor.max_exceptions,
        max_jobs: monitor.max_jobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<Settings, String> {
        let config: FlinkSourceConfig =
            serde_json::from_value(json).map_err(|e| format!("serde: {e}"))?;
        Settings::from_config(config)
    }

    fn records(extra: serde_json::Value) -> serde_json::Value {
        let mut records = serde_json::json!({"sql": "SELECT 1"});
        if let (Some(target), Some(extra)) = (records.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        serde_json::json!({
            "flink_cluster_url": "http://127.0.0.1:8081",
            "sql_gateway_url": "http://127.0.0.1:8083",
            "records": records,
        })
    }

    #[test]
    fn sql_query_with_defaults() {
        let settings = parse(records(serde_json::json!({}))).unwrap();
        assert_eq!(settings.batch_size, 1000);
        assert_eq!(settings.poll_interval, Duration::from_millis(200));
        let Mode::Records(records) = settings.mode else {
            panic!("records mode")
        };
        assert!(matches!(records.query, QuerySpec::Sql { ref select, .. } if select == "SELECT 1"));
        assert!(records.savepoint_on_close);
        assert_eq!(records.checkpoint_interval, Duration::from_secs(1));
    }

    #[test]
    fn exactly_one_mode() {
        let both = serde_json::json!({
            "flink_cluster_url": "http://x:8081",
            "records": {"sql": "SELECT 1"},
            "monitor": {}
        });
        assert!(parse(both).unwrap_err().contains("exactly one"));
        let none = serde_json::json!({"flink_cluster_url": "http://x:8081"});
        assert!(parse(none).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn field_errors_name_the_field() {
        let cases = [
            (
                records(serde_json::json!({"source_type": "kafka"})),
                "records.sql and records.source_type",
            ),
            (
                serde_json::json!({"sql_gateway_url": "http://g:8083", "records": {"source_type": "kafka", "columns": ["a INT"]}, "flink_cluster_url": "http://x:8081"}),
                "records.source_identifier",
            ),
            (
                serde_json::json!({"sql_gateway_url": "http://g:8083", "records": {"source_type": "filesystem", "source_identifier": "/data", "columns": ["a INT"], "initial_offset": "latest"}, "flink_cluster_url": "http://x:8081"}),
                "records.initial_offset",
            ),
            (
                serde_json::json!({"sql_gateway_url": "http://g:8083", "records": {"source_type": "my-connector", "source_identifier": "x", "columns": ["a INT"]}, "flink_cluster_url": "http://x:8081"}),
                "records.identifier_option",
            ),
            (
                records(serde_json::json!({"restore_from_checkpoint": "chk-123456"})),
                "records.restore_from_checkpoint",
            ),
            (
                serde_json::json!({"sql_gateway_url": "http://g:8083", "records": {"sql": "SELECT 1"}}),
                "savepoint_on_close needs flink_cluster_url",
            ),
            (
                serde_json::json!({"flink_cluster_url": "http://u:p@x:8081", "monitor": {}}),
                "flink_cluster_url must not carry credentials",
            ),
            (
                serde_json::json!({"flink_cluster_url": "ftp://x", "monitor": {}}),
                "flink_cluster_url must be an http",
            ),
            (
                serde_json::json!({"flink_cluster_url": "http://x:8081", "monitor": {"job_name_pattern": "("}}),
                "monitor.job_name_pattern",
            ),
            (
                serde_json::json!({"flink_cluster_url": "http://x:8081", "monitor": {"job_ids": ["abc"]}}),
                "monitor.job_ids",
            ),
            (
                serde_json::json!({"flink_cluster_url": "http://x:8081", "batch_size": 0, "monitor": {}}),
                "batch_size",
            ),
            (
                serde_json::json!({"monitor": {}}),
                "flink_cluster_url is required",
            ),
        ];
        for (config, expected) in cases {
            let error = parse(config.clone()).unwrap_err();
            assert!(error.contains(expected), "{config}: {error}");
        }
    }

    #[test]
    fn auth_over_plain_http_is_named_for_a_warning() {
        let settings = |json: serde_json::Value| {
            Settings::from_config(serde_json::from_value(json).unwrap()).unwrap()
        };
        let auth = serde_json::json!({"auth_type": "bearer", "token": "t0ken"});
        let monitor = settings(serde_json::json!({
            "flink_cluster_url": "http://x:8081", "auth": auth, "monitor": {}
        }));
        assert_eq!(monitor.clear_text_auth_endpoints(), ["flink_cluster_url"]);
        let records = settings(serde_json::json!({
            "flink_cluster_url": "https://x:8081", "sql_gateway_url": "http://g:8083",
            "auth": auth, "records": {"sql": "SELECT 1"}
        }));
        assert_eq!(records.clear_text_auth_endpoints(), ["sql_gateway_url"]);
        let without_auth = settings(serde_json::json!({
            "flink_cluster_url": "http://x:8081", "monitor": {}
        }));
        assert!(without_auth.clear_text_auth_endpoints().is_empty());
        let over_tls = settings(serde_json::json!({
            "flink_cluster_url": "https://x:8081", "auth": auth, "monitor": {}
        }));
        assert!(over_tls.clear_text_auth_endpoints().is_empty());
    }

    #[test]
    fn unknown_fields_and_auth_forms() {
        let error = parse(
            serde_json::json!({"flink_cluster_url": "http://x", "monitor": {"job_name": "x"}}),
        )
        .unwrap_err();
        assert!(error.contains("job_name"), "{error}");
        let settings = parse(serde_json::json!({
            "flink_cluster_url": "http://x",
            "auth": {"auth_type": "bearer", "token": "t0ken"},
            "monitor": {}
        }))
        .unwrap();
        assert!(matches!(
            settings.http.auth,
            Some(AuthConfig::Bearer { .. })
        ));
        assert!(!format!("{settings:?}").contains("t0ken"));
        let error = parse(serde_json::json!({
            "flink_cluster_url": "http://x",
            "auth": {"auth_type": "basic", "username": "u", "password": "p", "extra": 1},
            "monitor": {}
        }))
        .unwrap_err();
        assert!(error.contains("extra"), "{error}");
    }

    #[test]
    fn initial_offset_forms() {
        let offset: InitialOffset = serde_json::from_str("\"earliest\"").unwrap();
        assert_eq!(offset, InitialOffset::Earliest);
        let offset: InitialOffset =
            serde_json::from_str(r#"{"timestamp_ms": 1700000000000}"#).unwrap();
        assert_eq!(offset, InitialOffset::TimestampMs(1_700_000_000_000));
    }
}
