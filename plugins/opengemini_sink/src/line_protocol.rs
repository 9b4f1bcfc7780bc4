//! InfluxDB 1.x line protocol written the way openGemini parses it:
//! escaping, the limits it enforces, and one point as one line. Pure.
//!
//! `measurement,tag=value field=1i,other="text" 1700000000000000000`

use std::borrow::Cow;
use std::fmt::Write as _;

/// openGemini refuses longer measurement names, tag keys and field keys.
pub const MAX_NAME_BYTES: usize = 255;
/// openGemini refuses longer tag values.
pub const MAX_TAG_VALUE_BYTES: usize = 64 * 1024;
/// openGemini refuses a longer line with 400.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// The range InfluxDB and openGemini store, in nanoseconds (`models.MinNanoTime`..`MaxNanoTime`).
pub const MIN_NANOS: i128 = -9_223_372_036_854_775_806;
pub const MAX_NANOS: i128 = 9_223_372_036_854_775_806;

/// The parts of a line that are names or tag values, each with its own escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
}

impl Part {
    pub fn label(self) -> &'static str {
        match self {
            Part::Measurement => "measurement",
            Part::TagKey => "tag key",
            Part::TagValue => "tag value",
            Part::FieldKey => "field key",
        }
    }

    /// What a backslash must precede in this part.
    fn escaped(self) -> &'static [u8] {
        match self {
            Part::Measurement => b", ",
            _ => b",= ",
        }
    }

    fn max_bytes(self) -> usize {
        match self {
            Part::TagValue => MAX_TAG_VALUE_BYTES,
            _ => MAX_NAME_BYTES,
        }
    }
}

/// Whether `text` can be written as `part` so that openGemini reads it back
/// unchanged. `text` is the unescaped value.
pub fn check(part: Part, text: &str) -> Result<(), String> {
    let label = part.label();
    if text.is_empty() {
        return Err(format!("{label} is empty"));
    }
    if text.len() > part.max_bytes() {
        return Err(format!(
            "{label} is {} bytes (openGemini's limit is {})",
            text.len(),
            part.max_bytes()
        ));
    }
    let bytes = text.as_bytes();
    // Line breaks end the line and the parsers treat other control
    // characters inconsistently; there is no escape for either.
    if let Some(&byte) = bytes.iter().find(|b| b.is_ascii_control()) {
        return Err(format!(
            "{label} `{}` contains the control character {byte:#04x}",
            preview(text)
        ));
    }
    // A backslash is kept as is unless it precedes an escapable character:
    // `a\` followed by the `,` we add would read as an escaped comma.
    let escaped = part.escaped();
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'\\' {
            match bytes.get(index + 1) {
                None => return Err(format!("{label} `{}` ends with a backslash", preview(text))),
                Some(next) if escaped.contains(next) || *next == b'\\' => {
                    return Err(format!(
                        "{label} `{}` has a backslash before `{}`, which line protocol cannot carry unambiguously",
                        preview(text),
                        *next as char
                    ));
                }
                Some(_) => {}
            }
        }
    }
    match part {
        Part::Measurement if bytes[0] == b'#' => Err(format!(
            "measurement `{}` starts with `#`, which makes the line a comment",
            preview(text)
        )),
        Part::TagKey | Part::FieldKey if text == "time" => {
            Err(format!("{label} `time` is reserved for the timestamp"))
        }
        _ => Ok(()),
    }
}

/// Appends `text` escaped for `part`; [`check`] it first.
pub fn push_escaped(out: &mut String, part: Part, text: &str) {
    let escaped = part.escaped();
    if !text.bytes().any(|b| escaped.contains(&b)) {
        out.push_str(text);
        return;
    }
    for ch in text.chars() {
        if ch.is_ascii() && escaped.contains(&(ch as u8)) {
            out.push('\\');
        }
        out.push(ch);
    }
}

/// Appends a quoted string field value. `"` and `\` are escaped; line
/// breaks become the two characters `\n` / `\r`, since a raw one ends the
/// line for openGemini even inside quotes.
pub fn push_string_value(out: &mut String, text: &str) {
    out.push('"');
    let special = |b: u8| matches!(b, b'"' | b'\\' | b'\n' | b'\r');
    if !text.bytes().any(special) {
        out.push_str(text);
        out.push('"');
        return;
    }
    let mut rest = text;
    // The escaped characters are ASCII, so every cut is a char boundary.
    while let Some(at) = rest.bytes().position(special) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            _ => "\\r",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Integer(i64),
    Bool(bool),
    Text(Cow<'a, str>),
}

impl FieldValue<'_> {
    /// Appends the value with its type marker: `1.5`, `3i`, `true`, `"s"`.
    /// No `u` suffix: openGemini rejects unsigned integers.
    pub fn push(&self, out: &mut String) -> Result<(), String> {
        match self {
            FieldValue::Float(value) if !value.is_finite() => {
                return Err(format!("{value} is not a finite number"));
            }
            // Rust prints the shortest text that reads back to the same f64,
            // never in a form Go's ParseFloat rejects.
            FieldValue::Float(value) => write!(out, "{value}").map_err(|e| e.to_string())?,
            FieldValue::Integer(value) => {
                out.push_str(itoa::Buffer::new().format(*value));
                out.push('i');
            }
            FieldValue::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            FieldValue::Text(text) => push_string_value(out, text),
        }
        Ok(())
    }
}

