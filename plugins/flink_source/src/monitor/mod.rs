//! Monitor mode: watches the jobs of a Flink cluster through its REST API
//! and emits their status changes, checkpoints and savepoints, restores,
//! exceptions and a metrics sample per interval. Each scan lists the jobs
//! again, so jobs that appear later are picked up and jobs Flink forgets are
//! dropped from the state.

mod discovery;
mod events;
mod sample;

use crate::client::http::{HttpError, HttpErrorKind};
use crate::client::rest::{JobDetail, JobOverview, Rest};
use crate::config::{MonitorSettings, Settings};
use crate::metrics::Metrics;
use discovery::Discovery;
pub use events::MonitorState;
use events::{Event, JobMarks, JobRef};
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessages, Schema};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tracing::warn;

const PLUGIN: &str = "Flink source";
/// States a job never leaves.
const TERMINAL: [&str; 3] = ["FINISHED", "FAILED", "CANCELED"];
/// How long an ended job's checkpoints and exceptions are still read: Flink's
/// REST API serves a job's details from a cache (`web.refresh-interval`,
/// 3 s by default), so the last savepoint of a stopped job can show up
/// after its new status does.
const SETTLE_MS: i64 = 15_000;

struct Staged {
    state: MonitorState,
    saved: bool,
    messages: u64,
    bytes: u64,
}

pub struct MonitorReader {
    id: u32,
    settings: MonitorSettings,
    rest: Rest,
    batch_size: usize,
    poll_interval: Duration,
    metrics: Arc<Metrics>,
    discovery: Discovery,
    committed: MonitorState,
    saved: Option<MonitorState>,
    staged: Option<Staged>,
    next_scan: Instant,
    /// Jobs whose events did not all fit the last batch: look at them again
    /// even if they ended.
    unfinished: BTreeSet<String>,
    warned_max_jobs: bool,
}

