//! The settings both Pravega plugins take at the top level of
//! `[plugin_config]`: controller, scope and stream, credentials, TLS, stream
//! creation and time limits. Errors name the setting and never hold a
//! credential.

use crate::client::ScalingPolicy;
use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::secret::{Secret, redact};
use serde::Deserialize;
use std::time::Duration;

/// URI schemes that mean TLS to pravega-client.
const TLS_SCHEMES: [&str; 4] = ["tls", "ssl", "tcps", "pravegas"];

fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_retries() -> u32 {
    5
}

fn default_retry_delay() -> Duration {
    Duration::from_millis(100)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PravegaConnection {
    /// `tcp://host:9090`, `tls://host:9090` or `host:9090`.
    pub controller_uri: String,
    pub scope: String,
    pub stream: String,
    pub credentials: Option<Credentials>,
    pub tls: Option<TlsSettings>,
    /// Creates the scope and the stream when missing.
    pub create: Option<CreateStream>,
    /// Each client call (and each retry inside the client) gives up after this.
    #[serde(default = "default_request_timeout", with = "serde_duration")]
    pub request_timeout: Duration,
    /// Retries inside the client after the first attempt.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// The client's first backoff; later ones grow tenfold, up to ten seconds.
    #[serde(default = "default_retry_delay", with = "serde_duration")]
    pub retry_delay: Duration,
}

/// Basic authentication: `username` and `password`, or `token` (the
/// already encoded credential pravega-client sends after `Basic`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// A PEM file with the CA certificate(s) the servers' certificates chain to.
    pub trust_store: Option<String>,
    /// Accepts any certificate: no chain, expiry or hostname check
    /// (pravega-client 0.3.7 has one switch for all of them).
    #[serde(default)]
    pub danger_accept_invalid_certs: bool,
    /// The old name of `danger_accept_invalid_certs`, inverted: it said
    /// "hostname" but turned off every certificate check. Still read, with
    /// a deprecation warning at open.
    pub validate_hostname: Option<bool>,
}

impl TlsSettings {
    /// Whether certificate checks are off, under either name.
    pub fn accepts_invalid_certs(&self) -> bool {
        self.danger_accept_invalid_certs || self.validate_hostname == Some(false)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingKind {
    Fixed,
    EventsPerSecond,
    KilobytesPerSecond,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStream {
    #[serde(default = "fixed")]
    pub scaling: ScalingKind,
    /// `fixed`: the number of segments; by rate: the minimum.
    #[serde(default = "one")]
    pub segments: i32,
    /// By rate: events/s or KiB/s per segment above which a segment splits.
    pub target_rate: Option<i32>,
    /// By rate: how many segments a split makes.
    #[serde(default = "two")]
    pub scale_factor: i32,
}

fn fixed() -> ScalingKind {
    ScalingKind::Fixed
}

fn one() -> i32 {
    1
}

fn two() -> i32 {
    2
}

/// Pravega's rule for scope, stream and reader group names.
pub fn check_name(field: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{field}: `{name}` is not a Pravega name (1 to 255 of A-Z a-z 0-9 - .)"
        ))
    }
}

