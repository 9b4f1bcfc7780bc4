//! Monitor events: what changed in a job since the last acknowledged scan,
//! each as a JSON message whose id depends only on what it describes (job,
//! kind, checkpoint id / status time / exception time / sample bucket), so a
//! redelivered event has the same id. The marks of what was emitted are the
//! connector state; an event moves its job's marks forward when its batch is
//! acknowledged.

use crate::client::rest::{CheckpointStats, ExceptionEntry};
use crate::message::{add_header, stable_id};
use iggy_connector_sdk::ProducedMessage;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// How far a job's events were emitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobMarks {
    /// The last status emitted and when the job entered it.
    pub status: Option<String>,
    pub status_at: i64,
    pub checkpoint_id: i64,
    pub exception_at: i64,
    pub restored_at: i64,
    pub metrics_bucket: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorState {
    pub jobs: BTreeMap<String, JobMarks>,
}

#[derive(Debug, Clone, PartialEq)]
enum Advance {
    Status(String, i64),
    Checkpoint(i64),
    Exception(i64),
    Restored(i64),
    Metrics(i64),
}

#[derive(Debug, Clone, Copy)]
pub struct JobRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub job_id: String,
    pub kind: &'static str,
    /// What makes this event unique within its job and kind.
    key: String,
    at_ms: i64,
    payload: Value,
    advance: Advance,
}

impl Event {
    fn new(
        job: JobRef<'_>,
        kind: &'static str,
        key: String,
        at_ms: i64,
        fields: Value,
        advance: Advance,
    ) -> Self {
        let mut payload = json!({
            "event": kind,
            "job_id": job.id,
            "job_name": job.name,
            "timestamp": at_ms,
        });
        if let (Some(target), Value::Object(fields)) = (payload.as_object_mut(), fields) {
            target.extend(fields);
        }
        Self {
            job_id: job.id.to_string(),
            kind,
            key,
            at_ms,
            payload,
            advance,
        }
    }

    /// Moves `marks` past this event (never backwards).
    pub fn apply(&self, marks: &mut JobMarks) {
        match &self.advance {
            Advance::Status(status, at) => {
                marks.status = Some(status.clone());
                marks.status_at = *at;
            }
            Advance::Checkpoint(id) => marks.checkpoint_id = marks.checkpoint_id.max(*id),
            Advance::Exception(at) => marks.exception_at = marks.exception_at.max(*at),
            Advance::Restored(at) => marks.restored_at = marks.restored_at.max(*at),
            Advance::Metrics(bucket) => marks.metrics_bucket = marks.metrics_bucket.max(*bucket),
        }
    }

    pub fn into_message(self) -> ProducedMessage {
        let id = stable_id(&[
            self.job_id.as_bytes(),
            self.kind.as_bytes(),
            self.key.as_bytes(),
        ]);
        let mut headers = BTreeMap::new();
        // Both values are short ASCII (a kind name, a 32-digit job id).
        let _ = add_header(&mut headers, "event", self.kind);
        let _ = add_header(&mut headers, "job_id", &self.job_id);
        ProducedMessage {
            id: Some(id),
            checksum: None,
            timestamp: None,
            origin_timestamp: u64::try_from(self.at_ms)
                .ok()
                .map(|ms| ms.saturating_mul(1000)),
            headers: Some(headers),
            payload: self.payload.to_string().into_bytes(),
        }
    }
}

pub fn status_event(job: JobRef<'_>, status: &str, at_ms: i64, previous: Option<&str>) -> Event {
    Event::new(
        job,
        "job_status",
        format!("{status}@{at_ms}"),
        at_ms,
        json!({ "status": status, "previous_status": previous }),
        Advance::Status(status.to_string(), at_ms),
    )
}

