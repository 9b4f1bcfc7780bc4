//! The transient/permanent split that drives retries.

use std::time::{Duration, SystemTime};

/// Whether repeating the failed operation can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth retrying; `retry_after` is the server's own hint, if it gave one.
    Transient { retry_after: Option<Duration> },
    /// Retrying would fail the same way (bad credentials, malformed request...).
    Permanent,
}

impl ErrorClass {
    pub fn is_transient(&self) -> bool {
        matches!(self, ErrorClass::Transient { .. })
    }
}

/// Implemented by a plugin's error type so [`crate::retry::retry`] knows what to retry.
pub trait Classify {
    fn class(&self) -> ErrorClass;
}

/// Classifies a non-success HTTP status.
///
/// Call it only for responses the plugin treats as failures: 2xx is success and
/// never reaches here. 1xx/2xx/3xx (and out-of-range codes) come back as
/// `Permanent` because receiving one where an error was expected means the
/// plugin and server disagree about the protocol, which a retry will not fix.
pub fn classify_http_status(status: u16, retry_after: Option<Duration>) -> ErrorClass {
    match status {
        // Timeout, Too Early, Too Many Requests: the server asks us to come back.
        408 | 425 | 429 => ErrorClass::Transient { retry_after },
        400..=499 => ErrorClass::Permanent,
        // Server-side trouble (including 500, 502, 503, 504) usually passes.
        500..=599 => ErrorClass::Transient { retry_after },
        _ => ErrorClass::Permanent,
    }
}

/// Parses a `Retry-After` header value: delta-seconds or an HTTP-date.
///
/// A date already in the past means "retry now" (`Some(ZERO)`); anything
/// unparseable is `None` so the caller falls back to its own backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSIENT_NO_HINT: ErrorClass = ErrorClass::Transient { retry_after: None };

    #[test]
    fn http_status_classes() {
        for s in [408, 425, 429, 500, 502, 503, 504, 507, 599] {
            assert_eq!(classify_http_status(s, None), TRANSIENT_NO_HINT, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422, 499] {
            assert_eq!(classify_http_status(s, None), ErrorClass::Permanent, "{s}");
        }
        for s in [100, 200, 204, 301, 304, 600, 0] {
            assert_eq!(classify_http_status(s, None), ErrorClass::Permanent, "{s}");
        }
        let hint = Some(Duration::from_secs(3));
        assert_eq!(
            classify_http_status(429, hint),
            ErrorClass::Transient { retry_after: hint }
        );
        assert!(classify_http_status(503, hint).is_transient());
        assert!(!classify_http_status(404, hint).is_transient());
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_http_date() {
        // "Wed, 21 Oct 2015 07:28:00 GMT" is 1445412480 seconds after the epoch.
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);

        let before = at - Duration::from_secs(90);
        assert_eq!(
            parse_retry_after(date, before),
            Some(Duration::from_secs(90))
        );

        let after = at + Duration::from_secs(3600);
        assert_eq!(parse_retry_after(date, after), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage() {
        let now = SystemTime::now();
        for v in [
            "",
            "soon",
            "-5",
            "1.5",
            "12s",
            "Wed, 99 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(v, now), None, "{v:?}");
        }
        // Too large for u64 seconds: not a usable hint.
        assert_eq!(parse_retry_after("99999999999999999999999", now), None);
    }
}
