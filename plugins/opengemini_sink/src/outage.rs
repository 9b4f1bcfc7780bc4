//! One line when an endpoint starts failing with errors worth retrying and
//! one when it answers again, however many requests and lanes retry in
//! between (the retry loop adds a warning per attempt): an operator sees
//! when the outage began, how long the sink keeps each batch waiting, and
//! when it ended.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct OutageLog {
    sink: u32,
    endpoint: String,
    /// How long one request is retried (`retry.max_elapsed`).
    deadline: Option<Duration>,
    since: Mutex<Option<Instant>>,
}

impl OutageLog {
    pub fn new(sink: u32, endpoint: &str, deadline: Option<Duration>) -> Self {
        Self {
            sink,
            endpoint: endpoint.to_owned(),
            deadline,
            since: Mutex::new(None),
        }
    }

    /// A request failed transiently; true when that began an outage.
    pub fn failed(&self, error: &dyn std::fmt::Display) -> bool {
        let mut since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        if since.is_some() {
            return false;
        }
        *since = Some(Instant::now());
        let patience = match self.deadline {
            Some(deadline) => format!("for up to {}", humantime::format_duration(deadline)),
            None => "without a deadline".to_owned(),
        };
        tracing::warn!(
            "openGemini sink {}: outage of {} began ({error}); every request is retried until it is written, {patience}",
            self.sink,
            self.endpoint
        );
        true
    }

    /// A request succeeded; how long the outage it ends lasted, if one did.
    pub fn succeeded(&self) -> Option<Duration> {
        let began = self
            .since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let lasted = began.elapsed();
        tracing::info!(
            "openGemini sink {}: outage of {} ended after {:.1} s; writes succeed again",
            self.sink,
            self.endpoint,
            lasted.as_secs_f64()
        );
        Some(lasted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_reported_once_each_way() {
        let log = OutageLog::new(1, "http://127.0.0.1:8086", Some(Duration::from_secs(300)));
        assert_eq!(log.succeeded(), None, "no outage yet");
        assert!(log.failed(&"connection refused"));
        assert!(!log.failed(&"connection refused"), "already reported");
        assert!(log.succeeded().is_some());
        assert_eq!(log.succeeded(), None, "already ended");
        assert!(log.failed(&"timed out"), "a new outage");
    }
}
