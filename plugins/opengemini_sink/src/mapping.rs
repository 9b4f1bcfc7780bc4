//! One Iggy message → line-protocol lines: a JSON payload becomes one point
//! as `mapping` says; a text payload passes through after validation.
//! Everything in a point comes from the message itself (never the clock),
//! so a redelivered message overwrites its point instead of adding one. Pure.

use crate::batch::LineBatch;
use crate::config::{
    ArrayRule, LargeUnsignedRule, MappingConfig, MetadataTag, NumberRule, TimeUnit,
};
use crate::line_protocol::{
    Field, FieldValue, MAX_NANOS, MIN_NANOS, Part, Point, Tag, check, preview, push_timestamp,
};
use crate::validate::check_line;
use iggy_common::{HeaderKey, HeaderKind, HeaderValue};
use iggy_connector_sdk::{ConsumedMessage, Payload};
use simd_json::{OwnedValue, StaticNode};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::UNIX_EPOCH;

/// Deeper payloads are refused rather than flattened into absurd keys.
const MAX_DEPTH: usize = 32;

/// Where a batch comes from, for the metadata tags.
pub struct Origin<'a> {
    pub stream: &'a str,
    pub topic: &'a str,
    pub partition: String,
}

/// A dotted path into the payload and the key it is written under.
#[derive(Debug)]
struct FieldPath {
    text: String,
    segments: Vec<String>,
    /// The segments joined with the flatten separator.
    key: String,
}

impl FieldPath {
    /// `written_as` is how the key is used in the point, if it is written.
    fn parse(text: &str, separator: &str, written_as: Option<Part>) -> Result<Self, String> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("`{text}` is not a field path (empty segment)"));
        }
        let key = segments.join(separator);
        if let Some(part) = written_as {
            check(part, &key).map_err(|reason| format!("`{text}`: {reason}"))?;
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
            key,
        })
    }

    fn lookup<'v>(&self, root: &'v OwnedValue) -> Option<&'v OwnedValue> {
        self.segments
            .iter()
            .try_fold(root, |value, segment| match value {
                OwnedValue::Object(object) => object.get(segment.as_str()),
                _ => None,
            })
    }
}

/// Payload paths already used for the measurement, time or tags, which
/// "all remaining fields" leaves out.
#[derive(Debug, Default)]
struct Excluded {
    whole: bool,
    children: HashMap<String, Excluded>,
}

impl Excluded {
    fn add(&mut self, segments: &[String]) {
        match segments.split_first() {
            None => self.whole = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().add(rest),
        }
    }
}

#[derive(Debug)]
pub struct Mapper {
    measurement: Option<String>,
    measurement_field: Option<FieldPath>,
    timestamp_field: Option<FieldPath>,
    timestamp_unit: TimeUnit,
    tag_fields: Vec<FieldPath>,
    header_tags: Vec<(String, HeaderKey)>,
    metadata_tags: Vec<MetadataTag>,
    fields: Vec<FieldPath>,
    excluded: Excluded,
    separator: String,
    offset_nanos: bool,
    arrays: ArrayRule,
    numbers: NumberRule,
    large_unsigned: LargeUnsignedRule,
    precision: TimeUnit,
}

