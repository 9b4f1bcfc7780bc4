//! One row of a query result → one Iggy message: a JSON object keyed by
//! column name (field values copied as Flink wrote them), with the row kind
//! and job id as headers, and the source, partition and offset headers taken
//! from the columns that carry them (those columns leave the payload). A
//! time column, when one is named, sets the message's `origin_timestamp`
//! and a header of that name: the connectors runtime (0.4 and 0.5) builds
//! the Iggy message from payload, id and headers only and stamps its own
//! origin timestamp, so the header is what reaches the topic.

use super::event_time;
use super::query::Statements;
use crate::client::gateway::{Column, Row};
use crate::message::{add_header, stable_id};
use iggy_connector_sdk::ProducedMessage;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

const ROW_KINDS: [&str; 4] = ["INSERT", "UPDATE_BEFORE", "UPDATE_AFTER", "DELETE"];

/// A slice of one result page, with what identifies it.
pub struct PageSlice<'a> {
    pub columns: &'a [Column],
    pub rows: &'a [Row],
    /// Index in the page of `rows[0]`.
    pub first_row: usize,
    pub job_id: Option<&'a str>,
    /// The job id, or the operation handle before the gateway names the job.
    pub query_key: &'a str,
    pub token: u64,
}

#[derive(Debug, Default)]
pub struct Mapped {
    pub messages: Vec<ProducedMessage>,
    /// Why each skipped row was skipped (only with `skip_errors`).
    pub skipped: Vec<String>,
    pub last_offset: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RowMapper {
    source: Option<String>,
    partition: Option<String>,
    offset: Option<String>,
    constant_source: Option<String>,
    timestamp: Option<String>,
}

/// Where the header columns sit in a page.
struct Layout {
    source: Option<usize>,
    partition: Option<usize>,
    offset: Option<usize>,
    timestamp: Option<usize>,
    payload: Vec<usize>,
}

impl RowMapper {
    pub fn new(statements: &Statements, timestamp_column: Option<String>) -> Self {
        Self {
            source: statements.header_columns.source.clone(),
            partition: statements.header_columns.partition.clone(),
            offset: statements.header_columns.offset.clone(),
            constant_source: statements.constant_source.clone(),
            timestamp: timestamp_column,
        }
    }

    /// `Err` when the page cannot be read at all (a header column the query
    /// does not return), or a row is bad and `skip_errors` is off.
    pub fn map(&self, slice: &PageSlice<'_>, skip_errors: bool) -> Result<Mapped, String> {
        let layout = self.layout(slice.columns)?;
        let mut mapped = Mapped::default();
        for (index, row) in slice.rows.iter().enumerate() {
            let row_index = slice.first_row + index;
            match self.message(slice, &layout, row, row_index) {
                Ok((message, offset)) => {
                    mapped.messages.push(message);
                    if offset.is_some() {
                        mapped.last_offset = offset;
                    }
                }
                Err(reason) => {
                    let reason = format!("row {row_index} of page {}: {reason}", slice.token);
                    if !skip_errors {
                        return Err(reason);
                    }
                    mapped.skipped.push(reason);
                }
            }
        }
        Ok(mapped)
    }

    fn layout(&self, columns: &[Column]) -> Result<Layout, String> {
        let find = |setting: &str, name: &Option<String>| -> Result<Option<usize>, String> {
            let Some(name) = name else { return Ok(None) };
            columns
                .iter()
                .position(|column| &column.name == name)
                .map(Some)
                .ok_or_else(|| {
                    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                    format!(
                        "records.{setting} names column {name:?}, which the query does not return (it returns {names:?})"
                    )
                })
        };
        let source = find("header_columns.source", &self.source)?;
        let partition = find("header_columns.partition", &self.partition)?;
        let offset = find("header_columns.offset", &self.offset)?;
        // The time column stays in the payload too.
        let timestamp = find("timestamp_column", &self.timestamp)?;
        let headers = [source, partition, offset];
        let payload = (0..columns.len())
            .filter(|index| !headers.contains(&Some(*index)))
            .collect();
        Ok(Layout {
            source,
            partition,
            offset,
            timestamp,
            payload,
        })
    }

