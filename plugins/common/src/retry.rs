//! Capped exponential backoff with jitter that honours a server's Retry-After.

use std::fmt;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer};
use tokio::time::Instant;

use crate::duration::serde_opt_duration;
use crate::error_class::{Classify, ErrorClass};

/// A server's Retry-After is obeyed up to this long; beyond it a misbehaving or
/// hostile server could stall the plugin indefinitely.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How often and how patiently to retry; usually the `retry` table of a plugin config.
/// Fields left out of the table keep their [`Default`] values; a sink's table
/// reads through [`outage_policy`] instead.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(from = "RetryTable")]
pub struct RetryPolicy {
    /// Total attempts including the first one.
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub multiplier: f64,
    /// Relative spread in `[0, 1]`: 0.2 means each delay is scaled by 0.8..1.2,
    /// so that many plugins failing together do not retry in lockstep.
    pub jitter: f64,
    /// Give up once another wait would take the whole operation past this.
    pub max_elapsed: Option<Duration>,
}

/// A sink's writes are retried this long by default. The runtime commits a
/// sink's offsets before `consume` and ignores its result, so a batch a sink
/// gives up on is lost: the deadline has to outlast a restart of the target.
pub const OUTAGE_DEADLINE: Duration = Duration::from_secs(300);

/// A `retry` table as written: what it leaves out is taken from the policy it
/// is laid over, which differs between sinks and everything else.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RetryTable {
    max_attempts: Option<u32>,
    #[serde(with = "serde_opt_duration")]
    initial_delay: Option<Duration>,
    #[serde(with = "serde_opt_duration")]
    max_delay: Option<Duration>,
    multiplier: Option<f64>,
    jitter: Option<f64>,
    #[serde(with = "serde_opt_duration")]
    max_elapsed: Option<Duration>,
}

impl RetryTable {
    fn over(self, base: RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            initial_delay: self.initial_delay.unwrap_or(base.initial_delay),
            max_delay: self.max_delay.unwrap_or(base.max_delay),
            multiplier: self.multiplier.unwrap_or(base.multiplier),
            jitter: self.jitter.unwrap_or(base.jitter),
            max_elapsed: self.max_elapsed.or(base.max_elapsed),
        }
    }
}

impl From<RetryTable> for RetryPolicy {
    fn from(table: RetryTable) -> Self {
        table.over(RetryPolicy::default())
    }
}

/// `#[serde(default = "RetryPolicy::outage", deserialize_with = "outage_policy")]`
/// for a sink's `retry` table: what the table leaves out keeps the value of
/// [`RetryPolicy::outage`], not of [`RetryPolicy::default`].
pub fn outage_policy<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RetryPolicy, D::Error> {
    Ok(RetryTable::deserialize(deserializer)?.over(RetryPolicy::outage()))
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.2,
            max_elapsed: None,
        }
    }
}

impl RetryPolicy {
    /// A sink's writes: no attempt limit, capped backoff, until
    /// [`OUTAGE_DEADLINE`] has passed.
    pub fn outage() -> Self {
        Self {
            max_attempts: u32::MAX,
            max_elapsed: Some(OUTAGE_DEADLINE),
            ..Self::default()
        }
    }

    /// Checks the values serde cannot; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("retry.max_attempts must be >= 1".into());
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(format!(
                "retry.multiplier must be >= 1.0 (got {})",
                self.multiplier
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "retry.jitter must be between 0.0 and 1.0 (got {})",
                self.jitter
            ));
        }
        if self.initial_delay > self.max_delay {
            return Err(format!(
                "retry.initial_delay ({:?}) must not exceed retry.max_delay ({:?})",
                self.initial_delay, self.max_delay
            ));
        }
        if self.max_elapsed == Some(Duration::ZERO) {
            return Err("retry.max_elapsed must be greater than zero when set".into());
        }
        Ok(())
    }

    /// The wait before retry number `retry_number` (1 = the wait after the
    /// first failure), jittered and never above `max_delay`.
    ///
    /// Out-of-range fields (an unvalidated policy) are clamped rather than
    /// panicking, since this runs inside plugins.
    pub fn delay_for(&self, retry_number: u32) -> Duration {
        let cap = self.max_delay.as_secs_f64();
        // Exponents past ~1100 overflow f64 for any multiplier >= 2 anyway.
        let exponent = retry_number.saturating_sub(1).min(2048) as i32;
        // `min` also swallows the inf/NaN an overflowing or bogus multiplier yields.
        let base = (self.initial_delay.as_secs_f64() * self.multiplier.powi(exponent)).min(cap);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * unit_random() - 1.0);
        Duration::try_from_secs_f64((base * factor).min(cap)).unwrap_or(self.max_delay)
    }
}

