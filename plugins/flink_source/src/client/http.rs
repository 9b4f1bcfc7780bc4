//! One HTTP client for both Flink endpoints: timeouts, the auth header a
//! proxy expects, TLS, JSON in and out, and errors that say which request
//! failed and why in one line, and whether retrying can help.

use super::flink_error;
use super::tls;
use crate::config::{AuthConfig, HttpSettings};
use iggy_connector_common::{
    Classify, ErrorClass, RetryError, RetryPolicy, classify_http_status, parse_retry_after, retry,
};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// No answer: refused, reset, timed out.
    Unreachable,
    /// Flink (or a proxy) answered with this non-success status.
    Status(u16),
    /// A success status whose body is not what the API documents.
    InvalidResponse,
}

#[derive(Debug)]
pub struct HttpError {
    pub kind: HttpErrorKind,
    /// `GET /jobs/overview`: method and path, never credentials.
    pub request: String,
    pub detail: String,
    retry_after: Option<std::time::Duration>,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            HttpErrorKind::Status(status) => {
                write!(f, "{} → HTTP {status}: {}", self.request, self.detail)
            }
            _ => write!(f, "{}: {}", self.request, self.detail),
        }
    }
}

impl HttpError {
    /// A success status with a body that is not what the API documents.
    pub fn invalid_response(request: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: HttpErrorKind::InvalidResponse,
            request: request.into(),
            detail: detail.into(),
            retry_after: None,
        }
    }
}

impl Classify for HttpError {
    fn class(&self) -> ErrorClass {
        match self.kind {
            HttpErrorKind::Unreachable => ErrorClass::Transient { retry_after: None },
            HttpErrorKind::Status(status) => classify_http_status(status, self.retry_after),
            HttpErrorKind::InvalidResponse => ErrorClass::Permanent,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    auth: Option<AuthConfig>,
    retry: RetryPolicy,
}

impl HttpClient {
    pub fn new(settings: &HttpSettings, https: bool) -> Result<Self, String> {
        let tls = tls::client_config(settings, https)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!(
                "iggy-connector-flink-source/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;
        Ok(Self {
            client,
            auth: settings.auth.clone(),
            retry: settings.retry.clone(),
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, HttpError> {
        self.call(Method::GET, url, None).await
    }

    /// A request whose answer is JSON of type `T` (`serde::de::IgnoredAny` to ignore it).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<T, HttpError> {
        let label = format!("{method} {}", url.path());
        let mut request = self.client.request(method, url);
        request = match &self.auth {
            Some(AuthConfig::Bearer { token }) => request.bearer_auth(token.expose()),
            Some(AuthConfig::Basic { username, password }) => {
                request.basic_auth(username, Some(password.expose()))
            }
            None => request,
        };
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let unreachable = |label: &str, error: reqwest::Error| HttpError {
            kind: HttpErrorKind::Unreachable,
            request: label.to_string(),
            detail: error_chain(&error),
            retry_after: None,
        };
        let response = request
            .send()
            .await
            .map_err(|error| unreachable(&label, error))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let bytes = response
            .bytes()
            .await
            .map_err(|error| unreachable(&label, error))?;
        if !status.is_success() {
            return Err(HttpError {
                kind: HttpErrorKind::Status(status.as_u16()),
                request: label,
                detail: status_detail(status, &bytes),
                retry_after,
            });
        }
        // Some Flink handlers answer 202 or 200 with an empty body.
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes).map_err(|error| {
            HttpError::invalid_response(label, format!("unexpected response body: {error}"))
        })
    }

    /// Runs `op` under the configured retry policy.
    pub async fn with_retry<T, F, Fut>(&self, what: &str, op: F) -> Result<T, RetryError<HttpError>>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, HttpError>>,
    {
        retry(&self.retry, what, op).await
    }
}

fn status_detail(status: StatusCode, body: &[u8]) -> String {
    if body.is_empty() {
        return status.canonical_reason().unwrap_or("no body").to_string();
    }
    flink_error::summarize(body)
}

/// reqwest's top-level message is generic ("error sending request"); the
/// cause (connection refused, timed out, certificate) is further down.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    // URLs are checked to carry no credentials; this keeps it so if one slips through.
    iggy_connector_common::redact_url_credentials(&text)
}

/// `base` joined with an absolute API path such as `/v3/sessions`.
pub fn endpoint(base: &Url, path_and_query: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(query);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_a_base_path_and_take_a_query() {
        let base = Url::parse("http://proxy:9000/flink/").unwrap();
        assert_eq!(
            endpoint(&base, "/v3/sessions/s/operations/o/result/3?rowFormat=JSON").as_str(),
            "http://proxy:9000/flink/v3/sessions/s/operations/o/result/3?rowFormat=JSON"
        );
        let base = Url::parse("http://127.0.0.1:8081").unwrap();
        assert_eq!(
            endpoint(&base, "/jobs/overview").as_str(),
            "http://127.0.0.1:8081/jobs/overview"
        );
    }

    #[test]
    fn status_errors_are_classified() {
        let error = |status| HttpError {
            kind: HttpErrorKind::Status(status),
            request: "GET /x".into(),
            detail: "d".into(),
            retry_after: None,
        };
        assert!(error(500).class().is_transient());
        assert!(error(503).class().is_transient());
        assert!(!error(404).class().is_transient());
        assert!(!error(401).class().is_transient());
        assert_eq!(error(500).to_string(), "GET /x → HTTP 500: d");
    }
}
