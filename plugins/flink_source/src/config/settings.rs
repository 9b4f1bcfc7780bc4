//! The checked form of the settings the rest of the plugin uses, built by
//! `Settings::from_config` from what serde read (`raw.rs`) after the
//! proposal's keys were folded in; its errors name the field.

use super::proposal;
pub use super::raw::HeaderColumns;
use super::raw::{AuthTable, FlinkSourceConfig, MonitorConfig, RecordsConfig, defaults};
use iggy_connector_common::{RetryPolicy, Secret};
use regex::Regex;
use reqwest::Url;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Sent on every request, for proxies in front of Flink (Flink itself has no auth).
#[derive(Debug, Clone)]
pub enum AuthConfig {
    Bearer { token: Secret },
    Basic { username: String, password: Secret },
}

/// Where a new query starts reading its source.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialOffset {
    Earliest,
    Latest,
    /// The consumer group's committed offsets (Kafka only).
    Committed,
    TimestampMs(i64),
    /// Kafka: an offset per partition.
    Offsets(BTreeMap<u32, u64>),
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
    /// `"kafka"` or `{ custom = "kafka" }` alike: a connector is known by its name.
    fn from_config(value: &Value) -> Result<Self, String> {
        const FORMS: &str = "a Flink table connector's name (\"kafka\", \"kinesis\", \"filesystem\", \"datagen\", ...) or { custom = \"<connector>\" }";
        let name = match value {
            Value::String(name) => name.as_str(),
            Value::Object(table) if table.len() == 1 => table
                .get("custom")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("records.source_type = {value} must be {FORMS}"))?,
            other => return Err(format!("records.source_type = {other} must be {FORMS}")),
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "" => Err("records.source_type must not be empty".into()),
            "custom" => Err(
                "records.source_type = \"custom\" needs the connector's name: source_type = { custom = \"<connector>\" }"
                    .into(),
            ),
            "rabbitmq" | "rabbit_mq" | "rabbit_m_q" | "socket" => Err(format!(
                "records.source_type = {name:?}: Flink ships no SQL table connector for it (only DataStream sources); create a table over an installed connector with records.setup_statements and read it with records.sql, or name that connector with {{ custom = \"<connector>\" }}"
            )),
            _ => Ok(Self::parse(name)),
        }
    }

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
    /// Kafka: a regex over topic names (`topic-pattern`), instead of the identifier.
    pub pattern: Option<String>,
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
    /// The column whose time becomes each message's `origin_timestamp`.
    pub timestamp_column: Option<String>,
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
    pub fn from_config(mut config: FlinkSourceConfig) -> Result<Self, String> {
        proposal::fold(&mut config)?;
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
        let request_timeout = config.request_timeout.unwrap_or(defaults::REQUEST_TIMEOUT);
        let connect_timeout = config.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT);
        positive("request_timeout", request_timeout)?;
        positive("connect_timeout", connect_timeout)?;
        positive("metrics_log_interval", config.metrics_log_interval)?;
        let retry = config.retry.unwrap_or_default();
        retry.validate()?;
        let auth = config.auth.map(auth_config).transpose()?.flatten();
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
                request_timeout,
                connect_timeout,
                auth,
                ca_file: config.tls.ca_file,
                client_identity,
                retry,
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