impl Mapper {
    /// Checks the mapping settings; messages name the setting.
    pub fn new(config: &MappingConfig, precision: TimeUnit) -> Result<Self, String> {
        let separator = config.flatten_separator.clone();
        check(Part::FieldKey, &separator)
            .map_err(|reason| format!("mapping.flatten_separator: {reason}"))?;
        if let Some(measurement) = &config.measurement {
            check(Part::Measurement, measurement)
                .map_err(|reason| format!("mapping.measurement: {reason}"))?;
        }
        let path = |setting: &str, text: &str, written_as: Option<Part>| {
            FieldPath::parse(text, &separator, written_as)
                .map_err(|reason| format!("mapping.{setting}: {reason}"))
        };
        let measurement_field = config
            .measurement_field
            .as_deref()
            .map(|text| path("measurement_field", text, None))
            .transpose()?;
        let timestamp_field = config
            .timestamp_field
            .as_deref()
            .map(|text| path("timestamp_field", text, None))
            .transpose()?;
        let tag_fields = config
            .tags
            .iter()
            .map(|text| path("tags", text, Some(Part::TagKey)))
            .collect::<Result<Vec<_>, _>>()?;
        let fields = config
            .fields
            .iter()
            .map(|text| path("fields", text, Some(Part::FieldKey)))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(both) = fields
            .iter()
            .find(|f| tag_fields.iter().any(|t| t.text == f.text))
        {
            return Err(format!(
                "mapping: `{}` is listed both in tags and in fields",
                both.text
            ));
        }
        let header_tags = config
            .header_tags
            .iter()
            .map(|name| {
                check(Part::TagKey, name)
                    .map_err(|reason| format!("mapping.header_tags: {reason}"))?;
                let key = HeaderKey::try_from(name.as_str())
                    .map_err(|error| format!("mapping.header_tags: `{name}`: {error}"))?;
                Ok((name.clone(), key))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut excluded = Excluded::default();
        for used in measurement_field
            .iter()
            .chain(timestamp_field.iter())
            .chain(tag_fields.iter())
        {
            excluded.add(&used.segments);
        }
        Ok(Self {
            measurement: config.measurement.clone(),
            measurement_field,
            timestamp_field,
            timestamp_unit: config.timestamp_unit,
            tag_fields,
            header_tags,
            metadata_tags: config.metadata_tags.clone(),
            fields,
            excluded,
            separator,
            offset_nanos: config.offset_nanos && precision == TimeUnit::Nanoseconds,
            arrays: config.arrays,
            numbers: config.numbers,
            large_unsigned: config.large_unsigned,
            precision,
        })
    }

    /// Appends the message's lines to `batch` and returns how many; on
    /// error nothing is appended.
    pub fn append(
        &self,
        origin: &Origin<'_>,
        message: &ConsumedMessage,
        batch: &mut LineBatch,
    ) -> Result<usize, String> {
        match &message.payload {
            Payload::Json(value) => {
                let point = self.point(origin, message, value)?;
                point.write_line(batch.text_mut())?;
                batch.end_line(message.offset);
                Ok(1)
            }
            Payload::Text(text) => self.append_text(text, message, batch),
            Payload::Raw(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => self.append_text(text, message, batch),
                Err(_) => Err("the raw payload is not UTF-8 line protocol".into()),
            },
            Payload::Proto(_) | Payload::FlatBuffer(_) | Payload::Avro(_) => Err(
                "only json, text and raw payloads can be written (set the stream's schema)".into(),
            ),
        }
    }

    /// Line-protocol text, one point per line; blank lines and `#` comments
    /// are skipped, a line without a timestamp gets the message's.
    fn append_text(
        &self,
        text: &str,
        message: &ConsumedMessage,
        batch: &mut LineBatch,
    ) -> Result<usize, String> {
        let mark = batch.mark();
        let mut lines = 0;
        let mut default_timestamp = None;
        for (number, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let has_timestamp = match check_line(line, self.precision) {
                Ok(has_timestamp) => has_timestamp,
                Err(reason) => {
                    batch.rollback(mark);
                    return Err(format!("line {}: {reason}", number + 1));
                }
            };
            if has_timestamp {
                batch.text_mut().push_str(line);
                batch.text_mut().push('\n');
            } else {
                let timestamp = match default_timestamp {
                    Some(timestamp) => timestamp,
                    None => {
                        let timestamp = self.message_timestamp(message).inspect_err(|_| {
                            batch.rollback(mark);
                        })?;
                        *default_timestamp.insert(timestamp)
                    }
                };
                batch.text_mut().push_str(line);
                push_timestamp(batch.text_mut(), timestamp);
            }
            batch.end_line(message.offset);
            lines += 1;
        }
        if lines == 0 {
            return Err("the text payload holds no line-protocol lines".into());
        }
        Ok(lines)
    }

    fn point<'a>(
        &'a self,
        origin: &'a Origin<'_>,
        message: &'a ConsumedMessage,
        root: &'a OwnedValue,
    ) -> Result<Point<'a>, String> {
        if !matches!(root, OwnedValue::Object(_)) {
            return Err(format!("the JSON payload is {}, not an object", kind(root)));
        }
        let measurement = self.measurement(origin, root)?;
        let timestamp = match &self.timestamp_field {
            None => self.message_timestamp(message)?,
            Some(path) => {
                let nanos = payload_nanos(path, path.lookup(root), self.timestamp_unit)?;
                to_precision(nanos, self.precision)?
            }
        };
        let tags = self.tags(origin, message, root)?;
        let capacity = match (&self.fields[..], root) {
            ([], OwnedValue::Object(object)) => object.len(),
            (listed, _) => listed.len(),
        };
        let mut fields = Vec::with_capacity(capacity);
        if self.fields.is_empty() {
            if let OwnedValue::Object(object) = root {
                self.flatten(None, object, Some(&self.excluded), 0, &mut fields)?;
            }
        } else {
            for path in &self.fields {
                match path.lookup(root) {
                    None => {}
                    Some(OwnedValue::Object(object)) => {
                        self.flatten(Some(&path.key), object, None, 1, &mut fields)?
                    }
                    Some(value) => {
                        if let Some(field) = self.field_value(&path.key, value)? {
                            fields.push((Cow::Borrowed(path.key.as_str()), field));
                        }
                    }
                }
            }
        }
        // Flattening can produce a key twice (`a_b` and `a.b`): the first wins.
        if !fields.is_sorted_by(|a, b| a.0 < b.0) {
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            fields.dedup_by(|later, earlier| later.0 == earlier.0);
        }
        Ok(Point {
            measurement,
            tags,
            fields,
            timestamp,
        })
    }

