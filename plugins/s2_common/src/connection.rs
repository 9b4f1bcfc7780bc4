//! Connection settings and the basin client. Errors name the setting at fault
//! and never contain the access token.

use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::secret::{Secret, redact};
use s2_sdk::types::{
    AccountEndpoint, AppendRetryPolicy, BasinEndpoint, BasinName, RetryConfig, S2Config,
    S2Endpoints, StreamName,
};
use s2_sdk::{S2, S2Basin};
use serde::Deserialize;
use std::num::NonZeroU32;
use std::time::Duration;

fn default_request_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_retries() -> u32 {
    3
}

fn default_retry_delay() -> Duration {
    Duration::from_millis(100)
}

/// Which appends the SDK may resend after a transient failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum S2RetryPolicy {
    /// Also appends whose outcome is unknown; on its own this can duplicate
    /// records, which the sink prevents with `match_seq_num`.
    All,
    /// Only appends the server cannot have seen.
    #[default]
    NoSideEffects,
}

/// The settings both S2 plugins take at the top level of `[plugin_config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S2Connection {
    /// Absent or empty is only accepted with an explicit endpoint (s2-lite
    /// takes any token; S2 cloud needs one).
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// One URL for account and basin calls, e.g. `http://127.0.0.1:4566`
    /// for s2-lite; absent means S2 cloud.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Overrides `endpoint` for account calls (listing and creating streams).
    #[serde(default)]
    pub account_endpoint: Option<String>,
    /// Overrides `endpoint` for basin calls; `{basin}.host` routes by basin name.
    #[serde(default)]
    pub basin_endpoint: Option<String>,
    pub basin: String,
    #[serde(default = "default_request_timeout", with = "serde_duration")]
    pub request_timeout: Duration,
    #[serde(default)]
    pub retry_policy: S2RetryPolicy,
    /// Retries after the first attempt, inside the SDK.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// The first backoff; later ones double, up to ten times this.
    #[serde(default = "default_retry_delay", with = "serde_duration")]
    pub retry_delay: Duration,
}

