//! A row's time column as the message's `origin_timestamp`: microseconds
//! since the epoch, as Iggy keeps it. Flink's JSON rows carry TIMESTAMP_LTZ
//! as an ISO-8601 instant (`"2026-11-21T09:58:29.108Z"`), TIMESTAMP without
//! a zone (`"2026-11-21T09:58:29.108"`, or with a space before the time; read
//! as UTC), and epoch milliseconds as a BIGINT number.

use serde_json::value::RawValue;

const EXPECTED: &str = "expected TIMESTAMP, TIMESTAMP_LTZ or epoch milliseconds";

/// `Ok(None)` for a null time: the message then gets no origin timestamp.
pub fn origin_micros(field: &RawValue) -> Result<Option<u64>, String> {
    let raw = field.get();
    if raw == "null" {
        return Ok(None);
    }
    let not_a_time = || format!("{} is not a time ({EXPECTED})", shorten(raw));
    let micros = if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).map_err(|_| not_a_time())?;
        timestamp_micros(&text).ok_or_else(not_a_time)?
    } else {
        let millis: i64 = raw.parse().map_err(|_| not_a_time())?;
        millis.checked_mul(1000).ok_or_else(not_a_time)?
    };
    u64::try_from(micros).map(Some).map_err(|_| {
        format!(
            "{} is before 1970, which an origin timestamp cannot hold",
            shorten(raw)
        )
    })
}

/// `YYYY-MM-DD(T| )HH:MM[:SS[.fraction]][Z|±HH:MM]`, zone-less as UTC.
fn timestamp_micros(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() < 16 || !text.is_char_boundary(10) || !matches!(&text[10..11], "T" | " ") {
        return None;
    }
    let (year, month, day) = date(&text[..10])?;
    let (clock, offset_secs) = zone(&text[11..])?;
    let (hour, minute, second, micros) = time(clock)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

fn number(text: &str) -> Option<i64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn date(text: &str) -> Option<(i64, i64, i64)> {
    let mut parts = text.split('-');
    let (year, month, day) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (parts.next().is_none() && (1..=days_in_month).contains(&day)).then_some((year, month, day))
}

/// Splits off the zone: `Z`, `±HH:MM` or `±HHMM`; none is UTC.
fn zone(text: &str) -> Option<(&str, i64)> {
    if let Some(clock) = text.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let Some(at) = text.rfind(['+', '-']) else {
        return Some((text, 0));
    };
    let (clock, offset) = text.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits = offset[1..].replace(':', "");
    if digits.len() != 4 {
        return None;
    }
    let (hours, minutes) = (number(&digits[..2])?, number(&digits[2..])?);
    (hours < 24 && minutes < 60).then_some((clock, sign * (hours * 3600 + minutes * 60)))
}

fn time(text: &str) -> Option<(i64, i64, i64, i64)> {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = clock.split(':');
    let hour = number(parts.next()?)?;
    let minute = number(parts.next()?)?;
    let second = parts.next().map(number).unwrap_or(Some(0))?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let micros = if fraction.is_empty() {
        0
    } else {
        number(fraction)?;
        // Nanoseconds (TIMESTAMP(9)) are cut to the microseconds Iggy keeps.
        let digits: String = fraction.chars().chain("000000".chars()).take(6).collect();
        number(&digits)?
    };
    Some((hour, minute, second, micros))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn shorten(raw: &str) -> String {
    const MAX: usize = 64;
    match raw.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &raw[..at]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(json: &str) -> Result<Option<u64>, String> {
        let field: Box<RawValue> = serde_json::from_str(json).unwrap();
        origin_micros(&field)
    }

    #[test]
    fn flink_time_forms_become_epoch_micros() {
        // 2026-11-21T09:58:29.108Z as recorded in gw-21 (TIMESTAMP_LTZ(3)).
        const AT: u64 = 1_795_255_109_108_000;
        assert_eq!(micros(r#""2026-11-21T09:58:29.108Z""#), Ok(Some(AT)));
        assert_eq!(micros(r#""2026-11-21T09:58:29.108""#), Ok(Some(AT)));
        assert_eq!(micros(r#""2026-11-21 09:58:29.108""#), Ok(Some(AT)));
        assert_eq!(micros(r#""2026-11-21T11:58:29.108+02:00""#), Ok(Some(AT)));
        assert_eq!(micros(r#""2026-11-21T09:58:29.108000999""#), Ok(Some(AT)));
        assert_eq!(micros("1795255109108"), Ok(Some(AT)));
        assert_eq!(micros(r#""1970-01-01T00:00""#), Ok(Some(0)));
        assert_eq!(
            micros(r#""2024-02-29T00:00:00Z""#),
            Ok(Some(1_709_164_800_000_000))
        );
        assert_eq!(micros("null"), Ok(None));
    }

    #[test]
    fn other_values_are_not_times() {
        for bad in [
            r#""yesterday""#,
            r#""2026-13-01T00:00:00""#,
            r#""2023-02-29T00:00:00""#,
            r#""2026-11-21T24:00:00""#,
            r#""2026-11-21""#,
            "12.5",
            "true",
            r#"{"ts": 1}"#,
        ] {
            let error = micros(bad).unwrap_err();
            assert!(error.contains("is not a time"), "{bad}: {error}");
        }
        assert!(micros("-1").unwrap_err().contains("before 1970"));
    }
}
