//! openGemini's HTTP API: `/write` with retries, capped backoff and
//! failover across endpoints, `/ping`, and `CREATE DATABASE` over `/query`.
//! Credentials never appear in what it logs or returns.

use crate::config::{Credentials, EndpointSelection, SinkConfig};
use crate::outage::OutageLog;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use iggy_connector_common::{
    Classify, ErrorClass, RetryError, RetryErrorKind, RetryPolicy, Secret, classify_http_status,
    parse_retry_after, redact, redact_url_credentials, retry,
};
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Response, Url};
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

/// Error bodies are read up to this much; the useful part is the first line.
const MAX_ERROR_BODY: usize = 4096;
/// What a server says is cut to this many characters in errors and logs.
const MAX_DETAIL_CHARS: usize = 300;
/// The longest `open` retries its probe and `CREATE DATABASE`: the runtime
/// opens connectors one after another and skips one whose open fails, so
/// open must not hold the others up for a whole outage deadline.
const OPEN_DEADLINE: Duration = Duration::from_secs(30);

/// What went wrong, as far as deciding what to do next goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: a bad line, a type conflict (partial write), a read-only server.
    BadRequest,
    /// 401: wrong or missing credentials.
    Unauthorized,
    /// 403: no write grant, or openGemini's "disable write".
    Forbidden,
    /// 404 on `/write`: the database does not exist.
    DatabaseNotFound,
    /// 413: the body is over the server's limit.
    TooLarge,
    /// 408, 425, 429: the server asks to come back later.
    Throttled,
    /// 5xx, including openGemini's 503 "request throttled".
    ServerError,
    Timeout,
    Connection,
    /// Anything else (a status out of protocol, a refused statement).
    Unexpected,
}

impl ErrorKind {
    fn of_status(status: u16) -> Self {
        match status {
            400 => ErrorKind::BadRequest,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::DatabaseNotFound,
            413 => ErrorKind::TooLarge,
            408 | 425 | 429 => ErrorKind::Throttled,
            500..=599 => ErrorKind::ServerError,
            _ => ErrorKind::Unexpected,
        }
    }
}

#[derive(Debug)]
pub struct ClientError {
    pub kind: ErrorKind,
    class: ErrorClass,
    endpoint: String,
    status: Option<u16>,
    detail: String,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} answered {status}: {}", self.endpoint, self.detail),
            None => write!(f, "{}: {}", self.endpoint, self.detail),
        }
    }
}

impl Classify for ClientError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// One server of the cluster, its URLs prepared once.
struct Endpoint {
    /// The base URL as logged (it never holds credentials).
    shown: String,
    write: Url,
    query: Url,
    ping: Url,
    outage: OutageLog,
}

pub struct Client {
    http: reqwest::Client,
    endpoints: Vec<Endpoint>,
    /// Round robin: the next request's first endpoint. Failover: the
    /// endpoint in use.
    cursor: AtomicUsize,
    selection: EndpointSelection,
    basic: Option<(String, Secret)>,
    /// `u`/`p` query parameters, added to `/query` calls (already in `write`).
    query_credentials: Option<(String, Secret)>,
    authorization: Option<HeaderValue>,
    secrets: Vec<Secret>,
    gzip: bool,
    /// Writes of `consume`: by default until the server is back or the
    /// outage deadline passes.
    retry: RetryPolicy,
    /// The probe and `CREATE DATABASE`, bounded by [`OPEN_DEADLINE`].
    open_retry: RetryPolicy,
    database: String,
}