    fn measurement<'a>(
        &'a self,
        origin: &'a Origin<'_>,
        root: &'a OwnedValue,
    ) -> Result<Cow<'a, str>, String> {
        let fallback = || self.measurement.as_deref().map(Cow::Borrowed);
        let Some(path) = &self.measurement_field else {
            return Ok(fallback().unwrap_or(Cow::Borrowed(origin.topic)));
        };
        match path.lookup(root) {
            Some(OwnedValue::String(name)) if !name.is_empty() => Ok(Cow::Borrowed(name)),
            None | Some(OwnedValue::Static(StaticNode::Null)) | Some(OwnedValue::String(_)) => {
                fallback().ok_or_else(|| {
                    format!(
                        "measurement field `{}` is missing or empty and no `measurement` is set",
                        path.text
                    )
                })
            }
            Some(other) => Err(format!(
                "measurement field `{}` is {}, not a string",
                path.text,
                kind(other)
            )),
        }
    }

    /// Tags sorted by key (as openGemini stores them); a key given twice
    /// keeps its first value, in the order payload, headers, metadata.
    fn tags<'a>(
        &'a self,
        origin: &'a Origin<'_>,
        message: &'a ConsumedMessage,
        root: &'a OwnedValue,
    ) -> Result<Vec<Tag<'a>>, String> {
        let mut tags = Vec::with_capacity(
            self.tag_fields.len() + self.header_tags.len() + self.metadata_tags.len(),
        );
        for path in &self.tag_fields {
            if let Some(value) = path.lookup(root)
                && let Some(text) = tag_text(value)
                    .map_err(|what| format!("tag field `{}` is {what}", path.text))?
            {
                tags.push((Cow::Borrowed(path.key.as_str()), text));
            }
        }
        if let Some(headers) = &message.headers {
            for (name, key) in &self.header_tags {
                if let Some(value) = headers.get(key) {
                    tags.push((Cow::Borrowed(name.as_str()), header_text(name, value)?));
                }
            }
        }
        for tag in &self.metadata_tags {
            let (key, value) = match tag {
                MetadataTag::Stream => ("iggy_stream", origin.stream),
                MetadataTag::Topic => ("iggy_topic", origin.topic),
                MetadataTag::Partition => ("iggy_partition", origin.partition.as_str()),
            };
            tags.push((Cow::Borrowed(key), Cow::Borrowed(value)));
        }
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        tags.dedup_by(|later, earlier| later.0 == earlier.0);
        Ok(tags)
    }

    /// Every scalar under `object`, nested objects joined with the separator.
    fn flatten<'a>(
        &'a self,
        prefix: Option<&str>,
        object: &'a simd_json::owned::Object,
        excluded: Option<&Excluded>,
        depth: usize,
        fields: &mut Vec<Field<'a>>,
    ) -> Result<(), String> {
        if depth >= MAX_DEPTH {
            return Err(format!("the payload nests objects deeper than {MAX_DEPTH}"));
        }
        // Most payloads exclude nothing: skip the lookups then.
        let excluded = excluded.filter(|e| !e.children.is_empty());
        for (key, value) in object.iter() {
            let node = excluded.and_then(|e| e.children.get(key.as_str()));
            if node.is_some_and(|n| n.whole) {
                continue;
            }
            let name = match prefix {
                None => Cow::Borrowed(key.as_str()),
                Some(prefix) => Cow::Owned(format!("{prefix}{}{key}", self.separator)),
            };
            match value {
                OwnedValue::Object(inner) => {
                    self.flatten(Some(&name), inner, node, depth + 1, fields)?
                }
                value => {
                    if let Some(field) = self.field_value(&name, value)? {
                        fields.push((name, field));
                    }
                }
            }
        }
        Ok(())
    }

    /// The JSON → line-protocol type rules; `None` leaves the field out.
    fn field_value<'a>(
        &self,
        key: &str,
        value: &'a OwnedValue,
    ) -> Result<Option<FieldValue<'a>>, String> {
        let float = self.numbers == NumberRule::Float;
        Ok(match value {
            OwnedValue::Static(StaticNode::Null) => None,
            OwnedValue::Static(StaticNode::Bool(b)) => Some(FieldValue::Bool(*b)),
            OwnedValue::Static(StaticNode::I64(n)) if float => Some(FieldValue::Float(*n as f64)),
            OwnedValue::Static(StaticNode::I64(n)) => Some(FieldValue::Integer(*n)),
            OwnedValue::Static(StaticNode::U64(n)) if float => Some(FieldValue::Float(*n as f64)),
            OwnedValue::Static(StaticNode::U64(n)) => match i64::try_from(*n) {
                Ok(n) => Some(FieldValue::Integer(n)),
                Err(_) if self.large_unsigned == LargeUnsignedRule::Float => {
                    Some(FieldValue::Float(*n as f64))
                }
                Err(_) => {
                    return Err(format!(
                        "field `{}` is {n}, above the largest integer openGemini stores \
                         (set mapping.large_unsigned = \"float\" to write it as a float)",
                        preview(key)
                    ));
                }
            },
            OwnedValue::Static(StaticNode::F64(n)) if n.is_finite() => Some(FieldValue::Float(*n)),
            OwnedValue::Static(StaticNode::F64(n)) => {
                return Err(format!(
                    "field `{}` is {n}, not a finite number",
                    preview(key)
                ));
            }
            OwnedValue::String(text) => Some(FieldValue::Text(Cow::Borrowed(text))),
            OwnedValue::Array(_) if self.arrays == ArrayRule::Skip => None,
            OwnedValue::Array(_) => Some(FieldValue::Text(Cow::Owned(
                simd_json::to_string(value).map_err(|e| format!("field `{key}`: {e}"))?,
            ))),
            // Objects are flattened by the caller; reaching here means an
            // object under a listed path, handled there too.
            OwnedValue::Object(_) => None,
        })
    }

    /// The Iggy timestamp (µs), plus `offset % 1000` ns when configured.
    fn message_timestamp(&self, message: &ConsumedMessage) -> Result<i64, String> {
        let spread = match self.offset_nanos {
            true => i128::from(message.offset % 1_000),
            false => 0,
        };
        to_precision(
            i128::from(message.timestamp) * 1_000 + spread,
            self.precision,
        )
    }
}

