//! Connector files written for the proposed Iggy Flink source (a flat
//! `[plugin_config]`: `source_type`, `connection_timeout_secs`,
//! `enable_checkpointing`, ...). Each of its keys is folded into the
//! setting of ours with the same meaning, or refused with a message that
//! names the setting to use instead. The README's settings table lists the
//! decision for every key.

use super::raw::{FlinkSourceConfig, RecordsConfig, defaults};
use iggy_connector_common::RetryPolicy;
use serde_json::Value;
use std::time::Duration;

/// Moves the proposal's keys into ours; afterwards they are all `None`.
pub fn fold(config: &mut FlinkSourceConfig) -> Result<(), String> {
    refuse_unmapped(config)?;
    fold_http(config)?;
    fold_tls(config)?;
    fold_records(config)
}

fn refuse_unmapped(config: &FlinkSourceConfig) -> Result<(), String> {
    if let Some(schema) = &config.output_schema
        && !names_json(schema)
    {
        return Err(format!(
            "output_schema = {schema}: rows always reach Iggy as JSON objects; remove output_schema (or set it to \"json\")"
        ));
    }
    let refusals = [
        (
            config.input_schema.is_some(),
            "input_schema: Flink's table format decodes the source; set records.properties.format (e.g. \"avro-confluent\") and its options there",
        ),
        (
            config.schema_registry.is_some(),
            "schema_registry: the schema registry is an option of the table's format; set it in records.properties (e.g. \"avro-confluent.url\")",
        ),
        (
            config.enable_background_fetch == Some(true),
            "enable_background_fetch = true: each poll reads the next result page itself; tune poll_interval_ms, max_poll_interval_ms and batch_size instead",
        ),
        (
            config.watermark_strategy.is_some(),
            "watermark_strategy: declare the watermark with the table's columns instead, e.g. records.columns = [\"ts TIMESTAMP(3)\", \"WATERMARK FOR ts AS ts - INTERVAL '5' SECOND\"]",
        ),
        (
            config.job_name_pattern.is_some(),
            "job_name_pattern: Flink cannot hand out the records of a running job; read rows with records.sql or source_type, or watch jobs with monitor.job_name_pattern under [plugin_config.monitor]",
        ),
        (
            config.job_id.is_some(),
            "job_id: Flink cannot hand out the records of a running job; read rows with records.sql or source_type, or watch jobs with monitor.job_ids under [plugin_config.monitor]",
        ),
        (
            config.enable_checkpointing == Some(false),
            "enable_checkpointing = false: the plugin always runs its query with checkpoints (its delivery guarantees rest on them); set their interval with checkpoint_interval_secs or records.checkpoint_interval, and records.savepoint_on_close = false to not stop the query with a savepoint",
        ),
    ];
    match refusals.iter().find(|(refused, _)| *refused) {
        Some((_, reason)) => Err((*reason).to_string()),
        None => Ok(()),
    }
}

/// `"json"` or `{ type = "json" }`, as the proposal spelled its schemas.
fn names_json(schema: &Value) -> bool {
    let name = match schema {
        Value::Object(table) => table.get("type").and_then(Value::as_str),
        other => other.as_str(),
    };
    name.is_some_and(|name| name.eq_ignore_ascii_case("json"))
}

fn fold_http(config: &mut FlinkSourceConfig) -> Result<(), String> {
    if let Some(secs) = config.connection_timeout_secs.take() {
        if config.request_timeout.is_some() || config.connect_timeout.is_some() {
            return Err(
                "connection_timeout_secs and request_timeout / connect_timeout are both set; keep request_timeout and connect_timeout"
                    .into(),
            );
        }
        if secs == 0 {
            return Err("connection_timeout_secs must be greater than zero".into());
        }
        // The proposal's timeout bounded a whole request, connecting included.
        let timeout = Duration::from_secs(secs);
        config.request_timeout = Some(timeout);
        config.connect_timeout = Some(timeout.min(defaults::CONNECT_TIMEOUT));
    }
    if let Some(retries) = config.max_retries.take() {
        if config.retry.is_some() {
            return Err(
                "max_retries and [plugin_config.retry] are both set; keep retry.max_attempts (max_retries + 1)"
                    .into(),
            );
        }
        config.retry = Some(RetryPolicy {
            max_attempts: retries.saturating_add(1),
            ..RetryPolicy::default()
        });
    }
    Ok(())
}