impl Client {
    /// `sink` is the connector's id, for the outage log.
    pub fn new(config: &SinkConfig, sink: u32) -> Result<Self, String> {
        let (mut basic, mut query_credentials, mut authorization) = (None, None, None);
        match config.auth()? {
            Credentials::None => {}
            Credentials::Password {
                user,
                password,
                in_query: false,
            } => basic = Some((user.to_owned(), password.clone())),
            Credentials::Password {
                user,
                password,
                in_query: true,
            } => query_credentials = Some((user.to_owned(), password.clone())),
            Credentials::Header { scheme, token } => {
                let mut value = HeaderValue::from_str(&format!("{scheme} {}", token.expose()))
                    .map_err(|_| {
                        "token holds characters an HTTP header cannot carry".to_string()
                    })?;
                value.set_sensitive(true);
                authorization = Some(value);
            }
        }
        let endpoints = config
            .endpoint_texts()
            .iter()
            .map(|text| endpoint(text, config, query_credentials.as_ref(), sink))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            http: http_client(config)?,
            endpoints,
            cursor: AtomicUsize::new(0),
            selection: config.endpoint_selection,
            basic,
            query_credentials,
            authorization,
            secrets: config.secrets(),
            gzip: config.gzip,
            retry: config.retry.clone(),
            open_retry: RetryPolicy {
                max_elapsed: Some(
                    config
                        .retry
                        .max_elapsed
                        .map_or(OPEN_DEADLINE, |limit| limit.min(OPEN_DEADLINE)),
                ),
                ..config.retry.clone()
            },
            database: config.database.clone(),
        })
    }

    pub fn endpoint_names(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|e| e.shown.as_str())
    }

    /// `GET /ping` on endpoint `index`: the server and version it names.
    /// Sent without credentials: a failed login counts towards lockout.
    pub async fn ping(&self, index: usize) -> Result<String, ClientError> {
        let endpoint = &self.endpoints[index];
        let response = self
            .send(endpoint, self.http.get(endpoint.ping.clone()))
            .await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(
            match (header("x-geminidb-version"), header("x-influxdb-version")) {
                (Some(version), _) => format!("openGemini {version}"),
                (None, Some(version)) => format!("InfluxDB {version}"),
                (None, None) => "an unidentified server".into(),
            },
        )
    }

    /// Writes line-protocol `lines` (whole lines), retrying transient
    /// failures on the next endpoint under `retry`.
    pub async fn write(&self, lines: &[u8]) -> Result<(), RetryError<ClientError>> {
        self.post(lines, &self.retry).await
    }

    /// The empty write of `open`, answered as a real one would be (404, 401…).
    pub async fn probe(&self) -> Result<(), RetryError<ClientError>> {
        self.post(b"", &self.open_retry).await
    }

    async fn post(
        &self,
        lines: &[u8],
        policy: &RetryPolicy,
    ) -> Result<(), RetryError<ClientError>> {
        let compressed = self.gzip && !lines.is_empty();
        let body = if compressed {
            gzip(lines).map_err(|error| RetryError {
                attempts: 0,
                last: self.local_error(format!("cannot gzip the request: {error}")),
                kind: RetryErrorKind::Permanent,
            })?
        } else {
            Bytes::copy_from_slice(lines)
        };
        self.with_failover(policy, "openGemini write", |endpoint| {
            let mut request = self
                .authorized(self.http.post(endpoint.write.clone()))
                .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(body.clone());
            if compressed {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
            async move {
                let result = self.send(endpoint, request).await.map(drop);
                match &result {
                    Ok(()) => {
                        endpoint.outage.succeeded();
                    }
                    Err(error) if error.class.is_transient() => {
                        endpoint.outage.failed(error);
                    }
                    Err(_) => {}
                }
                result
            }
        })
        .await
    }

    /// `CREATE DATABASE` (a no-op when it exists); needs an admin user.
    pub async fn create_database(&self) -> Result<(), RetryError<ClientError>> {
        let statement = format!("CREATE DATABASE {}", quote_identifier(&self.database));
        self.with_failover(&self.open_retry, "openGemini CREATE DATABASE", |endpoint| {
            let mut url = endpoint.query.clone();
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("q", &statement);
                if let Some((user, password)) = &self.query_credentials {
                    query
                        .append_pair("u", user)
                        .append_pair("p", password.expose());
                }
            }
            let request = self.authorized(self.http.post(url));
            async move {
                let response = self.send(endpoint, request).await?;
                let body = read_prefix(response, 64 * 1024).await;
                match statement_error(&body) {
                    None => Ok(()),
                    Some(error) => Err(ClientError {
                        kind: ErrorKind::Unexpected,
                        class: ErrorClass::Permanent,
                        endpoint: endpoint.shown.clone(),
                        status: None,
                        detail: self.scrub(&format!("CREATE DATABASE refused: {error}")),
                    }),
                }
            }
        })
        .await
    }

    /// Runs `attempt` under the retry policy, each try on the endpoint the
    /// selection picks; a transient failure moves to the next endpoint.
    async fn with_failover<'a, F, Fut>(
        &'a self,
        policy: &RetryPolicy,
        what: &str,
        mut attempt: F,
    ) -> Result<(), RetryError<ClientError>>
    where
        F: FnMut(&'a Endpoint) -> Fut,
        Fut: Future<Output = Result<(), ClientError>>,
    {
        let count = self.endpoints.len();
        let first = match self.selection {
            EndpointSelection::RoundRobin => self.cursor.fetch_add(1, Ordering::Relaxed),
            EndpointSelection::Failover => self.cursor.load(Ordering::Relaxed),
        };
        retry(policy, what, |number| {
            let index = first.wrapping_add(number as usize - 1) % count;
            let pending = attempt(&self.endpoints[index]);
            async move {
                let result = pending.await;
                if let Err(error) = &result
                    && error.class.is_transient()
                    && self.selection == EndpointSelection::Failover
                {
                    // Only the first to notice moves the shared cursor on.
                    let _ = self.cursor.compare_exchange(
                        index,
                        (index + 1) % count,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                result
            }
        })
        .await
    }

    fn authorized(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password.expose()));
        }
        if let Some(value) = &self.authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        request
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        request: reqwest::RequestBuilder,
    ) -> Result<Response, ClientError> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Err(self.transport_error(endpoint, error)),
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header(RETRY_AFTER.as_str())
            .and_then(|value| parse_retry_after(&value, SystemTime::now()));
        let influx_error = header("x-influxdb-error");
        let body = read_prefix(response, MAX_ERROR_BODY).await;
        let detail = influx_error
            .or_else(|| json_error(&body))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        Err(ClientError {
            kind: ErrorKind::of_status(status),
            class: classify_http_status(status, retry_after),
            endpoint: endpoint.shown.clone(),
            status: Some(status),
            detail: self.scrub(&detail),
        })
    }

    fn transport_error(&self, endpoint: &Endpoint, error: reqwest::Error) -> ClientError {
        // Without the URL: with `auth_scheme = "query"` it holds the password.
        let error = error.without_url();
        let kind = if error.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connection
        };
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        // A request that may have reached the server is safe to repeat:
        // points are idempotent.
        ClientError {
            kind,
            class: ErrorClass::Transient { retry_after: None },
            endpoint: endpoint.shown.clone(),
            status: None,
            detail: self.scrub(&detail),
        }
    }

    fn local_error(&self, detail: String) -> ClientError {
        ClientError {
            kind: ErrorKind::Unexpected,
            class: ErrorClass::Permanent,
            endpoint: "the sink".into(),
            status: None,
            detail,
        }
    }

    /// Server text made safe to log: no secrets, no line breaks, short.
    fn scrub(&self, text: &str) -> String {
        let secrets: Vec<&Secret> = self.secrets.iter().collect();
        let clean = redact(&redact_url_credentials(text), &secrets);
        let mut short: String = clean
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_DETAIL_CHARS)
            .collect();
        if clean.chars().count() > MAX_DETAIL_CHARS {
            short.push('…');
        }
        short.trim().to_owned()
    }
}