impl S2Connection {
    /// Checks the settings; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.basin_name()?;
        self.endpoints()?;
        let has_endpoint = self.endpoint.is_some()
            || self.account_endpoint.is_some()
            || self.basin_endpoint.is_some();
        if !has_endpoint && self.access_token.as_ref().is_none_or(Secret::is_empty) {
            return Err("access_token: S2 cloud needs an access token".into());
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be greater than zero".into());
        }
        if self.max_retries > 100 {
            return Err("max_retries must be at most 100".into());
        }
        Ok(())
    }

    pub fn basin_name(&self) -> Result<BasinName, String> {
        self.basin
            .parse()
            .map_err(|e| format!("basin: `{}` is not a basin name: {e}", self.basin))
    }

    /// Where the client connects, for logs (the token is never part of it).
    pub fn endpoint_for_logs(&self) -> String {
        match (&self.account_endpoint, &self.basin_endpoint, &self.endpoint) {
            (None, None, None) => "S2 cloud".into(),
            (account, basin, endpoint) => {
                let any = endpoint.as_deref().unwrap_or("S2 cloud");
                format!(
                    "{} (basin calls {})",
                    account.as_deref().unwrap_or(any),
                    basin.as_deref().unwrap_or(any)
                )
            }
        }
    }

    fn endpoints(&self) -> Result<S2Endpoints, String> {
        if self.endpoint.is_none()
            && self.account_endpoint.is_none()
            && self.basin_endpoint.is_none()
        {
            return Ok(S2Endpoints::for_cloud());
        }
        let pick = |specific: &Option<String>, field: &str| -> Result<String, String> {
            specific
                .clone()
                .or_else(|| self.endpoint.clone())
                .ok_or_else(|| format!("{field}: give it or `endpoint` when the other is set"))
        };
        let account = pick(&self.account_endpoint, "account_endpoint")?;
        let basin = pick(&self.basin_endpoint, "basin_endpoint")?;
        let account = AccountEndpoint::new(&account)
            .map_err(|e| format!("account_endpoint: `{account}`: {e}"))?;
        let basin =
            BasinEndpoint::new(&basin).map_err(|e| format!("basin_endpoint: `{basin}`: {e}"))?;
        S2Endpoints::new(account, basin).map_err(|e| format!("endpoint: {e}"))
    }

    fn retry_config(&self) -> RetryConfig {
        let attempts =
            NonZeroU32::new(self.max_retries.saturating_add(1)).unwrap_or(NonZeroU32::MIN);
        RetryConfig::new()
            .with_max_attempts(attempts)
            .with_min_base_delay(self.retry_delay)
            .with_max_base_delay(self.retry_delay.saturating_mul(10))
            .with_append_retry_policy(match self.retry_policy {
                S2RetryPolicy::All => AppendRetryPolicy::All,
                S2RetryPolicy::NoSideEffects => AppendRetryPolicy::NoSideEffects,
            })
    }

    /// The basin client (after `validate`, inside a tokio runtime: the SDK
    /// spawns its connection tasks). No request is made here.
    pub fn basin_client(&self) -> Result<S2Basin, String> {
        let token = self
            .access_token
            .as_ref()
            .map(|t| t.expose().to_string())
            .unwrap_or_default();
        let config = S2Config::new(token)
            .with_endpoints(self.endpoints()?)
            .with_request_timeout(self.request_timeout)
            .with_connection_timeout(self.request_timeout)
            .with_retry(self.retry_config())
            .with_rustls_ring_crypto_provider();
        let client = S2::new(config).map_err(|e| self.describe(&e))?;
        Ok(client.basin(self.basin_name()?))
    }

    /// An error message with the endpoint and basin for context and the
    /// token removed, should a server or library ever echo it.
    pub fn describe(&self, error: &dyn std::fmt::Display) -> String {
        let secrets: Vec<&Secret> = self.access_token.iter().collect();
        redact(
            &format!(
                "S2 basin `{}` at {}: {error}",
                self.basin,
                self.endpoint_for_logs()
            ),
            &secrets,
        )
    }
}

/// A stream name from config or a template, checked by the SDK's rules.
pub fn stream_name(name: &str) -> Result<StreamName, String> {
    name.parse()
        .map_err(|e| format!("`{name}` is not a valid S2 stream name: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> S2Connection {
        serde_json::from_str(json).unwrap()
    }

    #[tokio::test]
    async fn defaults_and_local_endpoint() {
        let c = parse(r#"{"basin":"orders-basin","endpoint":"http://127.0.0.1:4566"}"#);
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert_eq!(c.retry_policy, S2RetryPolicy::NoSideEffects);
        assert_eq!(c.max_retries, 3);
        assert!(c.validate().is_ok());
        assert!(c.basin_client().is_ok());
        assert_eq!(
            c.endpoint_for_logs(),
            "http://127.0.0.1:4566 (basin calls http://127.0.0.1:4566)"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (r#"{"basin":"orders-basin"}"#, "access_token"),
            (r#"{"basin":"Bad_Name","access_token":"t"}"#, "basin"),
            (
                r#"{"basin":"orders-basin","account_endpoint":"http://127.0.0.1:1"}"#,
                "basin_endpoint",
            ),
            (
                r#"{"basin":"orders-basin","endpoint":"ftp ://x"}"#,
                "endpoint",
            ),
            (
                r#"{"basin":"orders-basin","endpoint":"http://h:1","request_timeout":"0s"}"#,
                "request_timeout",
            ),
        ];
        for (json, expected) in cases {
            let error = parse(json).validate().unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let error =
            serde_json::from_str::<S2Connection>(r#"{"basin":"b","retry_policy":"sometimes"}"#)
                .unwrap_err();
        assert!(error.to_string().contains("sometimes"), "{error}");
    }

    #[test]
    fn the_token_never_prints() {
        let c = parse(r#"{"basin":"orders-basin","access_token":"hunter2"}"#);
        assert!(!format!("{c:?}").contains("hunter2"));
        let message = c.describe(&"server said hunter2");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