/// Completed and failed checkpoints and savepoints newer than the marks, oldest
/// first, stopping below any still in progress (an older one may yet finish),
/// and the restore the job started from.
pub fn checkpoint_events(job: JobRef<'_>, stats: &CheckpointStats, marks: &JobMarks) -> Vec<Event> {
    let mut events = Vec::new();
    if let Some(restored) = &stats.latest.restored
        && restored.restore_timestamp > marks.restored_at
    {
        events.push(Event::new(
            job,
            "restored",
            restored.restore_timestamp.to_string(),
            restored.restore_timestamp,
            json!({
                "checkpoint_id": restored.id,
                "is_savepoint": restored.is_savepoint,
                "external_path": restored.external_path,
            }),
            Advance::Restored(restored.restore_timestamp),
        ));
    }
    let in_progress = stats
        .history
        .iter()
        .filter(|c| c.status == "IN_PROGRESS")
        .map(|c| c.id)
        .min()
        .unwrap_or(i64::MAX);
    let mut finished: Vec<_> = stats
        .history
        .iter()
        .filter(|c| c.id > marks.checkpoint_id && c.id < in_progress)
        .filter(|c| matches!(c.status.as_str(), "COMPLETED" | "FAILED"))
        .collect();
    finished.sort_by_key(|c| c.id);
    for checkpoint in finished {
        let kind = match (checkpoint.is_savepoint, checkpoint.status.as_str()) {
            (false, "COMPLETED") => "checkpoint_completed",
            (false, _) => "checkpoint_failed",
            (true, "COMPLETED") => "savepoint_completed",
            (true, _) => "savepoint_failed",
        };
        let at = checkpoint
            .failure_timestamp
            .or(checkpoint.latest_ack_timestamp)
            .filter(|at| *at > 0)
            .unwrap_or(checkpoint.trigger_timestamp);
        events.push(Event::new(
            job,
            kind,
            checkpoint.id.to_string(),
            at,
            json!({
                "checkpoint_id": checkpoint.id,
                "checkpoint_type": checkpoint.checkpoint_type,
                "is_savepoint": checkpoint.is_savepoint,
                "trigger_timestamp": checkpoint.trigger_timestamp,
                "duration_ms": checkpoint.end_to_end_duration,
                "state_size": checkpoint.state_size,
                "checkpointed_size": checkpoint.checkpointed_size,
                "external_path": checkpoint.external_path,
                "failure_message": checkpoint.failure_message,
            }),
            Advance::Checkpoint(checkpoint.id),
        ));
    }
    events
}

/// Exceptions newer than the marks, oldest first. `entries` come newest first.
pub fn exception_events(
    job: JobRef<'_>,
    entries: &[ExceptionEntry],
    marks: &JobMarks,
) -> Vec<Event> {
    let mut events: Vec<Event> = entries
        .iter()
        .filter(|entry| entry.timestamp > marks.exception_at)
        .map(|entry| {
            let concurrent: Vec<Value> = entry
                .concurrent_exceptions
                .iter()
                .map(|c| json!({ "exception": c.exception_name, "message": first_line(c), "task": c.task_name }))
                .collect();
            Event::new(
                job,
                "exception",
                format!("{}@{}", entry.exception_name, entry.timestamp),
                entry.timestamp,
                json!({
                    "exception": entry.exception_name,
                    "message": first_line(entry),
                    "task": entry.task_name,
                    "endpoint": entry.endpoint,
                    "concurrent": concurrent,
                }),
                Advance::Exception(entry.timestamp),
            )
        })
        .collect();
    events.sort_by_key(|event| event.at_ms);
    events
}

/// One sample per job per `interval_ms` bucket: a redelivery within the
/// bucket keeps the id; the next bucket is a new sample.
pub fn metrics_event(job: JobRef<'_>, bucket: i64, interval_ms: i64, sample: Value) -> Event {
    let at = bucket.saturating_mul(interval_ms);
    let mut fields = json!({ "interval_ms": interval_ms });
    if let (Some(target), Value::Object(sample)) = (fields.as_object_mut(), sample) {
        target.extend(sample);
    }
    Event::new(
        job,
        "metrics",
        bucket.to_string(),
        at,
        fields,
        Advance::Metrics(bucket),
    )
}

