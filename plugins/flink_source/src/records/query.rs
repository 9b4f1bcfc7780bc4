//! The SQL the records mode runs: the operator's own query, or a
//! `CREATE TEMPORARY TABLE ... WITH (...)` and a `SELECT` built from
//! `source_type`, `source_identifier`, `columns`, `initial_offset` and
//! `properties`, with metadata columns that carry each row's source,
//! partition and offset where the connector exposes them.

use crate::config::{HeaderColumns, InitialOffset, QuerySpec, SourceKind, TableSpec};
use std::collections::BTreeMap;

/// What to run and where a row's headers come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Statements {
    /// Run through configure-session, in order, before `select`.
    pub setup: Vec<String>,
    pub select: String,
    pub header_columns: HeaderColumns,
    /// The `source` header when no column carries one.
    pub constant_source: Option<String>,
}

/// A metadata column the plugin adds: (column, SQL type, connector metadata key).
type Metadata = (&'static str, &'static str, &'static str);

const SOURCE_COLUMN: &str = "iggy_source";
const PARTITION_COLUMN: &str = "iggy_partition";
const OFFSET_COLUMN: &str = "iggy_offset";

pub fn statements(query: &QuerySpec, configured: &HeaderColumns) -> Statements {
    match query {
        QuerySpec::Sql { setup, select } => Statements {
            setup: setup.clone(),
            select: select.clone(),
            header_columns: configured.clone(),
            constant_source: None,
        },
        QuerySpec::Table(table) => table_statements(table, configured),
    }
}

fn table_statements(table: &TableSpec, configured: &HeaderColumns) -> Statements {
    // A header taken from a column of the operator's choice needs no
    // metadata column, which would otherwise stay in every payload.
    let metadata: Vec<&Metadata> = metadata_columns(&table.kind)
        .iter()
        .filter(|(name, _, _)| {
            let replaced_by = match *name {
                SOURCE_COLUMN => &configured.source,
                PARTITION_COLUMN => &configured.partition,
                _ => &configured.offset,
            };
            replaced_by.as_ref().is_none_or(|column| column == name)
        })
        .collect();
    let has = |column: &str| metadata.iter().any(|(name, _, _)| *name == column);
    let pick = |configured: &Option<String>, column: &str| {
        configured
            .clone()
            .or_else(|| has(column).then(|| column.to_string()))
    };
    let header_columns = HeaderColumns {
        source: pick(&configured.source, SOURCE_COLUMN),
        partition: pick(&configured.partition, PARTITION_COLUMN),
        offset: pick(&configured.offset, OFFSET_COLUMN),
    };
    let constant_source = header_columns
        .source
        .is_none()
        .then(|| match &table.identifier {
            Some(identifier) => format!("{}:{identifier}", table.kind.connector()),
            None => table.kind.connector().to_string(),
        });
    let mut columns: Vec<String> = table.columns.iter().map(|c| c.trim().to_string()).collect();
    columns.extend(metadata.iter().map(|(name, sql_type, key)| {
        format!(
            "{} {sql_type} METADATA FROM {} VIRTUAL",
            identifier(name),
            literal(key)
        )
    }));
    let options = table_options(table)
        .iter()
        .map(|(key, value)| format!("  {} = {}", literal(key), literal(value)))
        .collect::<Vec<_>>()
        .join(",\n");
    let name = identifier(&table.table_name);
    // TEMPORARY: a gateway with a persistent catalog must not keep the table,
    // or the next session's CREATE would collide with it.
    let create = format!(
        "CREATE TEMPORARY TABLE {name} (\n  {}\n) WITH (\n{options}\n)",
        columns.join(",\n  ")
    );
    Statements {
        setup: vec![create],
        select: format!("SELECT * FROM {name}"),
        header_columns,
        constant_source,
    }
}

fn metadata_columns(kind: &SourceKind) -> &'static [Metadata] {
    match kind {
        SourceKind::Kafka => &[
            (SOURCE_COLUMN, "STRING", "topic"),
            (PARTITION_COLUMN, "INT", "partition"),
            (OFFSET_COLUMN, "BIGINT", "offset"),
        ],
        SourceKind::Kinesis => &[
            (PARTITION_COLUMN, "VARCHAR(128)", "shard-id"),
            (OFFSET_COLUMN, "VARCHAR(128)", "sequence-number"),
        ],
        SourceKind::Filesystem => &[(SOURCE_COLUMN, "STRING", "file.path")],
        SourceKind::Datagen | SourceKind::Custom(_) => &[],
    }
}