fn fold_tls(config: &mut FlinkSourceConfig) -> Result<(), String> {
    let tls = &mut config.tls;
    for (ours, theirs, ours_name, theirs_name) in [
        (&mut tls.ca_file, tls.ca_path.take(), "ca_file", "ca_path"),
        (
            &mut tls.client_cert_file,
            tls.cert_path.take(),
            "client_cert_file",
            "cert_path",
        ),
        (
            &mut tls.client_key_file,
            tls.key_path.take(),
            "client_key_file",
            "key_path",
        ),
    ] {
        fill(
            ours,
            theirs,
            &format!("tls.{theirs_name}"),
            &format!("tls.{ours_name}"),
        )?;
    }
    if tls.verify_hostname.take() == Some(false) {
        return Err(
            "tls.verify_hostname = false: host names are always verified; trust a private CA with tls.ca_file instead"
                .into(),
        );
    }
    if let Some(enabled) = tls.enabled.take() {
        // TLS follows each URL's scheme; the switch may only agree with them.
        let urls = [
            ("flink_cluster_url", &config.flink_cluster_url),
            ("sql_gateway_url", &config.sql_gateway_url),
        ];
        for (field, url) in urls {
            let Some(url) = url else { continue };
            let https = url.trim().to_ascii_lowercase().starts_with("https://");
            if https != enabled {
                return Err(format!(
                    "tls.enabled = {enabled} but {field} is {}: TLS follows the URL's scheme; use {} (and drop tls.enabled)",
                    if https { "https://" } else { "http://" },
                    if enabled { "https://" } else { "http://" },
                ));
            }
        }
    }
    Ok(())
}