impl PravegaConnection {
    /// Checks the settings; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.controller_parts()?;
        check_name("scope", &self.scope)?;
        check_name("stream", &self.stream)?;
        if let Some(credentials) = &self.credentials {
            credentials.validate()?;
        }
        if self.tls.is_some() && !self.tls_enabled() {
            return Err(
                "tls: the controller_uri scheme must be tls:// (or ssl, tcps, pravegas) to use TLS"
                    .into(),
            );
        }
        if let Some(tls) = &self.tls
            && tls.validate_hostname.is_some()
            && tls.danger_accept_invalid_certs
        {
            return Err(
                "tls.validate_hostname: replaced by tls.danger_accept_invalid_certs; give only the new key"
                    .into(),
            );
        }
        if self.tls_enabled()
            && self.tls.as_ref().is_none_or(|t| t.trust_store.is_none())
            && !self
                .tls
                .as_ref()
                .is_some_and(TlsSettings::accepts_invalid_certs)
        {
            return Err("tls.trust_store: a TLS controller_uri needs the CA file".into());
        }
        if let Some(create) = &self.create {
            create.scaling_policy()?;
        }
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be greater than zero".into());
        }
        if self.max_retries > 100 {
            return Err("max_retries must be at most 100".into());
        }
        Ok(())
    }

    /// Scheme (lower case, may be empty), host and port.
    pub fn controller_parts(&self) -> Result<(String, String, u16), String> {
        let uri = self.controller_uri.trim();
        let (scheme, rest) = match uri.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => (String::new(), uri),
        };
        let bad = |why: &str| format!("controller_uri: `{uri}` {why}");
        if !scheme.is_empty() && scheme != "tcp" && !TLS_SCHEMES.contains(&scheme.as_str()) {
            return Err(bad("has an unknown scheme (tcp or tls)"));
        }
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .ok_or_else(|| bad("needs host:port"))?;
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
        if !host_ok {
            return Err(bad("has no valid host"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("has no valid port"))?;
        Ok((scheme, host.to_string(), port))
    }

    pub fn tls_enabled(&self) -> bool {
        self.controller_parts()
            .is_ok_and(|(scheme, _, _)| TLS_SCHEMES.contains(&scheme.as_str()))
    }

    /// What is unsafe or outdated in these settings, one sentence each, for
    /// a WARN at open (never a credential in them).
    pub fn risks(&self) -> Vec<String> {
        let mut risks = Vec::new();
        let tls = self.tls.as_ref();
        if let Some(old) = tls.and_then(|t| t.validate_hostname) {
            risks.push(format!(
                "tls.validate_hostname is deprecated: it never checked only the hostname; \
                 write tls.danger_accept_invalid_certs = {}",
                !old
            ));
        }
        if self.tls_enabled() && tls.is_some_and(TlsSettings::accepts_invalid_certs) {
            risks.push(
                "TLS certificate checks are OFF (tls.danger_accept_invalid_certs): any server, \
                 or anyone in between, can pose as the controller and segment stores"
                    .into(),
            );
        }
        if self.credentials.is_some() && !self.tls_enabled() {
            risks.push(format!(
                "credentials are sent in clear text over `{}` (no TLS): anyone on the network \
                 path can read them; use a tls:// controller_uri",
                self.controller_uri
            ));
        }
        risks
    }

    /// `scope/stream at uri`, for logs (credentials are never part of it).
    pub fn target(&self) -> String {
        format!("{}/{} at {}", self.scope, self.stream, self.controller_uri)
    }

    /// An error message with the target for context and any credential
    /// removed, should the client ever echo one.
    pub fn describe(&self, error: &dyn std::fmt::Display) -> String {
        let secrets: Vec<&Secret> = self
            .credentials
            .iter()
            .flat_map(|c| c.password.iter().chain(c.token.iter()))
            .collect();
        redact(&format!("Pravega {}: {error}", self.target()), &secrets)
    }
}

impl Credentials {
    fn validate(&self) -> Result<(), String> {
        match (&self.username, &self.password, &self.token) {
            (Some(user), Some(_), None) if !user.is_empty() => Ok(()),
            (None, None, Some(token)) if !token.is_empty() => Ok(()),
            _ => Err(
                "credentials: give `username` and `password`, or `token` alone (non-empty)".into(),
            ),
        }
    }
}