/// A tag key and value.
pub type Tag<'a> = (Cow<'a, str>, Cow<'a, str>);
/// A field key and value.
pub type Field<'a> = (Cow<'a, str>, FieldValue<'a>);

/// One point, ready to be written as a line.
#[derive(Debug, Default)]
pub struct Point<'a> {
    pub measurement: Cow<'a, str>,
    pub tags: Vec<Tag<'a>>,
    pub fields: Vec<Field<'a>>,
    /// In the unit of the write's precision.
    pub timestamp: i64,
}

impl Point<'_> {
    /// Appends the point and a newline, or nothing and the reason it cannot
    /// be written. Tags with an empty value are left out, as openGemini
    /// itself drops them.
    pub fn write_line(&self, out: &mut String) -> Result<(), String> {
        let start = out.len();
        let result = self.push_line(out).and_then(|()| {
            let length = out.len() - start;
            if length > MAX_LINE_BYTES {
                Err(format!(
                    "the line is {length} bytes (openGemini's limit is {MAX_LINE_BYTES})"
                ))
            } else {
                Ok(())
            }
        });
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn push_line(&self, out: &mut String) -> Result<(), String> {
        check(Part::Measurement, &self.measurement)?;
        push_escaped(out, Part::Measurement, &self.measurement);
        for (key, value) in &self.tags {
            if value.is_empty() {
                continue;
            }
            check(Part::TagKey, key)?;
            check(Part::TagValue, value)?;
            out.push(',');
            push_escaped(out, Part::TagKey, key);
            out.push('=');
            push_escaped(out, Part::TagValue, value);
        }
        if self.fields.is_empty() {
            return Err("the point has no fields".into());
        }
        for (index, (key, value)) in self.fields.iter().enumerate() {
            check(Part::FieldKey, key)?;
            out.push(if index == 0 { ' ' } else { ',' });
            push_escaped(out, Part::FieldKey, key);
            out.push('=');
            value
                .push(out)
                .map_err(|reason| format!("field `{}`: {reason}", preview(key)))?;
        }
        push_timestamp(out, self.timestamp);
        Ok(())
    }
}

/// Appends ` <timestamp>` and the newline that ends a line.
pub fn push_timestamp(out: &mut String, timestamp: i64) {
    out.push(' ');
    out.push_str(itoa::Buffer::new().format(timestamp));
    out.push('\n');
}