fn fold_records(config: &mut FlinkSourceConfig) -> Result<(), String> {
    let given: Vec<&str> = [
        ("source_type", config.source_type.is_some()),
        ("source_identifier", config.source_identifier.is_some()),
        ("source_pattern", config.source_pattern.is_some()),
        ("start_position", config.start_position.is_some()),
        ("initial_offset", config.initial_offset.is_some()),
        ("skip_errors", config.skip_errors.is_some()),
        ("properties", config.properties.is_some()),
        (
            "enable_checkpointing",
            config.enable_checkpointing.is_some(),
        ),
        (
            "checkpoint_interval_secs",
            config.checkpoint_interval_secs.is_some(),
        ),
        (
            "restore_from_checkpoint",
            config.restore_from_checkpoint.is_some(),
        ),
        ("parallelism", config.parallelism.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    if config.monitor.is_some() {
        return Err(format!(
            "{} only appl{} to reading rows ([plugin_config.records]), not to [plugin_config.monitor]",
            given.join(", "),
            if given.len() == 1 { "ies" } else { "y" }
        ));
    }
    // The proposal's file is flat: its keys describe the records section.
    let records = config.records.get_or_insert_with(RecordsConfig::default);
    fill(
        &mut records.source_type,
        config.source_type.take(),
        "source_type",
        "records.source_type",
    )?;
    fill(
        &mut records.source_identifier,
        config.source_identifier.take(),
        "source_identifier",
        "records.source_identifier",
    )?;
    fill(
        &mut records.source_pattern,
        config.source_pattern.take(),
        "source_pattern",
        "records.source_pattern",
    )?;
    if config.start_position.is_some() && config.initial_offset.is_some() {
        return Err("start_position and initial_offset both say where to start; keep one".into());
    }
    fill(
        &mut records.initial_offset,
        config.initial_offset.take(),
        "initial_offset",
        "records.initial_offset",
    )?;
    fill(
        &mut records.initial_offset,
        config.start_position.take(),
        "start_position",
        "records.initial_offset",
    )?;
    fill(
        &mut records.skip_errors,
        config.skip_errors.take(),
        "skip_errors",
        "records.skip_errors",
    )?;
    fill(
        &mut records.restore_from_checkpoint,
        config.restore_from_checkpoint.take(),
        "restore_from_checkpoint",
        "records.restore_from_checkpoint",
    )?;
    if let Some(properties) = config.properties.take() {
        if !records.properties.is_empty() {
            return Err(
                "properties is set both at the top level and as records.properties; keep one"
                    .into(),
            );
        }
        records.properties = properties;
    }
    // `true` asks for what the plugin always does.
    config.enable_checkpointing = None;
    if let Some(secs) = config.checkpoint_interval_secs.take() {
        if secs == 0 {
            return Err("checkpoint_interval_secs must be greater than zero".into());
        }
        fill(
            &mut records.checkpoint_interval,
            Some(Duration::from_secs(secs)),
            "checkpoint_interval_secs",
            "records.checkpoint_interval",
        )?;
    }
    if let Some(parallelism) = config.parallelism.take() {
        const KEY: &str = "parallelism.default";
        if parallelism == 0 {
            return Err("parallelism must be greater than zero".into());
        }
        if records.session_properties.contains_key(KEY) {
            return Err(format!(
                "parallelism and records.session_properties.\"{KEY}\" are both set; keep one"
            ));
        }
        records
            .session_properties
            .insert(KEY.to_string(), parallelism.to_string());
    }
    Ok(())
}

/// Puts the proposal's value where ours goes, unless both are given.
fn fill<T>(
    ours: &mut Option<T>,
    theirs: Option<T>,
    theirs_name: &str,
    ours_name: &str,
) -> Result<(), String> {
    let Some(value) = theirs else { return Ok(()) };
    if ours.is_some() {
        return Err(format!(
            "{theirs_name} and {ours_name} are both set; keep {ours_name}"
        ));
    }
    *ours = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{
        AuthConfig, FlinkSourceConfig, InitialOffset, Mode, QuerySpec, RecordsSettings, Settings,
        SourceKind, TableSpec,
    };
    use serde_json::{Value, json};
    use std::time::Duration;

    /// Parse as the runtime does, then check as `open` does.
    fn open(config: Value) -> Result<Settings, String> {
        let config: FlinkSourceConfig =
            serde_json::from_value(config).map_err(|e| format!("serde: {e}"))?;
        Settings::from_config(config)
    }

    /// A flat file in the proposal's shape, plus what ours needs on top
    /// (the gateway and the table's columns), with `extra` laid over it.
    fn proposal(extra: Value) -> Value {
        let mut config = json!({
            "flink_cluster_url": "http://127.0.0.1:8081",
            "sql_gateway_url": "http://127.0.0.1:8083",
            "source_type": "kafka",
            "source_identifier": "sensor-events",
            "batch_size": 500,
            "poll_interval_ms": 1000,
            "records": {"columns": ["id BIGINT", "ts TIMESTAMP_LTZ(3)"]},
        });
        let target = config.as_object_mut().expect("object");
        for (key, value) in extra.as_object().expect("object") {
            target.insert(key.clone(), value.clone());
        }
        config
    }

    fn records(settings: Settings) -> RecordsSettings {
        match settings.mode {
            Mode::Records(records) => *records,
            Mode::Monitor(_) => panic!("records mode"),
        }
    }

    fn table(records: &RecordsSettings) -> &TableSpec {
        match &records.query {
            QuerySpec::Table(table) => table,
            QuerySpec::Sql { .. } => panic!("a built table"),
        }
    }

    #[test]
    fn the_proposals_keys_map_onto_ours() {
        let settings = open(proposal(json!({
            "connection_timeout_secs": 30,
            "max_retries": 3,
            "start_position": "group_offsets",
            "skip_errors": true,
            "enable_checkpointing": true,
            "checkpoint_interval_secs": 60,
            "restore_from_checkpoint": "file:///savepoints/savepoint-1a2b3c-0123456789ab",
            "parallelism": 4,
            "output_schema": "json",
            "enable_background_fetch": false,
            "properties": {"properties.bootstrap.servers": "kafka:9092"},
            "auth": {"auth_type": "bearer", "token": "t0ken"},
            "tls": {"enabled": false, "verify_hostname": true, "ca_path": "/ca.pem",
                    "cert_path": "/client.pem", "key_path": "/client.key"},
        })))
        .unwrap();
        assert_eq!(settings.http.request_timeout, Duration::from_secs(30));
        assert_eq!(settings.http.connect_timeout, Duration::from_secs(5));
        assert_eq!(settings.http.retry.max_attempts, 4);
        assert!(matches!(
            settings.http.auth,
            Some(AuthConfig::Bearer { .. })
        ));
        assert_eq!(settings.http.ca_file.as_deref(), Some("/ca.pem".as_ref()));
        assert!(settings.http.client_identity.is_some());
        let records = records(settings);
        assert!(records.skip_errors);
        assert_eq!(records.checkpoint_interval, Duration::from_secs(60));
        assert_eq!(
            records
                .session_properties
                .get("parallelism.default")
                .map(String::as_str),
            Some("4")
        );
        assert!(records.restore_from_checkpoint.is_some());
        let table = table(&records);
        assert_eq!(table.kind, SourceKind::Kafka);
        assert_eq!(table.identifier.as_deref(), Some("sensor-events"));
        assert_eq!(table.initial_offset, Some(InitialOffset::Committed));
        assert!(
            table
                .properties
                .contains_key("properties.bootstrap.servers")
        );

        // A short timeout bounds connecting too.
        let short = open(proposal(json!({"connection_timeout_secs": 2}))).unwrap();
        assert_eq!(short.http.connect_timeout, Duration::from_secs(2));
        // No records section at all: the flat keys make one.
        let mut flat = proposal(json!({"source_type": "datagen"}));
        let flat_object = flat.as_object_mut().unwrap();
        flat_object.remove("records");
        flat_object.remove("source_identifier");
        let error = open(flat).unwrap_err();
        assert!(error.contains("records.columns"), "{error}");
    }

    #[test]
    fn source_type_variants() {
        let kind = |source_type: Value, extra: Value| {
            let mut config = proposal(json!({"source_type": source_type}));
            config["records"]
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            open(config).map(|settings| table(&records(settings)).kind.clone())
        };
        assert_eq!(
            kind(json!("file_system"), json!({})),
            Ok(SourceKind::Filesystem)
        );
        assert_eq!(kind(json!("kinesis"), json!({})), Ok(SourceKind::Kinesis));
        assert_eq!(
            kind(
                json!({"custom": "my-connector"}),
                json!({"identifier_option": "stream"})
            ),
            Ok(SourceKind::Custom("my-connector".into()))
        );
        assert_eq!(
            kind(json!("pulsar"), json!({"identifier_option": "topics"})),
            Ok(SourceKind::Custom("pulsar".into()))
        );
        let error = kind(json!({"custom": "my-connector"}), json!({})).unwrap_err();
        assert!(error.contains("records.identifier_option"), "{error}");
        let error = kind(json!("custom"), json!({})).unwrap_err();
        assert!(error.contains("{ custom = \"<connector>\" }"), "{error}");
        for refused in ["rabbit_m_q", "rabbitmq", "socket"] {
            let error = kind(json!(refused), json!({})).unwrap_err();
            assert!(error.contains("no SQL table connector"), "{error}");
            assert!(error.contains("records.sql"), "{error}");
        }
        let error = kind(json!({"kafka": true}), json!({})).unwrap_err();
        assert!(error.contains("records.source_type"), "{error}");
        let mut datagen = proposal(json!({"source_type": {"custom": "datagen"}}));
        datagen.as_object_mut().unwrap().remove("source_identifier");
        assert_eq!(
            table(&records(open(datagen).unwrap())).kind,
            SourceKind::Datagen
        );
    }

    #[test]
    fn kafka_source_pattern_instead_of_a_topic() {
        let mut config = proposal(json!({"source_pattern": "events-.*"}));
        config.as_object_mut().unwrap().remove("source_identifier");
        let records = records(open(config).unwrap());
        assert_eq!(table(&records).pattern.as_deref(), Some("events-.*"));
        let error = open(proposal(json!({"source_pattern": "events-.*"}))).unwrap_err();
        assert!(error.contains("exclude each other"), "{error}");
        let error = open(proposal(
            json!({"source_type": "kinesis", "source_pattern": "x"}),
        ))
        .unwrap_err();
        assert!(
            error.contains("records.source_pattern only applies"),
            "{error}"
        );
    }

    #[test]
    fn refused_keys_name_what_to_use_instead() {
        let cases = [
            (
                json!({"enable_checkpointing": false}),
                "records.checkpoint_interval",
            ),
            (json!({"output_schema": "raw"}), "output_schema"),
            (json!({"output_schema": {"type": "avro"}}), "output_schema"),
            (
                json!({"input_schema": {"type": "avro"}}),
                "records.properties.format",
            ),
            (
                json!({"schema_registry": {"url": "http://r"}}),
                "avro-confluent.url",
            ),
            (json!({"enable_background_fetch": true}), "poll_interval_ms"),
            (
                json!({"watermark_strategy": {"strategy_type": "ascending_timestamps"}}),
                "WATERMARK FOR",
            ),
            (
                json!({"job_name_pattern": ".*sensor.*"}),
                "monitor.job_name_pattern",
            ),
            (json!({"job_id": "abc123def456"}), "monitor.job_ids"),
            (
                json!({"start_position": {"offset": 12345}}),
                "{ offsets = { \"0\" = 12345 } }",
            ),
            (
                json!({"initial_offset": 12345}),
                "{ offsets = { \"0\" = 12345 } }",
            ),
            (
                json!({"restore_from_checkpoint": "chk-123456"}),
                "records.restore_from_checkpoint",
            ),
            (
                json!({"auth": {"auth_type": "sasl_plain"}}),
                "properties.sasl.mechanism",
            ),
            (
                json!({"auth": {"auth_type": "bearer", "token": "t", "sasl_mechanism": "PLAIN"}}),
                "auth.sasl_mechanism",
            ),
            (
                json!({"auth": {"auth_type": "certificate"}}),
                "tls.client_cert_file",
            ),
            (json!({"tls": {"verify_hostname": false}}), "tls.ca_file"),
            (json!({"tls": {"enabled": true}}), "https://"),
            (
                json!({"connection_timeout_secs": 0}),
                "connection_timeout_secs",
            ),
            (
                json!({"checkpoint_interval_secs": 0}),
                "checkpoint_interval_secs",
            ),
            (json!({"parallelism": 0}), "parallelism"),
        ];
        for (extra, expected) in cases {
            let error = open(proposal(extra.clone())).unwrap_err();
            assert!(error.contains(expected), "{extra}: {error}");
        }
        // `auth_type = "none"` is no auth.
        let none = open(proposal(json!({"auth": {"auth_type": "none"}}))).unwrap();
        assert!(none.http.auth.is_none());
    }

    #[test]
    fn a_setting_given_both_ways_is_refused() {
        let cases = [
            (
                json!({"connection_timeout_secs": 30, "request_timeout": "5s"}),
                "connection_timeout_secs and request_timeout",
            ),
            (
                json!({"max_retries": 3, "retry": {"max_attempts": 2}}),
                "retry.max_attempts",
            ),
            (
                json!({"start_position": "latest", "initial_offset": "earliest"}),
                "start_position and initial_offset",
            ),
            (
                json!({"tls": {"ca_path": "/a.pem", "ca_file": "/b.pem"}}),
                "tls.ca_path and tls.ca_file",
            ),
        ];
        for (extra, expected) in cases {
            let error = open(proposal(extra.clone())).unwrap_err();
            assert!(error.contains(expected), "{extra}: {error}");
        }
        let mut both = proposal(json!({"checkpoint_interval_secs": 60}));
        both["records"]["checkpoint_interval"] = json!("5s");
        let error = open(both).unwrap_err();
        assert!(
            error.contains("checkpoint_interval_secs and records.checkpoint_interval"),
            "{error}"
        );
        let mut both = proposal(json!({}));
        both["records"]["source_type"] = json!("kafka");
        let error = open(both).unwrap_err();
        assert!(
            error.contains("source_type and records.source_type"),
            "{error}"
        );
        let mut both = proposal(json!({"parallelism": 2}));
        both["records"]["session_properties"] = json!({"parallelism.default": "4"});
        let error = open(both).unwrap_err();
        assert!(error.contains("parallelism.default"), "{error}");
        let monitor = json!({
            "flink_cluster_url": "http://x:8081",
            "checkpoint_interval_secs": 60,
            "monitor": {},
        });
        let error = open(monitor).unwrap_err();
        assert!(
            error.contains("checkpoint_interval_secs only applies to reading rows"),
            "{error}"
        );
    }

    #[test]
    fn the_time_column_must_be_a_column() {
        let mut config = proposal(json!({}));
        config["records"]["timestamp_column"] = json!("ts");
        let records = records(open(config.clone()).unwrap());
        assert_eq!(records.timestamp_column.as_deref(), Some("ts"));
        config["records"]["timestamp_column"] = json!("event_time");
        let error = open(config.clone()).unwrap_err();
        assert!(
            error.contains("records.timestamp_column = \"event_time\""),
            "{error}"
        );
        config["records"]["timestamp_column"] = json!(" ");
        let error = open(config).unwrap_err();
        assert!(error.contains("records.timestamp_column"), "{error}");
    }
}
