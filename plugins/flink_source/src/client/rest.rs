//! Flink's REST API (the JobManager, port 8081): what jobs run, their
//! checkpoints, exceptions and metrics, and stopping a job with a savepoint.
//! Shapes as recorded in `fixtures/flink/rest-*` against Flink 1.20.3.

use super::flink_error;
use super::http::{HttpClient, HttpError, endpoint};
use reqwest::{Method, Url};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Rest {
    http: HttpClient,
    base: Url,
}

#[derive(Debug, Deserialize)]
struct JobsOverview {
    jobs: Vec<JobOverview>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobOverview {
    pub jid: String,
    pub name: String,
    pub state: String,
    #[serde(rename = "start-time", default)]
    pub start_time: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobDetail {
    pub jid: String,
    pub state: String,
    /// When the job entered each state (0 = never).
    #[serde(default)]
    pub timestamps: BTreeMap<String, i64>,
    #[serde(default)]
    pub vertices: Vec<Vertex>,
    #[serde(default)]
    pub plan: Option<Plan>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Vertex {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub parallelism: u32,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub metrics: VertexMetrics,
}

/// Counts across the vertex's network edges (records inside a chain are not counted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VertexMetrics {
    #[serde(default)]
    pub read_records: u64,
    #[serde(default)]
    pub write_records: u64,
    #[serde(default)]
    pub read_bytes: u64,
    #[serde(default)]
    pub write_bytes: u64,
    #[serde(rename = "accumulated-backpressured-time", default)]
    pub backpressured_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Plan {
    #[serde(default)]
    pub nodes: Vec<PlanNode>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlanNode {
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Absent for the job's sources.
    #[serde(default)]
    pub inputs: Vec<serde_json::Value>,
}

impl JobDetail {
    /// The vertices that read from outside the job (no inputs in the plan).
    pub fn source_vertices(&self) -> Vec<&Vertex> {
        let Some(plan) = &self.plan else {
            return Vec::new();
        };
        self.vertices
            .iter()
            .filter(|vertex| {
                plan.nodes
                    .iter()
                    .any(|node| node.id == vertex.id && node.inputs.is_empty())
            })
            .collect()
    }

    /// When the job entered its current state, if Flink says.
    pub fn state_timestamp(&self) -> Option<i64> {
        self.timestamps
            .get(&self.state)
            .copied()
            .filter(|ts| *ts > 0)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckpointStats {
    #[serde(default)]
    pub latest: LatestCheckpoints,
    /// Newest first; Flink keeps the last few (10 by default).
    #[serde(default)]
    pub history: Vec<Checkpoint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LatestCheckpoints {
    pub savepoint: Option<Checkpoint>,
    pub restored: Option<Restored>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Checkpoint {
    pub id: i64,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub status: String,
    #[serde(default)]
    pub is_savepoint: bool,
    #[serde(default)]
    pub trigger_timestamp: i64,
    pub latest_ack_timestamp: Option<i64>,
    pub end_to_end_duration: Option<i64>,
    pub state_size: Option<u64>,
    pub checkpointed_size: Option<u64>,
    pub checkpoint_type: Option<String>,
    pub external_path: Option<String>,
    pub failure_message: Option<String>,
    pub failure_timestamp: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Restored {
    pub id: i64,
    pub restore_timestamp: i64,
    #[serde(default)]
    pub is_savepoint: bool,
    pub external_path: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Exceptions {
    #[serde(rename = "exceptionHistory", default)]
    history: ExceptionHistory,
}

#[derive(Debug, Default, Deserialize)]
struct ExceptionHistory {
    #[serde(default)]
    entries: Vec<ExceptionEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionEntry {
    pub exception_name: String,
    #[serde(default)]
    pub stacktrace: String,
    pub timestamp: i64,
    pub task_name: Option<String>,
    pub endpoint: Option<String>,
    /// Failures that happened together with this one (the real cause of a
    /// "Recovery is suppressed" entry is here).
    #[serde(default)]
    pub concurrent_exceptions: Vec<ExceptionEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Backpressure {
    #[serde(rename = "backpressureLevel")]
    pub level: Option<String>,
    #[serde(default)]
    pub subtasks: Vec<SubtaskBackpressure>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubtaskBackpressure {
    /// A number, or the string "NaN" when Flink has no sample.
    #[serde(default)]
    pub ratio: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricValue {
    /// Flink sends every metric value as a string.
    pub value: String,
}

#[derive(Debug, Deserialize)]
struct MetricId {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Trigger {
    #[serde(rename = "request-id")]
    request_id: String,
}

#[derive(Debug, Deserialize)]
struct AsyncOperation {
    status: AsyncStatus,
    operation: Option<SavepointOutcome>,
}

#[derive(Debug, Deserialize)]
struct AsyncStatus {
    id: String,
}

#[derive(Debug, Deserialize)]
struct SavepointOutcome {
    location: Option<String>,
    #[serde(rename = "failure-cause")]
    failure_cause: Option<FailureCause>,
}

#[derive(Debug, Deserialize)]
struct FailureCause {
    #[serde(rename = "stack-trace", default)]
    stack_trace: String,
}

impl Rest {
    pub fn new(http: HttpClient, base: Url) -> Self {
        Self { http, base }
    }

    fn url(&self, path: &str) -> Url {
        endpoint(&self.base, path)
    }

    /// GET under the retry policy: every call here only reads.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
    ) -> Result<T, HttpError> {
        let url = self.url(path);
        self.http
            .with_retry(what, |_| self.http.get(url.clone()))
            .await
            .map_err(|e| e.last)
    }

    pub async fn jobs(&self) -> Result<Vec<JobOverview>, HttpError> {
        let overview: JobsOverview = self.read("list Flink jobs", "/jobs/overview").await?;
        Ok(overview.jobs)
    }

    pub async fn job(&self, jid: &str) -> Result<JobDetail, HttpError> {
        self.read("read a Flink job", &format!("/jobs/{jid}")).await
    }

    pub async fn checkpoints(&self, jid: &str) -> Result<CheckpointStats, HttpError> {
        self.read("read checkpoints", &format!("/jobs/{jid}/checkpoints"))
            .await
    }

    /// Newest first, at most `max`.
    pub async fn exceptions(&self, jid: &str, max: u32) -> Result<Vec<ExceptionEntry>, HttpError> {
        let exceptions: Exceptions = self
            .read(
                "read job exceptions",
                &format!("/jobs/{jid}/exceptions?maxExceptions={max}"),
            )
            .await?;
        Ok(exceptions.history.entries)
    }

    pub async fn backpressure(&self, jid: &str, vertex: &str) -> Result<Backpressure, HttpError> {
        self.read(
            "read backpressure",
            &format!("/jobs/{jid}/vertices/{vertex}/backpressure"),
        )
        .await
    }

    pub async fn watermarks(&self, jid: &str, vertex: &str) -> Result<Vec<MetricValue>, HttpError> {
        self.read(
            "read watermarks",
            &format!("/jobs/{jid}/vertices/{vertex}/watermarks"),
        )
        .await
    }

    /// The values of a vertex's metrics whose names end with `suffix`
    /// (one per subtask and operator, e.g. `0.Source__orders[1].pendingRecords`).
    pub async fn vertex_metrics_ending(
        &self,
        jid: &str,
        vertex: &str,
        suffix: &str,
    ) -> Result<Vec<MetricValue>, HttpError> {
        let path = format!("/jobs/{jid}/vertices/{vertex}/metrics");
        let ids: Vec<MetricId> = self.read("list vertex metrics", &path).await?;
        let wanted: Vec<String> = ids
            .into_iter()
            .map(|metric| metric.id)
            .filter(|id| id.ends_with(suffix))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        self.read(
            "read vertex metrics",
            &format!("{path}?get={}", wanted.join(",")),
        )
        .await
    }

    pub async fn job_metrics(
        &self,
        jid: &str,
        ids: &[&str],
    ) -> Result<Vec<MetricValue>, HttpError> {
        self.read(
            "read job metrics",
            &format!("/jobs/{jid}/metrics?get={}", ids.join(",")),
        )
        .await
    }

    /// Stops the job with a savepoint (no drain) and waits for its path.
    pub async fn stop_with_savepoint(
        &self,
        jid: &str,
        target_directory: Option<&str>,
        timeout: Duration,
    ) -> Result<String, String> {
        let mut body = serde_json::json!({ "drain": false });
        if let Some(directory) = target_directory {
            body["targetDirectory"] = directory.into();
        }
        let trigger: Trigger = self
            .http
            .call(
                Method::POST,
                self.url(&format!("/jobs/{jid}/stop")),
                Some(&body),
            )
            .await
            .map_err(|e| e.to_string())?;
        let status_path = format!("/jobs/{jid}/savepoints/{}", trigger.request_id);
        let deadline = Instant::now() + timeout;
        loop {
            let answer: AsyncOperation = self
                .read("read savepoint status", &status_path)
                .await
                .map_err(|e| e.to_string())?;
            if answer.status.id == "COMPLETED" {
                let outcome = answer
                    .operation
                    .ok_or("Flink reported the savepoint complete without a result")?;
                return match (outcome.location, outcome.failure_cause) {
                    (Some(location), _) => Ok(location),
                    (None, Some(cause)) => Err(format!(
                        "the savepoint failed: {}",
                        flink_error::summarize(
                            serde_json::json!({ "errors": [cause.stack_trace] })
                                .to_string()
                                .as_bytes()
                        )
                    )),
                    (None, None) => Err("the savepoint ended without a location".into()),
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the savepoint did not complete within {timeout:?} (status {})",
                    answer.status.id
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `response` of a recorded exchange in `tests/fixtures`.
    fn recorded<T: serde::de::DeserializeOwned>(text: &str) -> T {
        let exchange: serde_json::Value = serde_json::from_str(text).unwrap();
        serde_json::from_value(exchange["response"].clone()).unwrap()
    }

    #[test]
    fn recorded_flink_1_20_and_2_x_responses_parse() {
        for (overview, detail, checkpoints) in [
            (
                include_str!("../../tests/fixtures/rest-insert-03-jobs-overview.json"),
                include_str!("../../tests/fixtures/rest-insert-04-job-detail.json"),
                include_str!("../../tests/fixtures/rest-insert-30-checkpoints.json"),
            ),
            (
                include_str!("../../tests/fixtures/rest2x-03-jobs-overview.json"),
                include_str!("../../tests/fixtures/rest2x-04-job-detail.json"),
                include_str!("../../tests/fixtures/rest2x-30-checkpoints.json"),
            ),
        ] {
            let jobs: JobsOverview = recorded(overview);
            assert!(jobs.jobs.iter().any(|job| job.state == "RUNNING"));
            let detail: JobDetail = recorded(detail);
            assert!(detail.state_timestamp().is_some());
            assert_eq!(detail.source_vertices().len(), 1);
            let stats: CheckpointStats = recorded(checkpoints);
            assert!(!stats.history.is_empty());
            assert!(stats.history.iter().all(|c| c.status == "COMPLETED"));
        }
        let restored: CheckpointStats = recorded(include_str!(
            "../../tests/fixtures/rest-68-restored-job-checkpoints.json"
        ));
        assert!(restored.latest.restored.is_some_and(|r| r.is_savepoint));
        for exceptions in [
            include_str!("../../tests/fixtures/rest-40-job-exceptions-oom.json"),
            include_str!("../../tests/fixtures/rest2x-40-exceptions.json"),
        ] {
            let parsed: Exceptions = recorded(exceptions);
            assert!(parsed.history.entries.iter().all(|e| e.timestamp > 0));
        }
    }

    #[test]
    fn sources_are_the_plan_nodes_without_inputs() {
        // The shape of rest-insert-04-job-detail.json.
        let detail: JobDetail = serde_json::from_value(serde_json::json!({
            "jid": "j", "name": "n", "state": "RUNNING",
            "timestamps": {"RUNNING": 17, "FAILED": 0},
            "vertices": [
                {"id": "src", "name": "Source: orders[1]", "parallelism": 1, "status": "RUNNING",
                 "metrics": {"read-bytes": 0, "write-bytes": 4337, "read-records": 0, "write-records": 125,
                             "accumulated-backpressured-time": 0, "accumulated-busy-time": "NaN"}},
                {"id": "snk", "name": "sink_bh[4]: Writer", "parallelism": 1, "status": "RUNNING"}
            ],
            "plan": {"nodes": [
                {"id": "snk", "description": "sink", "inputs": [{"num": 0, "id": "src"}]},
                {"id": "src", "description": "[1]:TableSourceScan"}
            ]}
        }))
        .unwrap();
        let sources: Vec<&str> = detail
            .source_vertices()
            .iter()
            .map(|v| v.id.as_str())
            .collect();
        assert_eq!(sources, ["src"]);
        assert_eq!(detail.vertices[0].metrics.write_records, 125);
        assert_eq!(detail.state_timestamp(), Some(17));
    }
}
