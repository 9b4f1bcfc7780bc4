//! Checks a line of a text payload before it is sent. openGemini may drop
//! good lines that follow a bad one and still answer 204, so a bad line must
//! never reach it: it is refused here, with its record. Pure.

use crate::config::TimeUnit;
use crate::line_protocol::{MAX_LINE_BYTES, MAX_NANOS, MIN_NANOS, Part, check, preview};
use std::borrow::Cow;

/// Whether `line` (without its newline) is a point openGemini accepts
/// unchanged; `Ok(true)` when it carries its own timestamp.
pub fn check_line(line: &str, precision: TimeUnit) -> Result<bool, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!(
            "the line is {} bytes (openGemini's limit is {MAX_LINE_BYTES})",
            line.len()
        ));
    }
    let mut cursor = Cursor {
        bytes: line.as_bytes(),
        text: line,
        pos: 0,
    };
    let measurement = cursor.token(b", ")?;
    name(Part::Measurement, measurement)?;
    while cursor.eat(b',') {
        let key = cursor.token(b"=, ")?;
        name(Part::TagKey, key)?;
        if !cursor.eat(b'=') {
            return Err(format!("tag `{}` has no `=`", preview(key)));
        }
        let value = cursor.token(b", ")?;
        name(Part::TagValue, value)
            .map_err(|reason| format!("tag `{}`: {reason}", preview(key)))?;
    }
    if !cursor.eat(b' ') {
        return Err("the line has no fields".into());
    }
    loop {
        let key = cursor.token(b"=, ")?;
        name(Part::FieldKey, key)?;
        if !cursor.eat(b'=') {
            return Err(format!("field `{}` has no `=`", preview(key)));
        }
        cursor
            .field_value()
            .map_err(|reason| format!("field `{}`: {reason}", preview(key)))?;
        if !cursor.eat(b',') {
            break;
        }
    }
    if cursor.at_end() {
        return Ok(false);
    }
    if !cursor.eat(b' ') {
        return Err(format!(
            "unexpected `{}` after the fields",
            preview(cursor.rest())
        ));
    }
    timestamp(cursor.rest(), precision)?;
    Ok(true)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos.min(self.text.len())..]
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    /// The raw (still escaped) text up to the first unescaped stop byte.
    fn token(&mut self, stops: &[u8]) -> Result<&'a str, String> {
        let start = self.pos;
        while let Some(&byte) = self.bytes.get(self.pos) {
            if byte == b'\\' {
                if self.pos + 1 >= self.bytes.len() {
                    return Err("the line ends with a backslash".into());
                }
                // Stops are ASCII, so skipping one byte of a multi-byte
                // character can never skip a stop.
                self.pos += 2;
                continue;
            }
            if stops.contains(&byte) {
                break;
            }
            self.pos += 1;
        }
        // Stops are ASCII, so both ends are character boundaries.
        Ok(&self.text[start..self.pos.min(self.text.len())])
    }

    fn field_value(&mut self) -> Result<(), String> {
        if !self.eat(b'"') {
            return scalar(self.token(b", ")?);
        }
        loop {
            match self.bytes.get(self.pos) {
                None => return Err("the string value has no closing quote".into()),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(_) => self.pos += 1,
            }
        }
    }
}

/// Checks a raw name or tag value with the same rules as written points.
fn name(part: Part, raw: &str) -> Result<(), String> {
    check(part, &unescape(part, raw))
}

fn unescape(part: Part, raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let escapable: &[char] = match part {
        Part::Measurement => &[',', ' '],
        _ => &[',', '=', ' '],
    };
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\\'
            && let Some(&next) = chars.peek()
            && escapable.contains(&next)
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(ch);
    }
    Cow::Owned(out)
}

const BOOLEANS: [&str; 10] = [
    "t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE",
];

/// An unquoted field value: boolean, `…i` integer or float.
fn scalar(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("the value is empty".into());
    }
    if BOOLEANS.contains(&value) {
        return Ok(());
    }
    if let Some(digits) = value.strip_suffix('i') {
        return integer(digits)
            .map(drop)
            .map_err(|_| format!("`{}` is not a 64-bit integer", preview(value)));
    }
    if value.ends_with('u') {
        return Err(format!(
            "`{}`: openGemini does not accept unsigned integers (`u` suffix)",
            preview(value)
        ));
    }
    let float_chars = value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    match value.parse::<f64>() {
        Ok(number) if float_chars && !value.starts_with('+') && number.is_finite() => Ok(()),
        _ => Err(format!("`{}` is not a number or boolean", preview(value))),
    }
}