/// The `WITH` options: derived ones first, `properties` over them.
fn table_options(table: &TableSpec) -> BTreeMap<String, String> {
    let mut options = BTreeMap::new();
    options.insert("connector".to_string(), table.kind.connector().to_string());
    let identifier_option = match &table.kind {
        SourceKind::Kafka => Some("topic"),
        SourceKind::Kinesis => Some("stream"),
        SourceKind::Filesystem => Some("path"),
        SourceKind::Datagen => None,
        SourceKind::Custom(_) => table.identifier_option.as_deref(),
    };
    if let (Some(option), Some(identifier)) = (identifier_option, &table.identifier) {
        options.insert(option.to_string(), identifier.clone());
    }
    if let Some(pattern) = &table.pattern {
        options.insert("topic-pattern".to_string(), pattern.clone());
    }
    for (key, value) in startup_options(&table.kind, table.initial_offset.as_ref()) {
        options.insert(key.to_string(), value);
    }
    // A record the format cannot decode otherwise fails the job.
    if table.skip_errors
        && let Some(format) = table.properties.get("format")
        && matches!(format.as_str(), "json" | "csv")
    {
        options.insert(format!("{format}.ignore-parse-errors"), "true".to_string());
    }
    options.extend(table.properties.clone());
    options
}

fn startup_options(
    kind: &SourceKind,
    offset: Option<&InitialOffset>,
) -> Vec<(&'static str, String)> {
    let Some(offset) = offset else {
        return Vec::new();
    };
    match (kind, offset) {
        (SourceKind::Kafka, InitialOffset::Earliest) => {
            vec![("scan.startup.mode", "earliest-offset".into())]
        }
        (SourceKind::Kafka, InitialOffset::Latest) => {
            vec![("scan.startup.mode", "latest-offset".into())]
        }
        (SourceKind::Kafka, InitialOffset::Committed) => {
            vec![("scan.startup.mode", "group-offsets".into())]
        }
        (SourceKind::Kafka, InitialOffset::TimestampMs(ms)) => vec![
            ("scan.startup.mode", "timestamp".into()),
            ("scan.startup.timestamp-millis", ms.to_string()),
        ],
        (SourceKind::Kafka, InitialOffset::Offsets(offsets)) => vec![
            ("scan.startup.mode", "specific-offsets".into()),
            (
                "scan.startup.specific-offsets",
                offsets
                    .iter()
                    .map(|(partition, offset)| format!("partition:{partition},offset:{offset}"))
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
        ],
        (SourceKind::Kinesis, InitialOffset::Earliest) => {
            vec![("scan.stream.initpos", "TRIM_HORIZON".into())]
        }
        (SourceKind::Kinesis, InitialOffset::Latest) => {
            vec![("scan.stream.initpos", "LATEST".into())]
        }
        (SourceKind::Kinesis, InitialOffset::TimestampMs(ms)) => vec![
            ("scan.stream.initpos", "AT_TIMESTAMP".into()),
            // The connector's default timestamp format: epoch seconds with a fraction.
            (
                "scan.stream.initpos-timestamp",
                format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000)),
            ),
        ],
        // Rejected when the settings are checked.
        _ => Vec::new(),
    }
}

/// `SET 'execution.savepoint.path' = '...'`: the next statement's job
/// starts from that savepoint (recorded as gw-40).
pub fn restore_statement(path: &str) -> String {
    format!("SET 'execution.savepoint.path' = {}", literal(path))
}

fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(kind: SourceKind, identifier: Option<&str>) -> TableSpec {
        TableSpec {
            kind,
            identifier: identifier.map(str::to_string),
            pattern: None,
            identifier_option: None,
            table_name: "iggy_flink_source".into(),
            columns: vec!["order_id BIGINT".into(), "customer STRING".into()],
            initial_offset: None,
            properties: BTreeMap::new(),
            skip_errors: false,
        }
    }

    #[test]
    fn kafka_offsets_per_partition_and_topic_pattern() {
        let mut spec = table(SourceKind::Kafka, None);
        spec.pattern = Some("events-.*".into());
        spec.initial_offset = Some(InitialOffset::Offsets([(0, 42), (3, 7)].into()));
        let options = table_options(&spec);
        assert_eq!(options["topic-pattern"], "events-.*");
        assert!(!options.contains_key("topic"));
        assert_eq!(options["scan.startup.mode"], "specific-offsets");
        assert_eq!(
            options["scan.startup.specific-offsets"],
            "partition:0,offset:42;partition:3,offset:7"
        );
    }

    #[test]
    fn kafka_table_with_metadata_and_startup_mode() {
        let mut spec = table(SourceKind::Kafka, Some("orders"));
        spec.initial_offset = Some(InitialOffset::TimestampMs(1_700_000_000_000));
        spec.skip_errors = true;
        spec.properties.insert("format".into(), "json".into());
        spec.properties
            .insert("properties.bootstrap.servers".into(), "k:9092".into());
        let statements = statements(&QuerySpec::Table(spec), &HeaderColumns::default());
        assert_eq!(
            statements.setup,
            [
                "CREATE TEMPORARY TABLE `iggy_flink_source` (\n  order_id BIGINT,\n  customer STRING,\n  \
                 `iggy_source` STRING METADATA FROM 'topic' VIRTUAL,\n  \
                 `iggy_partition` INT METADATA FROM 'partition' VIRTUAL,\n  \
                 `iggy_offset` BIGINT METADATA FROM 'offset' VIRTUAL\n) WITH (\n  \
                 'connector' = 'kafka',\n  'format' = 'json',\n  'json.ignore-parse-errors' = 'true',\n  \
                 'properties.bootstrap.servers' = 'k:9092',\n  'scan.startup.mode' = 'timestamp',\n  \
                 'scan.startup.timestamp-millis' = '1700000000000',\n  'topic' = 'orders'\n)"
            ]
        );
        assert_eq!(statements.select, "SELECT * FROM `iggy_flink_source`");
        assert_eq!(
            statements.header_columns,
            HeaderColumns {
                source: Some("iggy_source".into()),
                partition: Some("iggy_partition".into()),
                offset: Some("iggy_offset".into()),
            }
        );
        assert_eq!(statements.constant_source, None);
    }

    #[test]
    fn properties_win_and_custom_connectors_name_their_option() {
        let mut spec = table(
            SourceKind::Custom("pulsar".into()),
            Some("persistent://t/n/o"),
        );
        spec.identifier_option = Some("topics".into());
        spec.properties
            .insert("connector".into(), "pulsar-v2".into());
        let statements = statements(&QuerySpec::Table(spec), &HeaderColumns::default());
        let create = &statements.setup[0];
        assert!(create.contains("'connector' = 'pulsar-v2'"), "{create}");
        assert!(
            create.contains("'topics' = 'persistent://t/n/o'"),
            "{create}"
        );
        assert!(!create.contains("METADATA"), "{create}");
        assert_eq!(
            statements.constant_source.as_deref(),
            Some("pulsar:persistent://t/n/o")
        );
    }

    #[test]
    fn kinesis_and_filesystem_metadata() {
        let mut spec = table(SourceKind::Kinesis, Some("clicks"));
        spec.initial_offset = Some(InitialOffset::TimestampMs(1_459_799_926_480));
        let kinesis = statements(&QuerySpec::Table(spec), &HeaderColumns::default());
        assert!(kinesis.setup[0].contains("'scan.stream.initpos-timestamp' = '1459799926.480'"));
        assert!(kinesis.setup[0].contains("METADATA FROM 'shard-id'"));
        assert_eq!(kinesis.constant_source.as_deref(), Some("kinesis:clicks"));
        let files = statements(
            &QuerySpec::Table(table(SourceKind::Filesystem, Some("/data/in"))),
            &HeaderColumns::default(),
        );
        assert!(files.setup[0].contains("'path' = '/data/in'"));
        assert_eq!(files.header_columns.source.as_deref(), Some("iggy_source"));
        assert_eq!(files.header_columns.offset, None);
        let own_source = HeaderColumns {
            source: Some("src".into()),
            ..HeaderColumns::default()
        };
        let files = statements(
            &QuerySpec::Table(table(SourceKind::Filesystem, Some("/data/in"))),
            &own_source,
        );
        assert!(!files.setup[0].contains("METADATA"), "{}", files.setup[0]);
        assert_eq!(files.header_columns, own_source);
    }

    #[test]
    fn quoting_and_restore() {
        assert_eq!(identifier("we`ird"), "`we``ird`");
        assert_eq!(
            restore_statement("file:/sp/it's"),
            "SET 'execution.savepoint.path' = 'file:/sp/it''s'"
        );
        let sql = QuerySpec::Sql {
            setup: vec!["CREATE TABLE t (a INT) WITH ('connector' = 'datagen')".into()],
            select: "SELECT a FROM t".into(),
        };
        let configured = HeaderColumns {
            offset: Some("a".into()),
            ..HeaderColumns::default()
        };
        let statements = statements(&sql, &configured);
        assert_eq!(statements.header_columns, configured);
        assert_eq!(statements.constant_source, None);
    }
}
