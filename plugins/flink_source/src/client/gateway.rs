//! The Flink SQL Gateway REST API (port 8083): sessions, statements and the
//! token-paged results of a streaming query. Shapes as recorded in
//! `fixtures/flink/gw-*` against Flink 1.20.3.

use super::http::{HttpClient, HttpError, endpoint};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Gateway {
    http: HttpClient,
    base: Url,
    /// `v3`: the highest API version both sides speak.
    version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultType {
    /// Nothing yet; ask for the same token again.
    NotReady,
    /// Rows (possibly none) and the next token.
    Payload,
    /// A bounded query has no more rows.
    Eos,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultPage {
    pub result_type: ResultType,
    #[serde(rename = "jobID")]
    pub job_id: Option<String>,
    pub results: Option<ResultSet>,
    pub next_result_uri: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub data: Vec<Row>,
}

#[derive(Debug, Deserialize)]
pub struct Column {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Row {
    /// INSERT, UPDATE_BEFORE, UPDATE_AFTER or DELETE.
    pub kind: String,
    /// Kept as Flink wrote them, so numbers keep every digit.
    pub fields: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
struct ApiVersions {
    versions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionHandle {
    session_handle: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationHandle {
    operation_handle: String,
}

#[derive(Deserialize)]
struct OperationStatus {
    status: String,
}

/// Statements with result paging and `executionConfig` need API V2 or later.
const MIN_VERSION: u32 = 2;

impl Gateway {
    /// Asks the gateway which API versions it speaks and picks the highest.
    pub async fn connect(http: HttpClient, base: Url) -> Result<Self, String> {
        let url = endpoint(&base, "/api_versions");
        let answer: ApiVersions = http
            .with_retry("SQL Gateway API versions", |_| http.get(url.clone()))
            .await
            .map_err(|e| format!("cannot reach the SQL Gateway at {base}: {e}"))?;
        let version = answer
            .versions
            .iter()
            .filter_map(|v| v.strip_prefix(['V', 'v'])?.parse::<u32>().ok())
            .max()
            .filter(|v| *v >= MIN_VERSION)
            .ok_or_else(|| {
                format!(
                    "the SQL Gateway at {base} speaks API versions {:?}; this plugin needs V{MIN_VERSION} or later (Flink 1.17+)",
                    answer.versions
                )
            })?;
        Ok(Self {
            http,
            base,
            version: format!("v{version}"),
        })
    }

    fn url(&self, path: &str) -> Url {
        endpoint(&self.base, &format!("/{}{path}", self.version))
    }

    pub async fn open_session(
        &self,
        name: &str,
        properties: &BTreeMap<String, String>,
    ) -> Result<String, HttpError> {
        let body = serde_json::json!({ "sessionName": name, "properties": properties });
        let handle: SessionHandle = self
            .http
            .call(Method::POST, self.url("/sessions"), Some(&body))
            .await?;
        Ok(handle.session_handle)
    }

    /// Runs a SET / CREATE / USE ... statement in the session, synchronously.
    pub async fn configure(&self, session: &str, statement: &str) -> Result<(), HttpError> {
        let body = serde_json::json!({ "statement": statement });
        let _: IgnoredAny = self
            .http
            .call(
                Method::POST,
                self.url(&format!("/sessions/{session}/configure-session")),
                Some(&body),
            )
            .await?;
        Ok(())
    }

    /// Submits a statement; its rows are read with [`Gateway::fetch`].
    pub async fn execute(
        &self,
        session: &str,
        statement: &str,
        execution_config: &BTreeMap<String, String>,
    ) -> Result<String, HttpError> {
        let body = serde_json::json!({
            "statement": statement,
            "executionConfig": execution_config,
        });
        let handle: OperationHandle = self
            .http
            .call(
                Method::POST,
                self.url(&format!("/sessions/{session}/statements")),
                Some(&body),
            )
            .await?;
        Ok(handle.operation_handle)
    }

    pub async fn operation_status(
        &self,
        session: &str,
        operation: &str,
    ) -> Result<String, HttpError> {
        let status: OperationStatus = self
            .http
            .get(self.url(&format!(
                "/sessions/{session}/operations/{operation}/status"
            )))
            .await?;
        Ok(status.status)
    }

    /// Where the rows of a new operation start.
    pub fn first_result_uri(&self, session: &str, operation: &str) -> String {
        format!(
            "/{}/sessions/{session}/operations/{operation}/result/0?rowFormat=JSON",
            self.version
        )
    }

    /// One page, by the URI the previous page named (or [`Gateway::first_result_uri`]).
    pub async fn fetch(&self, uri: &str) -> Result<ResultPage, HttpError> {
        if !uri.starts_with('/') {
            return Err(HttpError::invalid_response(
                "GET result page",
                format!("the gateway named a result page that is not a path: {uri:?}"),
            ));
        }
        self.http.get(endpoint(&self.base, uri)).await
    }

    pub async fn heartbeat(&self, session: &str) -> Result<(), HttpError> {
        let _: IgnoredAny = self
            .http
            .call(
                Method::POST,
                self.url(&format!("/sessions/{session}/heartbeat")),
                None,
            )
            .await?;
        Ok(())
    }

    /// Closing the operation of a running SELECT cancels its job.
    pub async fn close_operation(&self, session: &str, operation: &str) -> Result<(), HttpError> {
        let _: IgnoredAny = self
            .http
            .call(
                Method::DELETE,
                self.url(&format!("/sessions/{session}/operations/{operation}/close")),
                None,
            )
            .await?;
        Ok(())
    }

    pub async fn close_session(&self, session: &str) -> Result<(), HttpError> {
        let _: IgnoredAny = self
            .http
            .call(
                Method::DELETE,
                self.url(&format!("/sessions/{session}")),
                None,
            )
            .await?;
        Ok(())
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

/// The token of a result URI (`.../result/7?rowFormat=JSON` → 7).
pub fn token_of(uri: &str) -> Option<u64> {
    let after = uri.rsplit_once("/result/")?.1;
    let digits = after.split(['?', '/']).next()?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_result_uris() {
        assert_eq!(
            token_of("/v3/sessions/s/operations/o/result/44?rowFormat=JSON"),
            Some(44)
        );
        assert_eq!(token_of("/v1/sessions/s/operations/o/result/2"), Some(2));
        assert_eq!(token_of("/v3/sessions/s"), None);
    }

    #[test]
    fn recorded_pages_parse() {
        let page: ResultPage = serde_json::from_str(
            r#"{"resultType":"PAYLOAD","isQueryResult":true,"jobID":"j","resultKind":"SUCCESS_WITH_CONTENT",
            "results":{"columns":[{"name":"k","logicalType":{"type":"VARCHAR","nullable":true},"comment":null}],
            "rowFormat":"JSON","data":[{"kind":"UPDATE_AFTER","fields":[7930080602373774240]}]},
            "nextResultUri":"/v3/sessions/s/operations/o/result/9?rowFormat=JSON"}"#,
        )
        .unwrap();
        assert_eq!(page.result_type, ResultType::Payload);
        let results = page.results.unwrap();
        assert_eq!(results.data[0].fields[0].get(), "7930080602373774240");
        let page: ResultPage =
            serde_json::from_str(r#"{"resultType":"NOT_READY","nextResultUri":"/x/result/0"}"#)
                .unwrap();
        assert_eq!(page.result_type, ResultType::NotReady);
        assert!(page.results.is_none());
    }
}