/// `-?[0-9]+` as an i64.
fn integer(text: &str) -> Result<i64, ()> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    text.parse().map_err(drop)
}

fn timestamp(text: &str, precision: TimeUnit) -> Result<(), String> {
    let value =
        integer(text).map_err(|_| format!("timestamp `{}` is not an integer", preview(text)))?;
    let nanos = i128::from(value) * precision.nanos();
    if !(MIN_NANOS..=MAX_NANOS).contains(&nanos) {
        return Err(format!(
            "timestamp {value} ({}) is outside the range openGemini stores",
            precision.query_value()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> bool {
        check_line(line, TimeUnit::Nanoseconds).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn refused(line: &str, expected: &str) {
        let error = check_line(line, TimeUnit::Nanoseconds)
            .err()
            .unwrap_or_else(|| panic!("{line:?} was accepted"));
        assert!(error.contains(expected), "{line:?}: {error}");
    }

    #[test]
    fn valid_lines_pass_and_report_their_timestamp() {
        assert!(ok(
            "cpu,host=a,region=eu usage=0.5,cores=8i,up=true,name=\"x\" 1700000000000000000"
        ));
        assert!(!ok("cpu value=1"));
        assert!(ok("cpu v=-1.5e-3,w=1E+9,x=.5,y=5.,z=-0 -1"));
        assert!(ok("a\\,b\\ c,k\\=1=v\\ 2 f\\,g=T,h=FALSE 0"));
        assert!(ok("m s=\"quote \\\" backslash \\\\ comma, eq= space \" 1"));
        assert!(!ok("温度,城市=北京 値=\"ü😀\""));
        assert!(!ok(
            "m,a=1,b=2 v=9223372036854775807i,w=-9223372036854775808i"
        ));
        assert!(!ok("C:\\dir v=1"));
    }

    #[test]
    fn malformed_lines_are_refused_with_a_reason() {
        refused("", "measurement is empty");
        refused("cpu", "no fields");
        refused("cpu ", "field key is empty");
        refused("cpu,host v=1", "tag `host` has no `=`");
        refused("cpu,host= v=1", "tag value is empty");
        refused("cpu,=a v=1", "tag key is empty");
        refused("cpu v", "field `v` has no `=`");
        refused("cpu v=", "the value is empty");
        refused("cpu v=1,", "field key is empty");
        refused("cpu v=\"open", "no closing quote");
        refused("cpu v=abc", "not a number or boolean");
        refused("cpu v=nan", "not a number or boolean");
        refused("cpu v=inf", "not a number or boolean");
        refused("cpu v=+1", "not a number or boolean");
        refused("cpu v=1.2.3", "not a number or boolean");
        refused("cpu v=1x 5", "not a number or boolean");
        refused("cpu v=5u", "unsigned integers");
        refused("cpu v=9223372036854775808i", "not a 64-bit integer");
        refused("cpu v=1i 12x", "timestamp `12x`");
        refused("cpu v=1i 1 2", "timestamp `1 2`");
        refused("cpu v=1i  1", "timestamp ` 1`");
        refused("cpu v=\"s\"x", "unexpected `x`");
        refused("cpu v=1 9223372036854775807", "outside the range");
        refused("cpu,time=x v=1", "`time` is reserved");
        refused("cpu time=1", "`time` is reserved");
        refused("#cpu v=1", "comment");
        refused("cpu\\", "ends with a backslash");
        refused("cpu,a=x\\\\ v=1", "backslash before `\\`");
        refused("cpu v=\"x\"\r", "unexpected `?`");
        refused(&format!("{} v=1", "m".repeat(256)), "256 bytes");
        refused(
            &format!("m s=\"{}\"", "x".repeat(MAX_LINE_BYTES)),
            "limit is 1048576",
        );
    }

    #[test]
    fn timestamps_are_checked_in_the_write_precision() {
        assert!(check_line("m v=1 9223372036", TimeUnit::Seconds).is_ok());
        let error = check_line("m v=1 9223372037", TimeUnit::Seconds).unwrap_err();
        assert!(error.contains("outside the range"), "{error}");
        let error = check_line("m v=1 -9223372037", TimeUnit::Seconds).unwrap_err();
        assert!(error.contains("(s)"), "{error}");
    }
}