/// Why [`retry`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryErrorKind {
    /// Still transient, but out of attempts or of `max_elapsed`.
    Exhausted,
    /// The error said retrying would not help.
    Permanent,
}

/// The last error together with how many attempts were made.
#[derive(Debug)]
pub struct RetryError<E> {
    pub attempts: u32,
    pub last: E,
    pub kind: RetryErrorKind,
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        match self.kind {
            RetryErrorKind::Exhausted => write!(
                f,
                "gave up after {} attempt{plural}: {}",
                self.attempts, self.last
            ),
            RetryErrorKind::Permanent => write!(
                f,
                "permanent error after {} attempt{plural}: {}",
                self.attempts, self.last
            ),
        }
    }
}

// The last error is part of Display, so it is deliberately not also a
// `source()`: error reporters would print it twice.
impl<E: fmt::Debug + fmt::Display> std::error::Error for RetryError<E> {}

/// Runs `op` (given the 1-based attempt number) until it succeeds, fails
/// permanently, or the policy runs out.
///
/// Each wait is the larger of the backoff and the error's Retry-After hint
/// (the hint capped at [`MAX_RETRY_AFTER`]); if that wait would carry the total
/// past `max_elapsed`, it gives up instead of sleeping.
pub async fn retry<T, E, Fut, F>(
    policy: &RetryPolicy,
    what: &str,
    mut op: F,
) -> Result<T, RetryError<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify + fmt::Display,
{
    let started = Instant::now();
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let error = match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let give_up = |last, kind| RetryError {
            attempts: attempt,
            last,
            kind,
        };
        let retry_after = match error.class() {
            ErrorClass::Permanent => return Err(give_up(error, RetryErrorKind::Permanent)),
            ErrorClass::Transient { retry_after } => retry_after,
        };
        if attempt >= max_attempts {
            return Err(give_up(error, RetryErrorKind::Exhausted));
        }
        let backoff = policy.delay_for(attempt);
        let delay = retry_after.map_or(backoff, |hint| hint.min(MAX_RETRY_AFTER).max(backoff));
        if let Some(limit) = policy.max_elapsed
            && started.elapsed().saturating_add(delay) > limit
        {
            return Err(give_up(error, RetryErrorKind::Exhausted));
        }
        // The outage policy has no attempt limit, only a deadline: say so
        // rather than print u32::MAX.
        let limit = (max_attempts < u32::MAX).then_some(max_attempts);
        tracing::warn!(
            what,
            attempt,
            max_attempts = limit,
            delay = ?delay,
            error = %error,
            "{what} failed with a transient error, retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// A uniform draw in `[0, 1)` from splitmix64. Jitter only needs to
/// decorrelate plugins, not be unpredictable, so a `rand` dependency is not
/// worth its compile time.
fn unit_random() -> f64 {
    const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let seed = *SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // Processes started in the same nanosecond still differ by pid.
        nanos ^ u64::from(std::process::id()).rotate_left(32)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits fill an f64 mantissa exactly.
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug)]
    enum TestError {
        Transient(Option<Duration>),
        Permanent,
    }

    impl fmt::Display for TestError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                TestError::Transient(_) => f.write_str("try again"),
                TestError::Permanent => f.write_str("no way"),
            }
        }
    }

    impl Classify for TestError {
        fn class(&self) -> ErrorClass {
            match self {
                TestError::Transient(retry_after) => ErrorClass::Transient {
                    retry_after: *retry_after,
                },
                TestError::Permanent => ErrorClass::Permanent,
            }
        }
    }

    fn no_jitter() -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = no_jitter();
        let delays: Vec<_> = (1..=9).map(|n| p.delay_for(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(p.delay_for(0), Duration::from_millis(100));
        assert_eq!(p.delay_for(u32::MAX), p.max_delay);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RetryPolicy {
            jitter: 0.5,
            ..RetryPolicy::default()
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let d = p.delay_for(2);
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_millis(300),
                "{d:?}"
            );
            seen.insert(d);
            // At the cap jitter may only pull the delay down.
            let capped = p.delay_for(20);
            assert!(
                capped >= Duration::from_millis(2500) && capped <= p.max_delay,
                "{capped:?}"
            );
        }
        assert!(
            seen.len() > 1000,
            "jitter barely varies: {} values",
            seen.len()
        );
    }

    #[test]
    fn unvalidated_policy_does_not_panic() {
        let p = RetryPolicy {
            multiplier: f64::NAN,
            jitter: 7.0,
            ..RetryPolicy::default()
        };
        for n in 0..50 {
            assert!(p.delay_for(n) <= p.max_delay);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_error_is_not_retried() {
        let calls = Cell::new(0);
        let result: Result<(), _> = retry(&RetryPolicy::default(), "send", |_| {
            calls.set(calls.get() + 1);
            async { Err(TestError::Permanent) }
        })
        .await;
        let err = result.unwrap_err();
        assert_eq!(calls.get(), 1);
        assert_eq!(err.kind, RetryErrorKind::Permanent);
        assert_eq!(err.attempts, 1);
        assert_eq!(err.to_string(), "permanent error after 1 attempt: no way");
    }

    #[tokio::test(start_paused = true)]
    async fn transient_error_is_retried_until_exhausted() {
        let policy = no_jitter();
        let started = Instant::now();
        let mut seen = Vec::new();
        let result: Result<(), _> = retry(&policy, "send", |attempt| {
            seen.push(attempt);
            async { Err(TestError::Transient(None)) }
        })
        .await;
        let err = result.unwrap_err();
        assert_eq!(seen, [1, 2, 3, 4, 5]);
        assert_eq!(err.kind, RetryErrorKind::Exhausted);
        assert_eq!(err.attempts, 5);
        assert_eq!(err.to_string(), "gave up after 5 attempts: try again");
        // Four waits: 100 + 200 + 400 + 800 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn success_after_transient_failures() {
        let result = retry(&no_jitter(), "send", |attempt| async move {
            if attempt < 3 {
                Err(TestError::Transient(None))
            } else {
                Ok(attempt * 10)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_hint_is_respected_and_capped() {
        let policy = no_jitter();
        let started = Instant::now();
        let _ = retry(&policy, "send", |attempt| async move {
            match attempt {
                1 => Err(TestError::Transient(Some(Duration::from_secs(7)))),
                _ => Ok(()),
            }
        })
        .await;
        assert!(
            started.elapsed() >= Duration::from_secs(7),
            "{:?}",
            started.elapsed()
        );

        // An absurd hint is obeyed only up to MAX_RETRY_AFTER.
        let started = Instant::now();
        let _ = retry(&policy, "send", |attempt| async move {
            match attempt {
                1 => Err(TestError::Transient(Some(Duration::from_secs(86_400)))),
                _ => Ok(()),
            }
        })
        .await;
        assert_eq!(started.elapsed(), MAX_RETRY_AFTER);

        // A hint shorter than the backoff does not shorten the backoff.
        let started = Instant::now();
        let _ = retry(&policy, "send", |attempt| async move {
            match attempt {
                1 => Err(TestError::Transient(Some(Duration::from_millis(1)))),
                _ => Ok(()),
            }
        })
        .await;
        assert_eq!(started.elapsed(), policy.initial_delay);
    }

    #[tokio::test(start_paused = true)]
    async fn max_elapsed_stops_early() {
        let policy = RetryPolicy {
            max_attempts: 100,
            max_elapsed: Some(Duration::from_millis(1000)),
            ..no_jitter()
        };
        let started = Instant::now();
        let mut calls = 0;
        let result: Result<(), _> = retry(&policy, "send", |_| {
            calls += 1;
            async { Err(TestError::Transient(None)) }
        })
        .await;
        let err = result.unwrap_err();
        // Waits of 100 + 200 + 400 fit in 1s; the next 800 would not.
        assert_eq!(calls, 4);
        assert_eq!(err.attempts, 4);
        assert_eq!(err.kind, RetryErrorKind::Exhausted);
        assert_eq!(started.elapsed(), Duration::from_millis(700));
    }

    #[test]
    fn policy_from_toml_with_strings_and_integers() {
        let p: RetryPolicy = toml::from_str(
            r#"
            max_attempts = 3
            initial_delay = "250ms"
            max_delay = 2000
            multiplier = 1.5
            max_elapsed = "1m"
            "#,
        )
        .unwrap();
        assert_eq!(
            p,
            RetryPolicy {
                max_attempts: 3,
                initial_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(2),
                multiplier: 1.5,
                jitter: 0.2,
                max_elapsed: Some(Duration::from_secs(60)),
            }
        );
        assert_eq!(p.validate(), Ok(()));

        let empty: RetryPolicy = toml::from_str("").unwrap();
        assert_eq!(empty, RetryPolicy::default());
    }

    #[test]
    fn policy_nested_in_a_plugin_config() {
        #[derive(Deserialize)]
        struct PluginConfig {
            #[serde(default)]
            retry: RetryPolicy,
        }
        let c: PluginConfig = toml::from_str("[retry]\nmax_delay = \"5s\"\n").unwrap();
        assert_eq!(c.retry.max_delay, Duration::from_secs(5));
        let c: PluginConfig = serde_json::from_str(r#"{"retry": {"initial_delay": 10}}"#).unwrap();
        assert_eq!(c.retry.initial_delay, Duration::from_millis(10));
    }

    #[test]
    fn a_sink_table_fills_its_gaps_from_the_outage_policy() {
        #[derive(Deserialize)]
        struct SinkConfig {
            #[serde(default = "RetryPolicy::outage", deserialize_with = "outage_policy")]
            retry: RetryPolicy,
        }
        let absent: SinkConfig = toml::from_str("").unwrap();
        assert_eq!(absent.retry, RetryPolicy::outage());
        assert_eq!(absent.retry.max_elapsed, Some(OUTAGE_DEADLINE));

        let partial: SinkConfig =
            serde_json::from_str(r#"{"retry": {"max_delay": "10s"}}"#).unwrap();
        assert_eq!(
            partial.retry,
            RetryPolicy {
                max_delay: Duration::from_secs(10),
                ..RetryPolicy::outage()
            }
        );
        assert_eq!(partial.retry.validate(), Ok(()));

        let err = toml::from_str::<SinkConfig>("[retry]\nmax_retries = 3\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("max_retries"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_outage_policy_rides_out_a_long_outage_then_gives_up() {
        let policy = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::outage()
        };
        let started = Instant::now();
        let mut calls = 0;
        let recovered: Result<u32, _> = retry(&policy, "write", |attempt| {
            calls += 1;
            let up = started.elapsed() >= Duration::from_secs(60);
            async move {
                if up {
                    Ok(attempt)
                } else {
                    Err(TestError::Transient(None))
                }
            }
        })
        .await;
        // Far more than the default five attempts: the target was down a minute.
        assert!(recovered.unwrap() > 10, "{calls} calls");

        let started = Instant::now();
        let never: Result<(), _> = retry(&policy, "write", |_| async {
            Err(TestError::Transient(None))
        })
        .await;
        assert_eq!(never.unwrap_err().kind, RetryErrorKind::Exhausted);
        assert!(started.elapsed() <= OUTAGE_DEADLINE);
        assert!(started.elapsed() >= OUTAGE_DEADLINE - policy.max_delay);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = toml::from_str::<RetryPolicy>("max_retries = 3").unwrap_err();
        assert!(err.to_string().contains("max_retries"), "{err}");
    }

    #[test]
    fn validate_names_the_bad_field() {
        let bad = |p: RetryPolicy| p.validate().unwrap_err();
        let d = RetryPolicy::default;
        assert!(
            bad(RetryPolicy {
                max_attempts: 0,
                ..d()
            })
            .starts_with("retry.max_attempts")
        );
        assert!(
            bad(RetryPolicy {
                multiplier: 0.5,
                ..d()
            })
            .starts_with("retry.multiplier must be >= 1.0")
        );
        assert!(
            bad(RetryPolicy {
                multiplier: f64::NAN,
                ..d()
            })
            .starts_with("retry.multiplier")
        );
        assert!(bad(RetryPolicy { jitter: 1.5, ..d() }).starts_with("retry.jitter"));
        assert!(
            bad(RetryPolicy {
                jitter: -0.1,
                ..d()
            })
            .starts_with("retry.jitter")
        );
        let inverted = RetryPolicy {
            initial_delay: Duration::from_secs(10),
            ..d()
        };
        assert!(bad(inverted).starts_with("retry.initial_delay"));
        let zero_elapsed = RetryPolicy {
            max_elapsed: Some(Duration::ZERO),
            ..d()
        };
        assert!(bad(zero_elapsed).starts_with("retry.max_elapsed"));
        assert_eq!(d().validate(), Ok(()));
    }
}