/// A tag value from a payload field; `Err` names what it is instead.
fn tag_text(value: &OwnedValue) -> Result<Option<Cow<'_, str>>, String> {
    Ok(match value {
        OwnedValue::Static(StaticNode::Null) => None,
        OwnedValue::String(text) => Some(Cow::Borrowed(text)),
        OwnedValue::Static(StaticNode::Bool(b)) => {
            Some(Cow::Borrowed(if *b { "true" } else { "false" }))
        }
        OwnedValue::Static(StaticNode::I64(n)) => Some(Cow::Owned(n.to_string())),
        OwnedValue::Static(StaticNode::U64(n)) => Some(Cow::Owned(n.to_string())),
        OwnedValue::Static(StaticNode::F64(n)) => Some(Cow::Owned(n.to_string())),
        OwnedValue::Array(_) | OwnedValue::Object(_) => {
            return Err(format!("{}, not a scalar", kind(value)));
        }
    })
}

fn header_text<'a>(name: &str, value: &'a HeaderValue) -> Result<Cow<'a, str>, String> {
    match value.kind() {
        HeaderKind::String | HeaderKind::Raw => std::str::from_utf8(value.as_bytes())
            .map(Cow::Borrowed)
            .map_err(|_| format!("header `{name}` is not UTF-8 text")),
        _ => Ok(Cow::Owned(value.to_string_value())),
    }
}

fn kind(value: &OwnedValue) -> &'static str {
    match value {
        OwnedValue::Static(StaticNode::Null) => "null",
        OwnedValue::Static(StaticNode::Bool(_)) => "a boolean",
        OwnedValue::Static(_) => "a number",
        OwnedValue::String(_) => "a string",
        OwnedValue::Array(_) => "an array",
        OwnedValue::Object(_) => "an object",
    }
}

/// A payload time in nanoseconds: a number in `unit`, the same as a
/// string of digits, or an RFC 3339 time in UTC.
fn payload_nanos(
    path: &FieldPath,
    value: Option<&OwnedValue>,
    unit: TimeUnit,
) -> Result<i128, String> {
    let field = &path.text;
    match value {
        None | Some(OwnedValue::Static(StaticNode::Null)) => Err(format!(
            "timestamp field `{field}` is missing (the time is never taken from the clock)"
        )),
        Some(OwnedValue::Static(StaticNode::I64(n))) => Ok(i128::from(*n) * unit.nanos()),
        Some(OwnedValue::Static(StaticNode::U64(n))) => Ok(i128::from(*n) * unit.nanos()),
        Some(OwnedValue::Static(StaticNode::F64(n))) if n.is_finite() => {
            // `as` saturates; the range check afterwards refuses the extremes.
            Ok((n * unit.nanos() as f64).round() as i128)
        }
        Some(OwnedValue::String(text)) => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return text
                    .parse::<i64>()
                    .map(|n| i128::from(n) * unit.nanos())
                    .map_err(|_| format!("timestamp field `{field}` is out of range"));
            }
            let time = humantime::parse_rfc3339_weak(text).map_err(|_| {
                format!(
                    "timestamp field `{field}` (`{}`) is neither a number nor an RFC 3339 UTC time",
                    preview(text)
                )
            })?;
            let since = time
                .duration_since(UNIX_EPOCH)
                .map_err(|_| format!("timestamp field `{field}` is before 1970"))?;
            Ok(since.as_nanos() as i128)
        }
        Some(other) => Err(format!(
            "timestamp field `{field}` is {}, not a time",
            kind(other)
        )),
    }
}