/// `None` for `auth_type = "none"`.
fn auth_config(table: AuthTable) -> Result<Option<AuthConfig>, String> {
    if table.sasl_mechanism.is_some() {
        return Err(
            "auth.sasl_mechanism: SASL is Kafka's, not Flink's; set it in the Kafka table's records.properties (\"properties.sasl.mechanism\", \"properties.sasl.jaas.config\")"
                .into(),
        );
    }
    let unused = |fields: &[(&str, bool)]| match fields.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(format!(
            "auth.{field} does not apply to auth_type = {:?}",
            table.auth_type
        )),
        None => Ok(()),
    };
    match table.auth_type.as_str() {
        "none" => {
            unused(&[
                ("token", table.token.is_some()),
                ("username", table.username.is_some()),
                ("password", table.password.is_some()),
            ])?;
            Ok(None)
        }
        "bearer" => {
            unused(&[
                ("username", table.username.is_some()),
                ("password", table.password.is_some()),
            ])?;
            let token = table.token.ok_or("auth.token is required by auth_type = \"bearer\"")?;
            if token.is_empty() {
                return Err("auth.token must not be empty".into());
            }
            Ok(Some(AuthConfig::Bearer { token }))
        }
        "basic" => {
            unused(&[("token", table.token.is_some())])?;
            let username = table.username.unwrap_or_default();
            if username.is_empty() || username.contains(':') {
                return Err("auth.username must be non-empty and must not contain ':'".into());
            }
            let password = table
                .password
                .ok_or("auth.password is required by auth_type = \"basic\"")?;
            Ok(Some(AuthConfig::Basic { username, password }))
        }
        "sasl_plain" | "sasl_scram" => Err(format!(
            "auth.auth_type = {:?}: SASL is Kafka's, not Flink's; set it in the Kafka table's records.properties (\"properties.security.protocol\", \"properties.sasl.mechanism\", \"properties.sasl.jaas.config\")",
            table.auth_type
        )),
        "certificate" => Err(
            "auth.auth_type = \"certificate\": a client certificate is TLS's; set tls.client_cert_file and tls.client_key_file"
                .into(),
        ),
        other => Err(format!(
            "auth.auth_type = {other:?} is not one of \"bearer\", \"basic\", \"none\""
        )),
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
    mut records: RecordsConfig,
    gateway_url: Option<&str>,
) -> Result<RecordsSettings, String> {
    let gateway_url = parse_url(
        "sql_gateway_url",
        gateway_url.ok_or("sql_gateway_url is required by [plugin_config.records]")?,
    )?;
    let skip_errors = records.skip_errors.unwrap_or(false);
    let query = match (records.sql.take(), records.source_type.take()) {
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
                ("source_pattern", records.source_pattern.is_some()),
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
                setup: std::mem::take(&mut records.setup_statements),
                select,
            }
        }
        (None, Some(source_type)) => {
            if !records.setup_statements.is_empty() {
                return Err("records.setup_statements only applies with records.sql".into());
            }
            let kind = SourceKind::from_config(&source_type)?;
            QuerySpec::Table(table_spec(kind, &mut records, skip_errors)?)
        }
    };
    if records.job_name.trim().is_empty() {
        return Err("records.job_name must not be empty".into());
    }
    let checkpoint_interval = records
        .checkpoint_interval
        .unwrap_or(defaults::CHECKPOINT_INTERVAL);
    positive("records.checkpoint_interval", checkpoint_interval)?;
    let timestamp_column = timestamp_column(records.timestamp_column.take(), &query)?;
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
        skip_errors,
        query,
        header_columns: records.header_columns,
        timestamp_column,
        session_properties: records.session_properties,
        job_name: records.job_name,
        checkpoint_interval,
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

/// A built table's time column must be one of `records.columns`; a
/// query's is checked against the columns of its first page.
fn timestamp_column(column: Option<String>, query: &QuerySpec) -> Result<Option<String>, String> {
    let Some(column) = column else {
        return Ok(None);
    };
    let column = column.trim().to_string();
    if column.is_empty() {
        return Err("records.timestamp_column must not be empty".into());
    }
    if let QuerySpec::Table(table) = query {
        let names: Vec<String> = table
            .columns
            .iter()
            .filter_map(|definition| definition.split_whitespace().next())
            .map(|name| name.trim_matches('`').to_string())
            .collect();
        if !names.contains(&column) {
            return Err(format!(
                "records.timestamp_column = {column:?} is not one of records.columns ({names:?})"
            ));
        }
    }
    Ok(Some(column))
}

/// `"earliest"`, `"latest"`, `"committed"` (the proposal's `"group_offsets"`),
/// `{ timestamp_ms = N }` (its `{ timestamp = N }`), or per-partition offsets.
fn initial_offset(value: &Value) -> Result<InitialOffset, String> {
    const FORMS: &str = "\"earliest\", \"latest\", \"committed\", { timestamp_ms = <epoch ms> } or { offsets = { \"<partition>\" = <offset>, ... } }";
    let single_offset = |offset: &Value| {
        format!(
            "records.initial_offset: a single offset ({offset}) names no partition; give each Kafka partition's offset, e.g. initial_offset = {{ offsets = {{ \"0\" = {offset} }} }}"
        )
    };
    match value {
        Value::String(name) => match name.as_str() {
            "earliest" => Ok(InitialOffset::Earliest),
            "latest" => Ok(InitialOffset::Latest),
            "committed" | "group_offsets" => Ok(InitialOffset::Committed),
            _ => Err(format!(
                "records.initial_offset = {value} must be one of {FORMS}"
            )),
        },
        Value::Number(_) => Err(single_offset(value)),
        Value::Object(table) if table.len() == 1 => {
            let (key, inner) = table.iter().next().expect("one entry");
            match key.as_str() {
                "timestamp_ms" | "timestamp" => inner
                    .as_i64()
                    .filter(|ms| *ms >= 0)
                    .map(InitialOffset::TimestampMs)
                    .ok_or_else(|| {
                        format!(
                            "records.initial_offset.{key} must be epoch milliseconds (got {inner})"
                        )
                    }),
                "offset" => Err(single_offset(inner)),
                "offsets" => partition_offsets(inner).map(InitialOffset::Offsets),
                _ => Err(format!(
                    "records.initial_offset = {value} must be one of {FORMS}"
                )),
            }
        }
        _ => Err(format!(
            "records.initial_offset = {value} must be one of {FORMS}"
        )),
    }
}

