//! Serde helpers for durations in plugin configs.
//!
//! Operators write `"250ms"`, `"5s"` or `"1m 30s"` (humantime syntax); a bare
//! integer is read as milliseconds because that is what most connector configs
//! historically used for timeouts.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

struct DurationVisitor;

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a duration such as \"250ms\", \"5s\", \"1m\" or an integer number of milliseconds",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v.trim())
            .map_err(|e| E::custom(format_args!("invalid duration {v:?}: {e}")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_millis(v))
    }

    // TOML and some JSON readers hand integers over as i64.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_millis)
            .map_err(|_| E::custom(format_args!("duration must not be negative, got {v}")))
    }
}

/// `#[serde(with = "iggy_connector_common::duration::serde_duration")]` for `Duration` fields.
pub mod serde_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// `#[serde(default, with = "iggy_connector_common::duration::serde_opt_duration")]`
/// for `Option<Duration>` fields; an absent field or `null` is `None`.
pub mod serde_opt_duration {
    use super::*;

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            DurationVisitor.expecting(f)?;
            f.write_str(", or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            serde_duration::deserialize(d).map(Some)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_option(OptVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Cfg {
        #[serde(with = "serde_duration")]
        timeout: Duration,
        #[serde(default, with = "serde_opt_duration")]
        deadline: Option<Duration>,
    }

    #[test]
    fn humantime_strings_and_integer_millis() {
        let c: Cfg = toml::from_str("timeout = \"250ms\"\ndeadline = \"1m\"").unwrap();
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.deadline, Some(Duration::from_secs(60)));

        let c: Cfg = toml::from_str("timeout = 1500").unwrap();
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.deadline, None);

        let c: Cfg = serde_json::from_str(r#"{"timeout": 7, "deadline": null}"#).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(7));
        assert_eq!(c.deadline, None);

        let c: Cfg = serde_json::from_str(r#"{"timeout": "1m 30s", "deadline": 2000}"#).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(90));
        assert_eq!(c.deadline, Some(Duration::from_secs(2)));
    }

    #[test]
    fn bad_durations_are_rejected_with_the_value() {
        let err = toml::from_str::<Cfg>("timeout = \"soon\"").unwrap_err();
        assert!(
            err.to_string().contains("invalid duration \"soon\""),
            "{err}"
        );

        let err = toml::from_str::<Cfg>("timeout = -5").unwrap_err();
        assert!(err.to_string().contains("must not be negative"), "{err}");

        let err = serde_json::from_str::<Cfg>(r#"{"timeout": 1.5}"#).unwrap_err();
        assert!(
            err.to_string().contains("integer number of milliseconds"),
            "{err}"
        );
    }
}