/// Nanoseconds → the write precision (rounded down), within the range
/// openGemini stores.
fn to_precision(nanos: i128, precision: TimeUnit) -> Result<i64, String> {
    // i128 division is slow; nanoseconds, the default, need none.
    let units = match precision {
        TimeUnit::Nanoseconds => nanos,
        _ => nanos.div_euclid(precision.nanos()),
    };
    let back = units * precision.nanos();
    if !(MIN_NANOS..=MAX_NANOS).contains(&nanos) || back < MIN_NANOS {
        return Err(format!(
            "the time {nanos} ns is outside the range openGemini stores (1677-09-21 to 2262-04-11)"
        ));
    }
    i64::try_from(units).map_err(|_| format!("the time {nanos} ns does not fit the precision"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MappingConfig;
    use std::collections::BTreeMap;

    const MESSAGE_TS_US: u64 = 1_700_000_000_123_456;

    fn mapper(mapping: serde_json::Value, precision: TimeUnit) -> Mapper {
        let config: MappingConfig = serde_json::from_value(mapping).unwrap();
        Mapper::new(&config, precision).unwrap()
    }

    fn mapper_error(mapping: serde_json::Value) -> String {
        let config: MappingConfig = serde_json::from_value(mapping).unwrap();
        Mapper::new(&config, TimeUnit::Nanoseconds).unwrap_err()
    }

    fn json_message(payload: &str) -> ConsumedMessage {
        let mut bytes = payload.as_bytes().to_vec();
        message(Payload::Json(
            simd_json::to_owned_value(&mut bytes).unwrap(),
        ))
    }

    fn message(payload: Payload) -> ConsumedMessage {
        ConsumedMessage {
            id: 1,
            offset: 42,
            checksum: 0,
            timestamp: MESSAGE_TS_US,
            origin_timestamp: 0,
            headers: None,
            payload,
        }
    }

    fn origin() -> Origin<'static> {
        Origin {
            stream: "shop",
            topic: "orders",
            partition: "3".into(),
        }
    }

    fn lines(mapper: &Mapper, message: &ConsumedMessage) -> Result<String, String> {
        let mut batch = LineBatch::default();
        mapper.append(&origin(), message, &mut batch)?;
        Ok(String::from_utf8(batch.body(0..batch.len()).to_vec()).unwrap())
    }

    fn one(mapping: serde_json::Value, payload: &str) -> Result<String, String> {
        lines(
            &mapper(mapping, TimeUnit::Nanoseconds),
            &json_message(payload),
        )
    }

    #[test]
    fn defaults_write_every_field_under_the_topic_at_the_message_time() {
        let line = one(
            serde_json::json!({}),
            r#"{"seq":7,"price":9.5,"ok":true,"name":"a b","none":null}"#,
        )
        .unwrap();
        assert_eq!(
            line,
            "orders name=\"a b\",ok=true,price=9.5,seq=7i 1700000000123456042\n"
        );
    }

    #[test]
    fn measurement_tags_timestamp_and_listed_fields_come_from_the_payload() {
        let mapping = serde_json::json!({
            "measurement_field": "kind",
            "timestamp_field": "time",
            "timestamp_unit": "s",
            "tags": ["host", "dc.name"],
            "fields": ["usage", "geo"],
        });
        let line = one(
            mapping,
            r#"{"kind":"cpu","time":1700000000,"host":"h1","dc":{"name":"eu"},"usage":0.5,"geo":{"lon":2,"lat":1.5},"other":1}"#,
        )
        .unwrap();
        assert_eq!(
            line,
            "cpu,dc_name=eu,host=h1 geo_lat=1.5,geo_lon=2i,usage=0.5 1700000000000000000\n"
        );
    }

    #[test]
    fn remaining_fields_leave_out_what_tags_time_and_measurement_use() {
        let mapping = serde_json::json!({
            "measurement_field": "kind",
            "timestamp_field": "meta.at",
            "tags": ["meta.host"],
        });
        let line = one(
            mapping,
            r#"{"kind":"cpu","meta":{"at":5,"host":"h","zone":"z"},"v":1}"#,
        )
        .unwrap();
        assert_eq!(line, "cpu,meta_host=h meta_zone=\"z\",v=1i 5000000\n");
    }

    #[test]
    fn nested_objects_flatten_with_the_separator_and_duplicates_keep_the_first() {
        let mapping = serde_json::json!({"flatten_separator": "."});
        let line = one(mapping, r#"{"a":{"b":{"c":1}},"x":{}}"#).unwrap();
        assert_eq!(line, "orders a.b.c=1i 1700000000123456042\n");
        let line = one(serde_json::json!({}), r#"{"a_b":1,"a":{"b":2}}"#).unwrap();
        assert_eq!(line, "orders a_b=1i 1700000000123456042\n");
    }

    #[test]
    fn arrays_become_json_strings_or_are_skipped() {
        let line = one(
            serde_json::json!({}),
            r#"{"v":1,"list":[1,"a\"b",{"c":null}]}"#,
        )
        .unwrap();
        assert_eq!(
            line,
            "orders list=\"[1,\\\"a\\\\\\\"b\\\",{\\\"c\\\":null}]\",v=1i 1700000000123456042\n"
        );
        let line = one(
            serde_json::json!({"arrays": "skip"}),
            r#"{"v":1,"list":[1]}"#,
        )
        .unwrap();
        assert_eq!(line, "orders v=1i 1700000000123456042\n");
    }

    #[test]
    fn numbers_follow_the_configured_rules() {
        let big = r#"{"big":18446744073709551615,"max":9223372036854775807}"#;
        let error = one(serde_json::json!({}), big).unwrap_err();
        assert!(
            error.contains("field `big` is 18446744073709551615"),
            "{error}"
        );
        let line = one(serde_json::json!({"large_unsigned": "float"}), big).unwrap();
        assert_eq!(
            line,
            "orders big=18446744073709552000,max=9223372036854775807i 1700000000123456042\n"
        );
        let line = one(
            serde_json::json!({"numbers": "float"}),
            r#"{"a":1,"b":-2,"c":2.5}"#,
        )
        .unwrap();
        assert_eq!(line, "orders a=1,b=-2,c=2.5 1700000000123456042\n");
        let line = one(serde_json::json!({}), r#"{"a":1.0,"b":-0.0,"c":1e300}"#).unwrap();
        assert!(
            line.starts_with("orders a=1,b=-0,c=1000000000000"),
            "{line}"
        );
    }

    #[test]
    fn hostile_strings_are_escaped_and_never_break_the_line() {
        let line = one(
            serde_json::json!({"tags": ["t"]}),
            r#"{"t":"a,b=c d","s":"x\ny\"z\\","k ey,=":1}"#,
        )
        .unwrap();
        assert_eq!(
            line,
            "orders,t=a\\,b\\=c\\ d k\\ ey\\,\\==1i,s=\"x\\ny\\\"z\\\\\" 1700000000123456042\n"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn records_that_cannot_be_points_are_refused_with_a_reason() {
        let long_key = format!(r#"{{"{}":1}}"#, "k".repeat(300));
        let cases = [
            (serde_json::json!({}), "[1,2]", "is an array, not an object"),
            (serde_json::json!({}), "{}", "no fields"),
            (serde_json::json!({}), r#"{"n":null}"#, "no fields"),
            (serde_json::json!({}), r#"{"time":1}"#, "`time` is reserved"),
            (serde_json::json!({}), &long_key, "300 bytes"),
            (
                serde_json::json!({"tags": ["t"]}),
                r#"{"t":{"a":1},"v":1}"#,
                "tag field `t` is an object",
            ),
            (
                serde_json::json!({"tags": ["t"]}),
                r#"{"t":"a\nb","v":1}"#,
                "control character",
            ),
            (
                serde_json::json!({"measurement_field": "m"}),
                r#"{"v":1}"#,
                "measurement field `m` is missing",
            ),
            (
                serde_json::json!({"measurement_field": "m"}),
                r#"{"m":5,"v":1}"#,
                "is a number, not a string",
            ),
            (
                serde_json::json!({"measurement_field": "m"}),
                r##"{"m":"#x","v":1}"##,
                "comment",
            ),
            (
                serde_json::json!({"timestamp_field": "t"}),
                r#"{"v":1}"#,
                "never taken from the clock",
            ),
            (
                serde_json::json!({"timestamp_field": "t"}),
                r#"{"t":true,"v":1}"#,
                "is a boolean, not a time",
            ),
            (
                serde_json::json!({"timestamp_field": "t"}),
                r#"{"t":"soon","v":1}"#,
                "neither a number nor",
            ),
            (
                serde_json::json!({"timestamp_field": "t", "timestamp_unit": "s"}),
                r#"{"t":9300000000,"v":1}"#,
                "outside the range",
            ),
        ];
        for (mapping, payload, expected) in cases {
            let error = one(mapping.clone(), payload).unwrap_err();
            assert!(error.contains(expected), "{mapping} {payload}: {error}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let payload = format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40));
        let error = one(serde_json::json!({}), &payload).unwrap_err();
        assert!(error.contains("deeper than 32"), "{error}");
    }

    #[test]
    fn the_measurement_falls_back_to_the_fixed_one_then_the_topic() {
        let mapping = serde_json::json!({"measurement": "fixed", "measurement_field": "m"});
        assert!(
            one(mapping.clone(), r#"{"v":1}"#)
                .unwrap()
                .starts_with("fixed ")
        );
        assert!(
            one(mapping.clone(), r#"{"m":"","v":1}"#)
                .unwrap()
                .starts_with("fixed ")
        );
        assert!(
            one(mapping, r#"{"m":"ok","v":1}"#)
                .unwrap()
                .starts_with("ok ")
        );
        assert!(
            one(serde_json::json!({"measurement": "温度"}), r#"{"v":1}"#)
                .unwrap()
                .starts_with("温度 ")
        );
    }

    #[test]
    fn timestamps_convert_to_the_precision_and_truncate() {
        let at = |unit: &str, precision: TimeUnit, payload: &str| {
            let mapper = mapper(
                serde_json::json!({"timestamp_field": "t", "timestamp_unit": unit}),
                precision,
            );
            let line = lines(&mapper, &json_message(payload)).unwrap();
            line.trim_end().rsplit(' ').next().unwrap().to_string()
        };
        assert_eq!(
            at("ms", TimeUnit::Nanoseconds, r#"{"t":1700000000123,"v":1}"#),
            "1700000000123000000"
        );
        assert_eq!(
            at("ms", TimeUnit::Seconds, r#"{"t":1700000000999,"v":1}"#),
            "1700000000"
        );
        assert_eq!(
            at(
                "ns",
                TimeUnit::Microseconds,
                r#"{"t":1700000000123456789,"v":1}"#
            ),
            "1700000000123456"
        );
        assert_eq!(
            at("s", TimeUnit::Milliseconds, r#"{"t":1.5,"v":1}"#),
            "1500"
        );
        assert_eq!(
            at(
                "ms",
                TimeUnit::Milliseconds,
                r#"{"t":"1700000000123","v":1}"#
            ),
            "1700000000123"
        );
        assert_eq!(
            at("ms", TimeUnit::Milliseconds, r#"{"t":-1500,"v":1}"#),
            "-1500"
        );
        assert_eq!(at("s", TimeUnit::Seconds, r#"{"t":-1,"v":1}"#), "-1");
        assert_eq!(
            at(
                "ms",
                TimeUnit::Nanoseconds,
                r#"{"t":"2023-11-14T22:13:20.5Z","v":1}"#
            ),
            "1700000000500000000"
        );
        // Rounded down, also before 1970.
        assert_eq!(at("ns", TimeUnit::Seconds, r#"{"t":-1,"v":1}"#), "-1");
        // The Iggy timestamp (µs) in each precision.
        for (precision, expected) in [
            (TimeUnit::Nanoseconds, "1700000000123456042"),
            (TimeUnit::Microseconds, "1700000000123456"),
            (TimeUnit::Milliseconds, "1700000000123"),
            (TimeUnit::Seconds, "1700000000"),
        ] {
            let line = lines(
                &mapper(serde_json::json!({}), precision),
                &json_message(r#"{"v":1}"#),
            )
            .unwrap();
            assert!(line.ends_with(&format!(" {expected}\n")), "{line}");
        }
    }

    #[test]
    fn messages_sharing_an_iggy_timestamp_get_distinct_nanoseconds() {
        let spread = mapper(serde_json::json!({}), TimeUnit::Nanoseconds);
        let plain = mapper(
            serde_json::json!({"offset_nanos": false}),
            TimeUnit::Nanoseconds,
        );
        let micros = mapper(serde_json::json!({}), TimeUnit::Microseconds);
        let mut message = json_message(r#"{"v":1}"#);
        let time = |mapper: &Mapper, message: &ConsumedMessage| {
            let line = lines(mapper, message).unwrap();
            line.trim_end().rsplit(' ').next().unwrap().to_string()
        };
        for (offset, expected) in [(0, "000"), (7, "007"), (999, "999"), (1042, "042")] {
            message.offset = offset;
            assert_eq!(
                time(&spread, &message),
                format!("1700000000123456{expected}")
            );
            assert_eq!(time(&plain, &message), "1700000000123456000");
            assert_eq!(time(&micros, &message), "1700000000123456");
        }
        // A payload time is used as it is.
        let payload = mapper(
            serde_json::json!({"timestamp_field": "t"}),
            TimeUnit::Nanoseconds,
        );
        assert_eq!(time(&payload, &json_message(r#"{"t":5,"v":1}"#)), "5000000");
    }

    #[test]
    fn the_same_message_always_maps_to_the_same_line() {
        let mapper = mapper(serde_json::json!({"tags": ["h"]}), TimeUnit::Nanoseconds);
        let message = json_message(r#"{"h":"a","v":1,"w":"x","z":false}"#);
        let first = lines(&mapper, &message).unwrap();
        for _ in 0..10 {
            assert_eq!(lines(&mapper, &message).unwrap(), first);
        }
    }

    #[test]
    fn header_and_metadata_tags_are_added() {
        let mapper = mapper(
            serde_json::json!({
                "tags": ["source"],
                "header_tags": ["source", "tenant", "count", "missing"],
                "metadata_tags": ["stream", "topic", "partition"],
            }),
            TimeUnit::Nanoseconds,
        );
        let mut message = json_message(r#"{"v":1}"#);
        let mut headers = BTreeMap::new();
        headers.insert(
            HeaderKey::try_from("source").unwrap(),
            HeaderValue::try_from("hdr").unwrap(),
        );
        headers.insert(
            HeaderKey::try_from("tenant").unwrap(),
            HeaderValue::try_from("acme corp").unwrap(),
        );
        headers.insert(
            HeaderKey::try_from("count").unwrap(),
            HeaderValue::from(5u32),
        );
        message.headers = Some(headers);
        assert_eq!(
            lines(&mapper, &message).unwrap(),
            "orders,count=5,iggy_partition=3,iggy_stream=shop,iggy_topic=orders,source=hdr,tenant=acme\\ corp v=1i 1700000000123456042\n"
        );
        // A payload tag wins over a header of the same name.
        let mut message = json_message(r#"{"v":1,"source":"body"}"#);
        message.headers = Some(BTreeMap::from([(
            HeaderKey::try_from("source").unwrap(),
            HeaderValue::try_from("hdr").unwrap(),
        )]));
        assert!(lines(&mapper, &message).unwrap().contains(",source=body "));
    }

    #[test]
    fn text_payloads_pass_through_validated_with_the_message_time_added() {
        let mapper = mapper(serde_json::json!({}), TimeUnit::Milliseconds);
        let text = "cpu,host=a v=1 5\r\n\n# comment\nmem free=2i\n";
        let out = lines(&mapper, &message(Payload::Text(text.into()))).unwrap();
        assert_eq!(out, "cpu,host=a v=1 5\nmem free=2i 1700000000123\n");
        let raw = lines(&mapper, &message(Payload::Raw(b"disk used=3i 9".to_vec()))).unwrap();
        assert_eq!(raw, "disk used=3i 9\n");
    }

    #[test]
    fn a_text_payload_with_one_bad_line_is_refused_whole() {
        let mapper = mapper(serde_json::json!({}), TimeUnit::Nanoseconds);
        let mut batch = LineBatch::default();
        mapper
            .append(
                &origin(),
                &message(Payload::Text("ok v=1 1".into())),
                &mut batch,
            )
            .unwrap();
        let bad = message(Payload::Text("a v=1 1\nb v=2u 2\nc v=3 3".into()));
        let error = mapper.append(&origin(), &bad, &mut batch).unwrap_err();
        assert!(
            error.starts_with("line 2:") && error.contains("unsigned"),
            "{error}"
        );
        assert_eq!(
            batch.len(),
            1,
            "the good lines of a refused record are not kept"
        );
        for (payload, expected) in [
            (
                Payload::Text("\n# only a comment\n".into()),
                "no line-protocol lines",
            ),
            (Payload::Raw(vec![0xff, 0xfe]), "not UTF-8"),
            (Payload::Avro(vec![1]), "only json, text and raw"),
        ] {
            let error = mapper
                .append(&origin(), &message(payload), &mut batch)
                .unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn settings_are_checked_when_the_mapper_is_built() {
        let cases = [
            (
                serde_json::json!({"measurement": "a\nb"}),
                "mapping.measurement",
            ),
            (
                serde_json::json!({"tags": ["a..b"]}),
                "mapping.tags: `a..b`",
            ),
            (serde_json::json!({"fields": ["time"]}), "mapping.fields"),
            (
                serde_json::json!({"tags": ["x"], "fields": ["x"]}),
                "both in tags and in fields",
            ),
            (
                serde_json::json!({"header_tags": [""]}),
                "mapping.header_tags",
            ),
            (
                serde_json::json!({"flatten_separator": ""}),
                "mapping.flatten_separator",
            ),
        ];
        for (mapping, expected) in cases {
            let error = mapper_error(mapping.clone());
            assert!(error.contains(expected), "{mapping}: {error}");
        }
    }
}