    fn message(
        &self,
        slice: &PageSlice<'_>,
        layout: &Layout,
        row: &Row,
        row_index: usize,
    ) -> Result<(ProducedMessage, Option<String>), String> {
        if row.fields.len() != slice.columns.len() {
            return Err(format!(
                "{} fields for {} columns",
                row.fields.len(),
                slice.columns.len()
            ));
        }
        if !ROW_KINDS.contains(&row.kind.as_str()) {
            return Err(format!("unknown row kind {:?}", row.kind));
        }
        let origin_timestamp = match layout.timestamp {
            Some(index) => event_time::origin_micros(&row.fields[index]).map_err(|reason| {
                format!(
                    "records.timestamp_column {:?}: {reason}",
                    slice.columns[index].name
                )
            })?,
            None => None,
        };
        let mut payload = String::with_capacity(64 + 24 * layout.payload.len());
        payload.push('{');
        for (n, index) in layout.payload.iter().enumerate() {
            if n > 0 {
                payload.push(',');
            }
            payload.push_str(
                &serde_json::Value::from(slice.columns[*index].name.as_str()).to_string(),
            );
            payload.push(':');
            payload.push_str(row.fields[*index].get());
        }
        payload.push('}');

        let mut headers = BTreeMap::new();
        add_header(&mut headers, "row_kind", &row.kind)?;
        if let Some(job_id) = slice.job_id {
            add_header(&mut headers, "job_id", job_id)?;
        }
        let text = |index: Option<usize>| index.and_then(|i| field_text(&row.fields[i]));
        let source = text(layout.source).or_else(|| self.constant_source.clone());
        let partition = text(layout.partition);
        let offset = text(layout.offset);
        for (key, value) in [
            ("source", &source),
            ("partition", &partition),
            ("offset", &offset),
        ] {
            if let Some(value) = value {
                add_header(&mut headers, key, value)?;
            }
        }
        if let Some(micros) = origin_timestamp {
            add_header(&mut headers, "origin_timestamp", &micros.to_string())?;
        }
        let last_offset = offset.map(|offset| match partition {
            Some(partition) => format!("{partition}:{offset}"),
            None => offset,
        });
        let row_text = row_index.to_string();
        let token_text = slice.token.to_string();
        let message = ProducedMessage {
            id: Some(stable_id(&[
                slice.query_key.as_bytes(),
                token_text.as_bytes(),
                row_text.as_bytes(),
            ])),
            checksum: None,
            timestamp: None,
            origin_timestamp,
            headers: Some(headers),
            payload: payload.into_bytes(),
        };
        Ok((message, last_offset))
    }
}

/// A field as header text: strings unquoted, null as no header.
fn field_text(field: &RawValue) -> Option<String> {
    let raw = field.get();
    if raw == "null" {
        return None;
    }
    if raw.starts_with('"') {
        return serde_json::from_str::<String>(raw).ok();
    }
    Some(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HeaderColumns;

    fn columns(names: &[&str]) -> Vec<Column> {
        names
            .iter()
            .map(|name| Column {
                name: name.to_string(),
            })
            .collect()
    }

    fn row(kind: &str, fields: &str) -> Row {
        serde_json::from_str(&format!(r#"{{"kind":"{kind}","fields":{fields}}}"#)).unwrap()
    }

    fn mapper(header_columns: HeaderColumns, constant_source: Option<&str>) -> RowMapper {
        RowMapper::new(
            &Statements {
                setup: vec![],
                select: String::new(),
                header_columns,
                constant_source: constant_source.map(str::to_string),
            },
            None,
        )
    }

    fn header(message: &ProducedMessage, key: &str) -> Option<String> {
        message.headers.as_ref().and_then(|headers| {
            headers
                .iter()
                .find(|(k, _)| k.as_str().ok() == Some(key))
                .map(|(_, v)| v.to_string_value())
        })
    }

    #[test]
    fn rows_become_json_keyed_by_column_with_kind_and_job_headers() {
        // Rows as recorded in gw-22-select-changelog-agg-page019.json.
        let columns = columns(&["k", "cnt", "total"]);
        let rows = vec![
            row("UPDATE_BEFORE", r#"["9", 1, 81.99]"#),
            row("UPDATE_AFTER", r#"["9", 2, 327.59]"#),
        ];
        let slice = PageSlice {
            columns: &columns,
            rows: &rows,
            first_row: 1,
            job_id: Some("facd236663e482f8233c9bbc15477407"),
            query_key: "facd236663e482f8233c9bbc15477407",
            token: 13,
        };
        let mapped = mapper(HeaderColumns::default(), None)
            .map(&slice, false)
            .unwrap();
        assert_eq!(mapped.messages.len(), 2);
        let first = &mapped.messages[0];
        assert_eq!(first.payload, br#"{"k":"9","cnt":1,"total":81.99}"#);
        assert_eq!(header(first, "row_kind").as_deref(), Some("UPDATE_BEFORE"));
        assert_eq!(
            header(first, "job_id").as_deref(),
            Some("facd236663e482f8233c9bbc15477407")
        );
        assert_eq!(
            header(&mapped.messages[1], "row_kind").as_deref(),
            Some("UPDATE_AFTER")
        );
        assert_eq!(header(first, "source"), None);
        let again = mapper(HeaderColumns::default(), None)
            .map(&slice, false)
            .unwrap();
        assert_eq!(again.messages[0].id, first.id, "the same row keeps its id");
        assert_ne!(mapped.messages[1].id, first.id);
    }

    #[test]
    fn big_numbers_keep_their_digits_and_header_columns_leave_the_payload() {
        let columns = columns(&["order_id", "topic", "part", "off"]);
        let rows = vec![row(
            "INSERT",
            r#"[7930080602373774240, "orders", 3, 1234567890123]"#,
        )];
        let slice = PageSlice {
            columns: &columns,
            rows: &rows,
            first_row: 0,
            job_id: None,
            query_key: "op",
            token: 1,
        };
        let headers = HeaderColumns {
            source: Some("topic".into()),
            partition: Some("part".into()),
            offset: Some("off".into()),
        };
        let mapped = mapper(headers, Some("ignored")).map(&slice, false).unwrap();
        let message = &mapped.messages[0];
        assert_eq!(message.payload, br#"{"order_id":7930080602373774240}"#);
        assert_eq!(header(message, "source").as_deref(), Some("orders"));
        assert_eq!(header(message, "partition").as_deref(), Some("3"));
        assert_eq!(header(message, "offset").as_deref(), Some("1234567890123"));
        assert_eq!(mapped.last_offset.as_deref(), Some("3:1234567890123"));
    }

    #[test]
    fn bad_rows_fail_or_are_skipped() {
        let columns = columns(&["a", "b"]);
        let rows = vec![
            row("INSERT", "[1, 2]"),
            row("INSERT", "[1]"),
            row("UPSERT", "[1, 2]"),
        ];
        let slice = PageSlice {
            columns: &columns,
            rows: &rows,
            first_row: 0,
            job_id: Some("j"),
            query_key: "j",
            token: 4,
        };
        let mapper = mapper(HeaderColumns::default(), Some("datagen"));
        let error = mapper.map(&slice, false).unwrap_err();
        assert_eq!(error, "row 1 of page 4: 1 fields for 2 columns");
        let mapped = mapper.map(&slice, true).unwrap();
        assert_eq!(mapped.messages.len(), 1);
        assert_eq!(
            header(&mapped.messages[0], "source").as_deref(),
            Some("datagen")
        );
        assert_eq!(mapped.skipped.len(), 2);
        assert!(mapped.skipped[1].contains("unknown row kind \"UPSERT\""));
    }

    /// The first page of a query whose job is not known yet.
    fn first_page<'a>(columns: &'a [Column], rows: &'a [Row]) -> PageSlice<'a> {
        PageSlice {
            columns,
            rows,
            first_row: 0,
            job_id: None,
            query_key: "q",
            token: 0,
        }
    }

    #[test]
    fn a_missing_header_column_is_a_page_error() {
        let columns = columns(&["a"]);
        let rows = vec![row("INSERT", "[1]")];
        let slice = first_page(&columns, &rows);
        let headers = HeaderColumns {
            offset: Some("off".into()),
            ..HeaderColumns::default()
        };
        let error = mapper(headers, None).map(&slice, true).unwrap_err();
        assert!(error.contains("records.header_columns.offset"), "{error}");
    }

    #[test]
    fn a_time_column_sets_the_origin_timestamp_and_stays_in_the_payload() {
        let columns = columns(&["id", "ts"]);
        let rows = vec![
            row("INSERT", r#"[1, "2026-11-21T09:58:29.108Z"]"#),
            row("INSERT", "[2, null]"),
            row("INSERT", r#"[3, "soon"]"#),
        ];
        let slice = first_page(&columns, &rows);
        let time_mapper = |column: &str| RowMapper {
            timestamp: Some(column.into()),
            ..mapper(HeaderColumns::default(), None)
        };
        let mapper = time_mapper("ts");
        let error = mapper.map(&slice, false).unwrap_err();
        assert!(
            error.contains(
                r#"row 2 of page 0: records.timestamp_column "ts": "soon" is not a time"#
            ),
            "{error}"
        );
        let mapped = mapper.map(&slice, true).unwrap();
        assert_eq!(mapped.skipped.len(), 1);
        assert_eq!(
            mapped.messages[0].origin_timestamp,
            Some(1_795_255_109_108_000)
        );
        assert_eq!(
            header(&mapped.messages[0], "origin_timestamp").as_deref(),
            Some("1795255109108000")
        );
        assert_eq!(header(&mapped.messages[1], "origin_timestamp"), None);
        assert_eq!(
            mapped.messages[0].payload,
            br#"{"id":1,"ts":"2026-11-21T09:58:29.108Z"}"#
        );
        assert_eq!(mapped.messages[1].origin_timestamp, None);

        let error = time_mapper("event_time").map(&slice, true).unwrap_err();
        assert!(
            error.contains(r#"records.timestamp_column names column "event_time""#),
            "{error}"
        );
    }
}
