//! Connection settings and `connect`. Errors name the setting at fault and
//! never contain a secret: server URLs are shown without credentials.

use iggy_connector_common::duration::serde_duration;
use iggy_connector_common::secret::{Secret, redact_url_credentials};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConnection {
    /// `nats://host:port` or `tls://host:port`; several for a cluster.
    pub servers: Vec<String>,
    /// Shown by the server (`nats server report connections`).
    #[serde(default)]
    pub connection_name: Option<String>,
    #[serde(default = "default_connect_timeout", with = "serde_duration")]
    pub connect_timeout: Duration,
    /// JetStream API calls and publish acknowledgements.
    #[serde(default = "default_request_timeout", with = "serde_duration")]
    pub request_timeout: Duration,
    /// Reconnect attempts after a lost connection; absent means forever.
    #[serde(default)]
    pub max_reconnects: Option<usize>,
    #[serde(default)]
    pub auth: NatsAuth,
    #[serde(default)]
    pub tls: NatsTls,
}

/// At most one method: user and password, token, NKey seed or credentials file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    pub nkey_seed: Option<Secret>,
    pub credentials_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsTls {
    /// Refuse to talk to a server without TLS.
    #[serde(default)]
    pub required: bool,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl NatsConnection {
    /// Checks the settings; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("servers: give at least one server URL".into());
        }
        for server in &self.servers {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|s| server.starts_with(s))
                || !server.contains("://");
            if !scheme_ok || server.trim().is_empty() {
                return Err(format!(
                    "servers: `{}` is not a nats://, tls://, ws:// or wss:// URL",
                    redact_url_credentials(server)
                ));
            }
        }
        let auth = &self.auth;
        let methods = [
            auth.user.is_some() || auth.password.is_some(),
            auth.token.is_some(),
            auth.nkey_seed.is_some(),
            auth.credentials_file.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(
                "auth: give only one of user/password, token, nkey_seed or credentials_file".into(),
            );
        }
        if auth.user.is_some() != auth.password.is_some() {
            return Err("auth: user and password go together".into());
        }
        if let Some(path) = &auth.credentials_file
            && !path.is_file()
        {
            return Err(format!(
                "auth.credentials_file: {} does not exist",
                path.display()
            ));
        }
        let tls = &self.tls;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err("tls: cert_file and key_file go together".into());
        }
        for (field, path) in [
            ("tls.ca_file", &tls.ca_file),
            ("tls.cert_file", &tls.cert_file),
            ("tls.key_file", &tls.key_file),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(format!("{field}: {} does not exist", path.display()));
            }
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err("connect_timeout and request_timeout must be greater than zero".into());
        }
        Ok(())
    }

    /// The servers as they may appear in logs.
    pub fn servers_for_logs(&self) -> String {
        self.servers
            .iter()
            .map(|s| redact_url_credentials(s))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Connects (after `validate`); `default_name` names the connection when
    /// `connection_name` is not set.
    pub async fn connect(&self, default_name: &str) -> Result<async_nats::Client, String> {
        let auth = &self.auth;
        let mut options = match &auth.credentials_file {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| format!("auth.credentials_file {}: {e}", path.display()))?,
            None => async_nats::ConnectOptions::new(),
        };
        if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
            options = options.user_and_password(user.clone(), password.expose().to_string());
        }
        if let Some(token) = &auth.token {
            options = options.token(token.expose().to_string());
        }
        if let Some(seed) = &auth.nkey_seed {
            options = options.nkey(seed.expose().to_string());
        }
        let tls = &self.tls;
        options = options.require_tls(tls.required);
        if let Some(ca) = &tls.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let servers: Vec<async_nats::ServerAddr> = self
            .servers
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| format!("servers: `{}`: {e}", redact_url_credentials(s)))
            })
            .collect::<Result<_, _>>()?;
        options
            .name(self.connection_name.as_deref().unwrap_or(default_name))
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(self.request_timeout))
            .max_reconnects(self.max_reconnects)
            .connect(servers)
            .await
            .map_err(|e| {
                let secrets: Vec<&Secret> = [&auth.password, &auth.token, &auth.nkey_seed]
                    .into_iter()
                    .flatten()
                    .collect();
                // rustls's words for a peer that answered in plain text.
                let hint = if tls.required && e.to_string().contains("InvalidContentType") {
                    " (tls.required is set but the server did not answer in TLS: \
                     is TLS enabled on it?)"
                } else {
                    ""
                };
                iggy_connector_common::secret::redact(
                    &format!(
                        "cannot connect to NATS at {}: {e}{hint}",
                        self.servers_for_logs()
                    ),
                    &secrets,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> NatsConnection {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_and_durations() {
        let c = parse(r#"{"servers":["nats://127.0.0.1:4222"],"connect_timeout":"250ms"}"#);
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (r#"{"servers":[]}"#, "servers"),
            (r#"{"servers":["http://x:1"]}"#, "servers"),
            (
                r#"{"servers":["nats://x"],"auth":{"token":"t","nkey_seed":"s"}}"#,
                "only one of",
            ),
            (
                r#"{"servers":["nats://x"],"auth":{"user":"u"}}"#,
                "user and password",
            ),
            (
                r#"{"servers":["nats://x"],"auth":{"credentials_file":"/nonexistent.creds"}}"#,
                "auth.credentials_file",
            ),
            (
                r#"{"servers":["nats://x"],"tls":{"cert_file":"/c"}}"#,
                "cert_file and key_file",
            ),
            (
                r#"{"servers":["nats://x"],"tls":{"ca_file":"/nonexistent.pem"}}"#,
                "tls.ca_file",
            ),
        ];
        for (json, expected) in cases {
            let error = parse(json).validate().unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let error =
            serde_json::from_str::<NatsConnection>(r#"{"servers":["x"],"sever":1}"#).unwrap_err();
        assert!(error.to_string().contains("sever"));
    }

    #[test]
    fn urls_with_credentials_are_redacted_in_messages() {
        let c = parse(r#"{"servers":["http://user:hunter2@host:1"]}"#);
        let error = c.validate().unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[tokio::test]
    async fn unreachable_server_is_a_clear_error_without_secrets() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = parse(&format!(
            r#"{{"servers":["nats://127.0.0.1:{port}"],"connect_timeout":"500ms","auth":{{"user":"u","password":"s3cret-pw"}}}}"#
        ));
        let error = c.connect("test").await.unwrap_err();
        assert!(
            error.starts_with("cannot connect to NATS at nats://127.0.0.1:"),
            "{error}"
        );
        assert!(!error.contains("s3cret-pw"), "{error}");
    }
}