fn http_client(config: &SinkConfig) -> Result<reqwest::Client, String> {
    // reqwest comes without a crypto provider; give this library's copy of
    // rustls ring's. It fails only if one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!(
            "iggy-connector-opengemini-sink/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(path) = &config.tls_ca_file {
        let pem = std::fs::read(path)
            .map_err(|error| format!("tls_ca_file {}: {error}", path.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|error| format!("tls_ca_file {}: {error}", path.display()))?;
        if certificates.is_empty() {
            return Err(format!(
                "tls_ca_file {}: no PEM certificates",
                path.display()
            ));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))
}

/// Parses one configured endpoint: a URL, or `host[:port]` for plain HTTP
/// on port 8086 unless given.
fn endpoint(
    text: &str,
    config: &SinkConfig,
    query_credentials: Option<&(String, Secret)>,
    sink: u32,
) -> Result<Endpoint, String> {
    let shown_text = redact_url_credentials(text);
    let bad = |reason: String| format!("endpoint `{shown_text}`: {reason}");
    let mut base = match text.contains("://") {
        true => Url::parse(text),
        false => Url::parse(&format!("http://{text}")),
    }
    .map_err(|error| bad(error.to_string()))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(bad("only http and https are supported".into()));
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(bad(
            "put credentials in username/password or token, not in the URL".into(),
        ));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(bad("the URL must not have a query or fragment".into()));
    }
    if !text.contains("://") && base.port().is_none() {
        base.set_port(Some(crate::config::DEFAULT_PORT))
            .map_err(|()| bad("cannot set the port".into()))?;
    }
    let prefix = base.path().trim_end_matches('/').to_owned();
    let at = |path: &str| {
        let mut url = base.clone();
        url.set_path(&format!("{prefix}/{path}"));
        url
    };
    let mut write = at("write");
    {
        let mut query = write.query_pairs_mut();
        query.append_pair("db", &config.database);
        if let Some(rp) = &config.retention_policy {
            query.append_pair("rp", rp);
        }
        query.append_pair("precision", config.precision.query_value());
        if let Some((user, password)) = query_credentials {
            query
                .append_pair("u", user)
                .append_pair("p", password.expose());
        }
    }
    let host = base.host_str().unwrap_or_default();
    let shown = match base.port() {
        Some(port) => format!("{}://{host}:{port}{prefix}", base.scheme()),
        None => format!("{}://{host}{prefix}", base.scheme()),
    };
    Ok(Endpoint {
        outage: OutageLog::new(sink, &shown, config.retry.max_elapsed),
        shown,
        write,
        query: at("query"),
        ping: at("ping"),
    })
}