fn partition_offsets(value: &Value) -> Result<BTreeMap<u32, u64>, String> {
    let bad = || {
        format!(
            "records.initial_offset.offsets = {value} must map partition numbers to offsets, e.g. {{ \"0\" = 42, \"1\" = 7 }}"
        )
    };
    let table = value
        .as_object()
        .filter(|t| !t.is_empty())
        .ok_or_else(bad)?;
    table
        .iter()
        .map(|(partition, offset)| {
            let partition = partition.trim().parse::<u32>().map_err(|_| bad())?;
            let offset = offset.as_u64().ok_or_else(bad)?;
            Ok((partition, offset))
        })
        .collect()
}

/// Takes the built table's fields out of `records`.
fn table_spec(
    kind: SourceKind,
    records: &mut RecordsConfig,
    skip_errors: bool,
) -> Result<TableSpec, String> {
    let identifier = records.source_identifier.take();
    let pattern = records.source_pattern.take();
    let identifier_option = records.identifier_option.take();
    let table_name = std::mem::take(&mut records.table_name);
    let columns = std::mem::take(&mut records.columns);
    let initial_offset = records
        .initial_offset
        .take()
        .map(|value| initial_offset(&value))
        .transpose()?;
    let properties = std::mem::take(&mut records.properties);
    if table_name.trim().is_empty() {
        return Err("records.table_name must not be empty".into());
    }
    if columns.is_empty() || columns.iter().any(|column| column.trim().is_empty()) {
        return Err(
            "records.columns must list the table's columns, e.g. [\"order_id BIGINT\", \"customer STRING\"]"
                .into(),
        );
    }
    if pattern.is_some() {
        if kind != SourceKind::Kafka {
            return Err(format!(
                "records.source_pattern only applies to source_type = \"kafka\" (its topic-pattern); for \"{}\" use records.source_identifier",
                kind.connector()
            ));
        }
        if identifier.is_some() {
            return Err(
                "records.source_identifier and records.source_pattern exclude each other (Kafka reads one topic or the topics a pattern matches)"
                    .into(),
            );
        }
    }
    let needs_identifier = matches!(
        kind,
        SourceKind::Kafka | SourceKind::Kinesis | SourceKind::Filesystem
    ) && pattern.is_none();
    match (&kind, &identifier, &identifier_option) {
        (_, None, _) if needs_identifier => {
            return Err(format!(
                "records.source_identifier is required for source_type = \"{}\" (the {})",
                kind.connector(),
                match kind {
                    SourceKind::Kafka => "topic; or records.source_pattern",
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
    if let Some(offset) = &initial_offset {
        let supported = match kind {
            SourceKind::Kafka => true,
            SourceKind::Kinesis => matches!(
                offset,
                InitialOffset::Earliest | InitialOffset::Latest | InitialOffset::TimestampMs(_)
            ),
            _ => false,
        };
        if !supported {
            return Err(format!(
                "records.initial_offset = {offset:?} has no equivalent for source_type = \"{}\"{}",
                kind.connector(),
                match kind {
                    SourceKind::Kinesis => " (Kinesis has no committed or per-partition offsets)",
                    SourceKind::Kafka => "",
                    _ => "; set the connector's own startup option in records.properties",
                }
            ));
        }
    }
    Ok(TableSpec {
        kind,
        identifier,
        pattern,
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

    fn parse(json: Value) -> Result<Settings, String> {
        let config: FlinkSourceConfig =
            serde_json::from_value(json).map_err(|e| format!("serde: {e}"))?;
        Settings::from_config(config)
    }

    fn records(extra: Value) -> Value {
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
        let settings =
            |json: Value| Settings::from_config(serde_json::from_value(json).unwrap()).unwrap();
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
        let offset = |value: Value| initial_offset(&value);
        assert_eq!(
            offset(serde_json::json!("earliest")),
            Ok(InitialOffset::Earliest)
        );
        assert_eq!(
            offset(serde_json::json!("group_offsets")),
            Ok(InitialOffset::Committed)
        );
        assert_eq!(
            offset(serde_json::json!({"timestamp_ms": 1_700_000_000_000_i64})),
            Ok(InitialOffset::TimestampMs(1_700_000_000_000))
        );
        assert_eq!(
            offset(serde_json::json!({"timestamp": 1_700_000_000_000_i64})),
            Ok(InitialOffset::TimestampMs(1_700_000_000_000))
        );
        assert_eq!(
            offset(serde_json::json!({"offsets": {"0": 42, "3": 7}})),
            Ok(InitialOffset::Offsets(BTreeMap::from([(0, 42), (3, 7)])))
        );
        for single in [
            serde_json::json!(12345),
            serde_json::json!({"offset": 12345}),
        ] {
            let error = offset(single).unwrap_err();
            assert!(error.contains("{ offsets = { \"0\" = 12345 } }"), "{error}");
        }
        assert!(
            offset(serde_json::json!("newest"))
                .unwrap_err()
                .contains("records.initial_offset")
        );
        assert!(
            offset(serde_json::json!({"offsets": {"x": 1}}))
                .unwrap_err()
                .contains("partition numbers")
        );
    }
}