/// The exception's message: the first line of its stack trace.
fn first_line(entry: &ExceptionEntry) -> String {
    entry
        .stacktrace
        .lines()
        .next()
        .filter(|line| !line.trim().is_empty())
        .unwrap_or(&entry.exception_name)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: JobRef<'static> = JobRef {
        id: "6a45f8f9adc0431265370d43019b383a",
        name: "iggy-insert-orders",
    };

    fn stats(history: Value, restored: Value) -> CheckpointStats {
        serde_json::from_value(json!({
            "latest": { "savepoint": null, "restored": restored },
            "history": history,
        }))
        .unwrap()
    }

    fn payload(event: &Event) -> Value {
        serde_json::from_slice(&event.clone().into_message().payload).unwrap()
    }

    #[test]
    fn new_checkpoints_oldest_first_and_not_past_one_in_progress() {
        // Entries shaped as in rest-insert-30-checkpoints.json and rest-64.
        let history = json!([
            {"id": 6, "status": "COMPLETED", "is_savepoint": true, "trigger_timestamp": 60, "latest_ack_timestamp": 61,
             "checkpoint_type": "SAVEPOINT", "external_path": "file:/sp/savepoint-6a45f8-246d8e2900cb"},
            {"id": 5, "status": "IN_PROGRESS", "is_savepoint": false, "trigger_timestamp": 50},
            {"id": 4, "status": "FAILED", "is_savepoint": false, "trigger_timestamp": 40,
             "failure_timestamp": 45, "failure_message": "Checkpoint expired"},
            {"id": 3, "status": "COMPLETED", "is_savepoint": false, "trigger_timestamp": 30, "latest_ack_timestamp": 31},
            {"id": 2, "status": "COMPLETED", "is_savepoint": false, "trigger_timestamp": 20, "latest_ack_timestamp": 21}
        ]);
        let marks = JobMarks {
            checkpoint_id: 2,
            ..JobMarks::default()
        };
        let events = checkpoint_events(JOB, &stats(history.clone(), Value::Null), &marks);
        let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["checkpoint_completed", "checkpoint_failed"]);
        assert_eq!(payload(&events[1])["failure_message"], "Checkpoint expired");
        assert_eq!(payload(&events[1])["timestamp"], 45);

        let mut marks = marks;
        for event in &events {
            event.apply(&mut marks);
        }
        assert_eq!(marks.checkpoint_id, 4);
        let mut done = history;
        done[1]["status"] = "COMPLETED".into();
        let events = checkpoint_events(JOB, &stats(done, Value::Null), &marks);
        let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["checkpoint_completed", "savepoint_completed"]);
        assert_eq!(
            payload(&events[1])["external_path"],
            "file:/sp/savepoint-6a45f8-246d8e2900cb"
        );
    }

    #[test]
    fn ids_depend_only_on_what_happened() {
        let history = json!([{"id": 3, "status": "COMPLETED", "trigger_timestamp": 30, "latest_ack_timestamp": 31}]);
        let a = checkpoint_events(
            JOB,
            &stats(history.clone(), Value::Null),
            &JobMarks::default(),
        );
        let b = checkpoint_events(JOB, &stats(history, Value::Null), &JobMarks::default());
        assert_eq!(
            a[0].clone().into_message().id,
            b[0].clone().into_message().id
        );
        let status = status_event(JOB, "RUNNING", 100, None).into_message();
        let other = status_event(JOB, "RUNNING", 200, Some("RESTARTING")).into_message();
        assert_ne!(status.id, other.id);
        assert_eq!(status.origin_timestamp, Some(100_000));
    }

    #[test]
    fn restores_and_exceptions() {
        // rest-68: a job restored from a savepoint.
        let restored = json!({"id": 7, "restore_timestamp": 1795255036462_i64, "is_savepoint": true,
                              "external_path": "file:/opt/flink/state/savepoints/savepoint-6a45f8-540da0f0760a"});
        let events = checkpoint_events(
            JOB,
            &stats(json!([]), restored.clone()),
            &JobMarks::default(),
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "restored");
        let mut marks = JobMarks::default();
        events[0].apply(&mut marks);
        assert!(checkpoint_events(JOB, &stats(json!([]), restored), &marks).is_empty());

        // rest-40: two OutOfMemoryErrors, newest first.
        let entries: Vec<ExceptionEntry> = serde_json::from_value(json!([
            {"exceptionName": "java.lang.OutOfMemoryError", "stacktrace": "java.lang.OutOfMemoryError: Java heap space\n\tat x", "timestamp": 20,
             "taskName": "Source: orders[1] (1/1) - execution #1", "endpoint": "localhost:33253", "concurrentExceptions": []},
            {"exceptionName": "java.lang.OutOfMemoryError", "stacktrace": "java.lang.OutOfMemoryError: Java heap space\n\tat x", "timestamp": 10,
             "taskName": "Source: orders[1] (1/1) - execution #0", "concurrentExceptions": []}
        ]))
        .unwrap();
        let marks = JobMarks {
            exception_at: 10,
            ..JobMarks::default()
        };
        let events = exception_events(JOB, &entries, &marks);
        assert_eq!(events.len(), 1);
        let body = payload(&events[0]);
        assert_eq!(
            body["message"],
            "java.lang.OutOfMemoryError: Java heap space"
        );
        assert_eq!(body["task"], "Source: orders[1] (1/1) - execution #1");
        assert_eq!(body["timestamp"], 20);
    }

    #[test]
    fn metrics_samples_are_bucketed() {
        let event = metrics_event(JOB, 17, 10_000, json!({"state": "RUNNING"}));
        let body = payload(&event);
        assert_eq!(body["event"], "metrics");
        assert_eq!(body["timestamp"], 170_000);
        assert_eq!(body["interval_ms"], 10_000);
        assert_eq!(body["state"], "RUNNING");
        let mut marks = JobMarks::default();
        event.apply(&mut marks);
        assert_eq!(marks.metrics_bucket, 17);
    }
}