/// The start of a possibly huge or hostile text, for error messages.
pub fn preview(text: &str) -> Cow<'_, str> {
    const MAX: usize = 64;
    if text.len() <= MAX && !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut shown: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX {
        shown.push('…');
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(point: &Point<'_>) -> Result<String, String> {
        let mut out = String::new();
        point.write_line(&mut out).map(|()| out)
    }

    fn point<'a>(
        measurement: &'a str,
        tags: &[(&'a str, &'a str)],
        fields: Vec<(&'a str, FieldValue<'a>)>,
    ) -> Point<'a> {
        Point {
            measurement: measurement.into(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            timestamp: 1_700_000_000_000_000_000,
        }
    }

    fn text(value: &str) -> FieldValue<'_> {
        FieldValue::Text(value.into())
    }

    #[test]
    fn a_plain_point_is_one_line() {
        let p = point(
            "cpu",
            &[("host", "a"), ("region", "eu")],
            vec![
                ("usage", FieldValue::Float(0.5)),
                ("cores", FieldValue::Integer(-8)),
                ("up", FieldValue::Bool(true)),
                ("name", text("x")),
            ],
        );
        assert_eq!(
            line(&p).unwrap(),
            "cpu,host=a,region=eu usage=0.5,cores=-8i,up=true,name=\"x\" 1700000000000000000\n"
        );
    }

    #[test]
    fn measurement_escapes_comma_and_space_only() {
        let p = point("a,b c=d", &[], vec![("v", FieldValue::Integer(1))]);
        assert_eq!(line(&p).unwrap(), "a\\,b\\ c=d v=1i 1700000000000000000\n");
    }

    #[test]
    fn tag_keys_values_and_field_keys_escape_comma_equals_space() {
        let p = point(
            "m",
            &[("k,=y z", "v,=w x")],
            vec![("f,=g h", FieldValue::Bool(false))],
        );
        assert_eq!(
            line(&p).unwrap(),
            "m,k\\,\\=y\\ z=v\\,\\=w\\ x f\\,\\=g\\ h=false 1700000000000000000\n"
        );
    }

    #[test]
    fn string_values_escape_quotes_backslashes_and_line_breaks() {
        let p = point(
            "m",
            &[],
            vec![("s", text("say \"hi\"\\ \nnext\r\nend, a=b c"))],
        );
        assert_eq!(
            line(&p).unwrap(),
            "m s=\"say \\\"hi\\\"\\\\ \\nnext\\r\\nend, a=b c\" 1700000000000000000\n"
        );
        assert_eq!(line(&p).unwrap().matches('\n').count(), 1);
    }

    #[test]
    fn unicode_passes_unescaped() {
        let p = point(
            "温度",
            &[("城市", "北京 东")],
            vec![("値", text("ü😀")), ("é", FieldValue::Float(1.0))],
        );
        assert_eq!(
            line(&p).unwrap(),
            "温度,城市=北京\\ 东 値=\"ü😀\",é=1 1700000000000000000\n"
        );
    }

    #[test]
    fn empty_tag_values_are_dropped() {
        let p = point(
            "m",
            &[("a", ""), ("b", "1")],
            vec![("v", FieldValue::Integer(1))],
        );
        assert_eq!(line(&p).unwrap(), "m,b=1 v=1i 1700000000000000000\n");
    }

    #[test]
    fn floats_never_use_a_suffix_and_non_finite_values_are_refused() {
        let cases = [
            (1.0, "1"),
            (-0.0, "-0"),
            (1.5e-7, "0.00000015"),
            (1e21, "1000000000000000000000"),
            (f64::MAX, "1797693134862315"),
        ];
        for (value, prefix) in cases {
            let mut out = String::new();
            FieldValue::Float(value).push(&mut out).unwrap();
            assert!(out.starts_with(prefix), "{value}: {out}");
            assert!(out.parse::<f64>().unwrap() == value, "{out} reads back");
        }
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let p = point("m", &[], vec![("v", FieldValue::Float(value))]);
            let error = line(&p).unwrap_err();
            assert!(error.contains("not a finite number"), "{error}");
        }
        let mut out = String::new();
        FieldValue::Integer(i64::MIN).push(&mut out).unwrap();
        assert_eq!(out, "-9223372036854775808i");
    }

    #[test]
    fn names_that_cannot_be_expressed_are_refused() {
        let long = "n".repeat(256);
        let cases: [(&str, &str, &str); 10] = [
            ("", "v", "measurement is empty"),
            ("#m", "v", "starts with `#`"),
            ("a\nb", "v", "control character 0x0a"),
            ("m\r", "v", "control character 0x0d"),
            ("m", "ti\tme", "control character 0x09"),
            ("m\\", "v", "ends with a backslash"),
            ("m\\ x", "v", "backslash before ` `"),
            ("m", "a\\=b", "backslash before `=`"),
            ("m", "time", "reserved"),
            (&long, "v", "256 bytes"),
        ];
        for (measurement, field, expected) in cases {
            let p = point(measurement, &[], vec![(field, FieldValue::Integer(1))]);
            let error = line(&p).unwrap_err();
            assert!(
                error.contains(expected),
                "{measurement:?}/{field:?}: {error}"
            );
        }
        // A backslash before an ordinary character is kept literally.
        let p = point("C:\\dir", &[], vec![("v", FieldValue::Integer(1))]);
        assert_eq!(line(&p).unwrap(), "C:\\dir v=1i 1700000000000000000\n");
        // 255 bytes is still fine, also in multi-byte characters.
        let name = "é".repeat(127);
        let p = point(&name, &[], vec![("v", FieldValue::Integer(1))]);
        assert!(line(&p).is_ok());
    }

    #[test]
    fn tag_values_may_be_long_but_not_longer_than_64_kib() {
        let value = "v".repeat(MAX_TAG_VALUE_BYTES);
        let p = point("m", &[("k", &value)], vec![("f", FieldValue::Integer(1))]);
        assert!(line(&p).is_ok());
        let value = "v".repeat(MAX_TAG_VALUE_BYTES + 1);
        let p = point("m", &[("k", &value)], vec![("f", FieldValue::Integer(1))]);
        assert!(line(&p).unwrap_err().contains("65537 bytes"));
        let p = point("m", &[("time", "x")], vec![("f", FieldValue::Integer(1))]);
        assert!(line(&p).unwrap_err().contains("tag key `time`"));
    }

    #[test]
    fn a_line_over_one_mib_is_refused_and_leaves_nothing_behind() {
        let big = "x".repeat(MAX_LINE_BYTES);
        let p = point("m", &[], vec![("s", text(&big))]);
        let mut out = String::from("before\n");
        let error = p.write_line(&mut out).unwrap_err();
        assert!(error.contains("openGemini's limit"), "{error}");
        assert_eq!(out, "before\n");
        let p = point("m", &[], vec![]);
        assert_eq!(
            p.write_line(&mut out).unwrap_err(),
            "the point has no fields"
        );
        assert_eq!(out, "before\n");
    }

    #[test]
    fn previews_are_short_and_printable() {
        assert_eq!(preview("abc"), "abc");
        assert_eq!(preview("a\nb"), "a?b");
        let long = preview(&"é".repeat(100)).into_owned();
        assert_eq!(long.chars().count(), 65);
        assert!(long.ends_with('…'));
    }
}