impl MonitorReader {
    pub fn new(
        id: u32,
        settings: MonitorSettings,
        common: &Settings,
        rest: Rest,
        saved: Option<MonitorState>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            id,
            discovery: Discovery::new(&settings),
            settings,
            rest,
            batch_size: common.batch_size,
            poll_interval: common.poll_interval,
            metrics,
            committed: saved.clone().unwrap_or_default(),
            saved,
            staged: None,
            next_scan: Instant::now(),
            unfinished: BTreeSet::new(),
            warned_max_jobs: false,
        }
    }

    pub async fn poll(&mut self) -> Result<ProducedMessages, Error> {
        self.metrics.maybe_log();
        if self.unfinished.is_empty() {
            tokio::time::sleep_until(self.next_scan).await;
        }
        self.next_scan = Instant::now() + self.poll_interval;
        let (events, listed) = self.scan().await.inspect_err(|_| self.metrics.error())?;

        let mut next = self.committed.clone();
        next.jobs.retain(|jid, _| listed.contains(jid));
        self.discovery.retain(&listed);
        self.unfinished.clear();
        let mut included = Vec::with_capacity(events.len().min(self.batch_size));
        for event in events {
            if included.len() == self.batch_size {
                self.unfinished.insert(event.job_id.clone());
                continue;
            }
            event.apply(next.jobs.entry(event.job_id.clone()).or_default());
            included.push(event.into_message());
        }
        let state = if self.saved.as_ref() == Some(&next) {
            None
        } else {
            ConnectorState::serialize(&next, PLUGIN, self.id)
        };
        self.staged = Some(Staged {
            saved: state.is_some(),
            messages: included.len() as u64,
            bytes: included.iter().map(|m| m.payload.len() as u64).sum(),
            state: next,
        });
        Ok(ProducedMessages {
            schema: Schema::Json,
            messages: included,
            state,
        })
    }

    pub fn on_batch_result(&mut self, ack: bool) {
        let Some(staged) = self.staged.take() else {
            return;
        };
        if !ack {
            // The next scan finds the same events again (same ids).
            self.unfinished.clear();
            return;
        }
        self.committed = staged.state;
        if staged.saved {
            self.saved = Some(self.committed.clone());
        }
        if staged.messages > 0 {
            self.metrics.delivered(staged.messages, staged.bytes);
        }
    }

    /// The events of every watched job, and the ids of all jobs Flink lists.
    async fn scan(&mut self) -> Result<(Vec<Event>, BTreeSet<String>), Error> {
        let mut jobs = self
            .rest
            .jobs()
            .await
            .map_err(|e| Error::HttpRequestFailed(format!("cannot list Flink jobs: {e}")))?;
        jobs.sort_by(|a, b| (a.start_time, &a.jid).cmp(&(b.start_time, &b.jid)));
        let listed: BTreeSet<String> = jobs.iter().map(|job| job.jid.clone()).collect();
        let now = now_ms();
        let mut events = Vec::new();
        let mut watched = 0;
        for job in &jobs {
            let mut detail = None;
            let wanted = match self.discovery.decide(job) {
                Some(wanted) => wanted,
                None => match self.rest.job(&job.jid).await {
                    Ok(fetched) => {
                        let wanted = self.discovery.learn_sources(&fetched);
                        detail = Some(fetched);
                        wanted
                    }
                    Err(error) => {
                        self.job_failed(job, &error);
                        continue;
                    }
                },
            };
            if !wanted {
                continue;
            }
            if watched == self.settings.max_jobs {
                if !self.warned_max_jobs {
                    self.warned_max_jobs = true;
                    warn!(
                        "{PLUGIN} {}: more than monitor.max_jobs ({}) jobs match; the newest are not watched",
                        self.id, self.settings.max_jobs
                    );
                }
                break;
            }
            watched += 1;
            match self.job_events(job, detail, now).await {
                Ok(job_events) => events.extend(job_events),
                Err(error) => self.job_failed(job, &error),
            }
        }
        Ok((events, listed))
    }

    /// A job that vanished between the listing and the next request is
    /// normal; anything else is logged. Either way the next scan tries again.
    fn job_failed(&self, job: &JobOverview, error: &HttpError) {
        if error.kind != HttpErrorKind::Status(404) {
            self.metrics.error();
            warn!(
                "{PLUGIN} {}: skipped job {} this scan: {error}",
                self.id, job.jid
            );
        }
    }

    async fn job_events(
        &self,
        job: &JobOverview,
        mut detail: Option<JobDetail>,
        now: i64,
    ) -> Result<Vec<Event>, HttpError> {
        let marks = self
            .committed
            .jobs
            .get(&job.jid)
            .cloned()
            .unwrap_or_default();
        let job_ref = JobRef {
            id: &job.jid,
            name: &job.name,
        };
        let status_changed = marks.status.as_deref() != Some(job.state.as_str());
        let bucket = self.metrics_bucket(job, &marks, now);
        if detail.is_none() && (status_changed || bucket.is_some()) {
            detail = Some(self.rest.job(&job.jid).await?);
        }
        let mut events = Vec::new();
        // The detail may still be a cached view from before the change; the
        // event waits for it, because its id depends on when the state began.
        if status_changed && let Some(detail) = detail.as_ref().filter(|d| d.state == job.state) {
            let at = detail.state_timestamp().unwrap_or(job.start_time);
            events.push(events::status_event(
                job_ref,
                &job.state,
                at,
                marks.status.as_deref(),
            ));
        }
        let settled = TERMINAL.contains(&job.state.as_str())
            && !status_changed
            && now.saturating_sub(marks.status_at) > SETTLE_MS;
        if !settled || self.unfinished.contains(&job.jid) {
            let checkpoints = self.rest.checkpoints(&job.jid).await?;
            events.extend(events::checkpoint_events(job_ref, &checkpoints, &marks));
            let exceptions = self
                .rest
                .exceptions(&job.jid, self.settings.max_exceptions)
                .await?;
            events.extend(events::exception_events(job_ref, &exceptions, &marks));
        }
        if let (Some(bucket), Some(detail), Some(interval)) =
            (bucket, &detail, self.settings.metrics_interval)
        {
            let sample = sample::sample(&self.rest, detail, now).await;
            let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
            events.push(events::metrics_event(job_ref, bucket, interval_ms, sample));
        }
        Ok(events)
    }

    /// The sample bucket due for a running job, if one is.
    fn metrics_bucket(&self, job: &JobOverview, marks: &JobMarks, now: i64) -> Option<i64> {
        let interval = i64::try_from(self.settings.metrics_interval?.as_millis()).ok()?;
        let bucket = now.checked_div(interval)?;
        (job.state == "RUNNING" && bucket > marks.metrics_bucket).then_some(bucket)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