impl CreateStream {
    pub fn scaling_policy(&self) -> Result<ScalingPolicy, String> {
        if self.segments < 1 {
            return Err("create.segments must be at least 1".into());
        }
        if self.scaling == ScalingKind::Fixed {
            if self.target_rate.is_some() {
                return Err("create.target_rate: only for scaling by rate".into());
            }
            return Ok(ScalingPolicy::Fixed {
                segments: self.segments,
            });
        }
        let target_rate = self
            .target_rate
            .filter(|r| *r > 0)
            .ok_or("create.target_rate: scaling by rate needs a target rate above 0")?;
        if self.scale_factor < 2 {
            return Err("create.scale_factor must be at least 2".into());
        }
        let (scale_factor, min_segments) = (self.scale_factor, self.segments);
        Ok(match self.scaling {
            ScalingKind::EventsPerSecond => ScalingPolicy::EventsPerSecond {
                target_rate,
                scale_factor,
                min_segments,
            },
            _ => ScalingPolicy::KilobytesPerSecond {
                target_rate,
                scale_factor,
                min_segments,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PravegaConnection, String> {
        serde_json::from_str::<PravegaConnection>(json)
            .map_err(|e| e.to_string())
            .and_then(|c| c.validate().map(|()| c))
    }

    const BASE: &str =
        r#""controller_uri":"tcp://127.0.0.1:9090","scope":"shop","stream":"orders""#;

    #[test]
    fn defaults_and_parts() {
        let c = parse(&format!("{{{BASE}}}")).unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.max_retries, 5);
        assert_eq!(
            c.controller_parts().unwrap(),
            ("tcp".into(), "127.0.0.1".into(), 9090)
        );
        assert!(!c.tls_enabled());
        assert_eq!(c.target(), "shop/orders at tcp://127.0.0.1:9090");
        let c = parse(
            r#"{"controller_uri":"tls://ctl.example:9090","scope":"s","stream":"t",
            "tls":{"trust_store":"/ca.pem"}}"#,
        )
        .unwrap();
        assert!(c.tls_enabled());
    }

    #[test]
    fn scaling_policies() {
        let policy = |json: &str| {
            serde_json::from_str::<CreateStream>(json)
                .unwrap()
                .scaling_policy()
        };
        assert_eq!(
            policy(r#"{"segments":3}"#),
            Ok(ScalingPolicy::Fixed { segments: 3 })
        );
        assert_eq!(
            policy(r#"{"scaling":"events_per_second","target_rate":100,"segments":2}"#),
            Ok(ScalingPolicy::EventsPerSecond {
                target_rate: 100,
                scale_factor: 2,
                min_segments: 2
            })
        );
        assert_eq!(
            policy(r#"{"scaling":"kilobytes_per_second","target_rate":512,"scale_factor":3}"#),
            Ok(ScalingPolicy::KilobytesPerSecond {
                target_rate: 512,
                scale_factor: 3,
                min_segments: 1
            })
        );
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (
                r#""controller_uri":"127.0.0.1","scope":"s","stream":"t""#,
                "controller_uri",
            ),
            (
                r#""controller_uri":"http://h:9090","scope":"s","stream":"t""#,
                "controller_uri",
            ),
            (
                r#""controller_uri":"h:99999","scope":"s","stream":"t""#,
                "controller_uri",
            ),
            (
                r#""controller_uri":"h:9090","scope":"bad scope","stream":"t""#,
                "scope",
            ),
            (
                r#""controller_uri":"h:9090","scope":"s","stream":"t_1""#,
                "stream",
            ),
            (
                r#""controller_uri":"tls://h:9090","scope":"s","stream":"t""#,
                "tls.trust_store",
            ),
            (
                r#""controller_uri":"h:9090","scope":"s","stream":"t","tls":{}"#,
                "tls:",
            ),
            (
                r#""controller_uri":"h:9090","scope":"s","stream":"t","credentials":{"username":"u"}"#,
                "credentials",
            ),
            (
                r#""controller_uri":"h:9090","scope":"s","stream":"t","credentials":{"username":"u","password":"p","token":"x"}"#,
                "credentials",
            ),
            (
                r#""controller_uri":"h:9090","scope":"s","stream":"t","create":{"segments":0}"#,
                "create.segments",
            ),
            (
                r#""controller_uri":"h:9090","scope":"s","stream":"t","create":{"scaling":"events_per_second"}"#,
                "create.target_rate",
            ),
            (
                r#""controller_uri":"h:9090","scope":"s","stream":"t","request_timeout":"0s""#,
                "request_timeout",
            ),
            (
                r#""controller_uri":"h:9090","scope":"s","stream":"t","create":{"scaling":"sometimes"}"#,
                "sometimes",
            ),
        ];
        for (fields, expected) in cases {
            let json = format!("{{{fields}}}");
            let error = parse(&json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn certificate_checks_off_and_clear_text_credentials_are_named_risks() {
        let c = parse(&format!("{{{BASE}}}")).unwrap();
        assert!(c.risks().is_empty());

        let c = parse(&format!(
            r#"{{{BASE},"credentials":{{"username":"admin","password":"hunter2"}}}}"#
        ))
        .unwrap();
        let risks = c.risks().join("\n");
        assert!(
            risks.contains("clear text over `tcp://127.0.0.1:9090`"),
            "{risks}"
        );
        assert!(
            !risks.contains("hunter2") && !risks.contains("admin"),
            "{risks}"
        );

        let tls = r#""controller_uri":"tls://h:9090","scope":"s","stream":"t""#;
        let c = parse(&format!(
            r#"{{{tls},"tls":{{"danger_accept_invalid_certs":true}},"credentials":{{"token":"c2VjcmV0"}}}}"#
        ))
        .unwrap();
        assert_eq!(c.risks().len(), 1, "{:?}", c.risks());
        assert!(c.risks()[0].contains("certificate checks are OFF"));

        // The old key still works, and says what to write instead.
        let c = parse(&format!(r#"{{{tls},"tls":{{"validate_hostname":false}}}}"#)).unwrap();
        assert!(c.tls.as_ref().unwrap().accepts_invalid_certs());
        let risks = c.risks().join("\n");
        assert!(
            risks.contains("tls.danger_accept_invalid_certs = true")
                && risks.contains("certificate checks are OFF"),
            "{risks}"
        );
        let c = parse(&format!(
            r#"{{{tls},"tls":{{"validate_hostname":true,"trust_store":"/ca.pem"}}}}"#
        ))
        .unwrap();
        assert!(!c.tls.as_ref().unwrap().accepts_invalid_certs());
        assert_eq!(c.risks().len(), 1, "only the deprecation: {:?}", c.risks());

        let both = parse(&format!(
            r#"{{{tls},"tls":{{"validate_hostname":false,"danger_accept_invalid_certs":true}}}}"#
        ))
        .unwrap_err();
        assert!(both.starts_with("tls.validate_hostname"), "{both}");
    }

    #[test]
    fn credentials_never_print() {
        let c = parse(&format!(
            r#"{{{BASE},"credentials":{{"username":"admin","password":"hunter2"}}}}"#
        ))
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let message = c.describe(&"auth failed for admin:hunter2");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.starts_with("Pravega shop/orders at"), "{message}");
    }
}