fn gzip(data: &[u8]) -> std::io::Result<Bytes> {
    // Level 1: line protocol shrinks ~5x even so, at a fraction of the CPU.
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    encoder.write_all(data)?;
    encoder.finish().map(Bytes::from)
}

async fn read_prefix(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

/// The `error` of a `{"error": "..."}` body.
fn json_error(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("error")?.as_str().map(str::to_owned)
}

/// The first statement error of a `/query` answer, which is 200 even when
/// a statement failed.
fn statement_error(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
        return Some(error.to_owned());
    }
    value
        .get("results")?
        .as_array()?
        .iter()
        .find_map(|result| result.get("error")?.as_str().map(str::to_owned))
}

/// An InfluxQL identifier in double quotes.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> SinkConfig {
        let config: SinkConfig = serde_json::from_value(json).unwrap();
        config.validate().unwrap();
        config
    }

    fn only_endpoint(json: serde_json::Value) -> Endpoint {
        let config = config(json);
        endpoint(&config.endpoint_texts()[0], &config, None, 1).unwrap()
    }

    #[test]
    fn statuses_map_to_kinds_and_retry_classes() {
        for (status, kind, transient) in [
            (400, ErrorKind::BadRequest, false),
            (401, ErrorKind::Unauthorized, false),
            (403, ErrorKind::Forbidden, false),
            (404, ErrorKind::DatabaseNotFound, false),
            (413, ErrorKind::TooLarge, false),
            (429, ErrorKind::Throttled, true),
            (500, ErrorKind::ServerError, true),
            (503, ErrorKind::ServerError, true),
            (302, ErrorKind::Unexpected, false),
        ] {
            assert_eq!(ErrorKind::of_status(status), kind, "{status}");
            assert_eq!(
                classify_http_status(status, None).is_transient(),
                transient,
                "{status}"
            );
        }
    }

    #[test]
    fn endpoints_get_write_urls_with_database_and_precision() {
        let endpoint = only_endpoint(serde_json::json!({
            "url": "https://db.example:9086/influx/",
            "database": "my db",
            "retention_policy": "rp1",
            "precision": "us",
        }));
        assert_eq!(endpoint.shown, "https://db.example:9086/influx");
        assert_eq!(
            endpoint.write.as_str(),
            "https://db.example:9086/influx/write?db=my+db&rp=rp1&precision=u"
        );
        assert_eq!(
            endpoint.ping.as_str(),
            "https://db.example:9086/influx/ping"
        );
        let endpoint = only_endpoint(serde_json::json!({"url": "gemini1", "database": "d"}));
        assert_eq!(endpoint.shown, "http://gemini1:8086");
        assert_eq!(
            endpoint.write.as_str(),
            "http://gemini1:8086/write?db=d&precision=ns"
        );
        let endpoint =
            only_endpoint(serde_json::json!({"host": "10.0.0.5", "port": 8087, "database": "d"}));
        assert_eq!(endpoint.query.as_str(), "http://10.0.0.5:8087/query");
    }

    #[test]
    fn bad_endpoints_are_refused_without_showing_passwords() {
        for (url, expected) in [
            ("ftp://h", "only http and https"),
            ("http://u:hunter2@h:8086", "not in the URL"),
            ("http://h:8086/?db=x", "query or fragment"),
            ("http://[::1", "endpoint"),
        ] {
            let config = config(serde_json::json!({"url": url, "database": "d"}));
            let error = endpoint(url, &config, None, 1).err().unwrap();
            assert!(error.contains(expected), "{url}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn server_text_is_scrubbed_of_secrets_and_line_breaks() {
        let client = Client::new(
            &config(serde_json::json!({
                "url": "http://h:1",
                "database": "d",
                "username": "u",
                "password": "pa55word",
            })),
            1,
        )
        .unwrap();
        let text = client.scrub("bad\npassword pa55word at http://u:pa55word@h/x\r\n");
        assert_eq!(text, "bad password *** at http://u:***@h/x");
        assert!(client.scrub(&"x".repeat(1000)).chars().count() <= MAX_DETAIL_CHARS + 1);
    }

    #[test]
    fn writes_ride_out_an_outage_and_open_is_bounded() {
        let minutes = |m: u64| Some(Duration::from_secs(m * 60));
        let client =
            Client::new(&config(serde_json::json!({"url": "h", "database": "d"})), 1).unwrap();
        assert_eq!(client.retry.max_elapsed, minutes(5));
        assert_eq!(client.retry.max_attempts, u32::MAX);
        assert_eq!(client.open_retry.max_elapsed, Some(OPEN_DEADLINE));
        let short = config(serde_json::json!({
            "url": "h",
            "database": "d",
            "retry": {"max_elapsed": "10s"},
        }));
        let client = Client::new(&short, 1).unwrap();
        assert_eq!(client.open_retry.max_elapsed, Some(Duration::from_secs(10)));
    }

    #[test]
    fn query_answers_and_identifiers() {
        assert_eq!(
            json_error(br#"{"error":"database not found: \"x\""}"#).as_deref(),
            Some("database not found: \"x\"")
        );
        assert_eq!(json_error(b"request throttled"), None);
        assert_eq!(
            statement_error(br#"{"results":[{"statement_id":0}]}"#),
            None
        );
        assert_eq!(
            statement_error(br#"{"results":[{"statement_id":0,"error":"not admin"}]}"#).as_deref(),
            Some("not admin")
        );
        assert_eq!(quote_identifier(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn gzip_round_trips() {
        let data = b"cpu v=1i 1\n".repeat(1000);
        let packed = gzip(&data).unwrap();
        assert!(packed.len() < data.len() / 5, "{}", packed.len());
        let mut unpacked = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&packed[..]),
            &mut unpacked,
        )
        .unwrap();
        assert_eq!(unpacked, data);
    }
}
