//! Records mode: a streaming query on the SQL Gateway, its rows delivered
//! page by page. The cursor (page URI and row) is staged in `poll`,
//! committed on Ack and dropped on Nack, when the page is fetched again (the
//! gateway answers a repeat of the current token with the same rows). On
//! `close` the query's job is stopped with a savepoint; the next `open`
//! delivers what the job produced before it, then runs the query again from
//! that savepoint.

mod event_time;
mod page;
mod query;
mod recovery;
mod rows;
mod state;
mod submit;

use crate::client::gateway::{Gateway, ResultPage, token_of};
use crate::client::rest::Rest;
use crate::config::{RecordsSettings, Settings};
use crate::metrics::Metrics;
use iggy_connector_sdk::{ConnectorState, Error, ProducedMessage, ProducedMessages, Schema};
use query::Statements;
use rows::RowMapper;
pub use state::RecordsState;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

const PLUGIN: &str = "Flink source";
/// Skipped rows are logged one by one up to this many per batch.
const SKIP_LOG_LIMIT: usize = 5;
/// A quiet query still moves its token with every empty page. Saving that
/// alone at most this often keeps a quiet source from writing its state
/// file several times a second; the cost is a few empty pages to step over
/// after a crash (see `probe_forward`).
const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(10);
/// How far `probe_forward` looks for the token the gateway is at.
const MAX_PROBES: u64 = 10_000;
/// How long a stopped job's savepoint is looked for (see `latest_savepoint`):
/// longer than Flink's default cache time of 3 s.
const SAVEPOINT_SETTLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// A query must be submitted, from this savepoint if any.
    Start(Option<String>),
    Reading,
    Finished,
}

/// What one poll read: the messages and the cursor after them.
struct Read {
    messages: Vec<ProducedMessage>,
    next: RecordsState,
    last_offset: Option<String>,
}

impl Read {
    fn nothing(state: &RecordsState) -> Self {
        Self {
            messages: Vec::new(),
            next: state.clone(),
            last_offset: None,
        }
    }
}

/// What the batch in flight would commit.
struct Staged {
    state: RecordsState,
    saved: bool,
    messages: u64,
    bytes: u64,
    last_offset: Option<String>,
}

pub struct RecordsReader {
    id: u32,
    settings: RecordsSettings,
    batch_size: usize,
    poll_interval: Duration,
    max_poll_interval: Duration,
    skip_errors: bool,
    gateway: Gateway,
    rest: Option<Rest>,
    statements: Statements,
    mapper: RowMapper,
    metrics: Arc<Metrics>,
    /// The delivered position and the query's facts.
    committed: RecordsState,
    /// What the runtime last saved.
    saved: Option<RecordsState>,
    staged: Option<Staged>,
    /// The page at the committed URI, kept while a large page is delivered in slices.
    page: Option<(String, ResultPage)>,
    phase: Phase,
    /// Polls in a row that found nothing new, for the backoff.
    empty_streak: u32,
    next_heartbeat: Instant,
    next_lag_sample: Instant,
    last_save: Instant,
    /// The cursor came from the saved state and has not been read yet; the
    /// gateway may be a few empty pages further.
    resumed: bool,
    metrics_log_interval: Duration,
}

impl RecordsReader {
    pub async fn open(
        id: u32,
        settings: RecordsSettings,
        common: &Settings,
        gateway: Gateway,
        rest: Option<Rest>,
        saved: Option<RecordsState>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Error> {
        let statements = query::statements(&settings.query, &settings.header_columns);
        let mapper = RowMapper::new(&statements, settings.timestamp_column.clone());
        let committed = saved.clone().unwrap_or_default();
        let phase = match &committed {
            RecordsState { finished: true, .. } => {
                info!(
                    "{PLUGIN} {id}: the query reached its end in an earlier run; nothing to read (delete the connector's state file to run it again)"
                );
                Phase::Finished
            }
            RecordsState {
                query: Some(query), ..
            } => {
                info!(
                    "{PLUGIN} {id}: reading on from the earlier run's query (job {}) at page {}",
                    query.job_id.as_deref().unwrap_or("not yet known"),
                    token_of(&query.uri).map_or_else(|| "?".into(), |t| t.to_string())
                );
                Phase::Reading
            }
            RecordsState { restored_from, .. } => Phase::Start(
                restored_from
                    .clone()
                    .or_else(|| settings.restore_from_checkpoint.clone()),
            ),
        };
        let now = Instant::now();
        let mut reader = Self {
            id,
            batch_size: common.batch_size,
            poll_interval: common.poll_interval,
            max_poll_interval: common.max_poll_interval,
            skip_errors: settings.skip_errors,
            next_heartbeat: now + settings.heartbeat_interval,
            next_lag_sample: now,
            last_save: now,
            resumed: matches!(phase, Phase::Reading),
            metrics_log_interval: common.metrics_log_interval,
            settings,
            gateway,
            rest,
            statements,
            mapper,
            metrics,
            committed,
            saved,
            staged: None,
            page: None,
            phase,
            empty_streak: 0,
        };
        // A query that cannot run should fail `open`, where the operator looks.
        if let Phase::Start(restore) = reader.phase.clone() {
            reader.start_query(restore).await?;
        }
        Ok(reader)
    }

    pub async fn poll(&mut self) -> Result<ProducedMessages, Error> {
        self.housekeeping().await;
        if self.empty_streak > 0 {
            tokio::time::sleep(self.backoff()).await;
        }
        let read = match self.phase.clone() {
            Phase::Finished => {
                tokio::time::sleep(self.max_poll_interval).await;
                Read::nothing(&self.committed)
            }
            Phase::Start(restore) => {
                self.start_query(restore).await?;
                Read::nothing(&self.committed)
            }
            Phase::Reading => self.read_page().await?,
        };
        Ok(self.stage(read))
    }

    pub fn on_batch_result(&mut self, ack: bool) {
        let Some(staged) = self.staged.take() else {
            return;
        };
        if !ack {
            // Fetch the page again: the gateway repeats the current token's rows.
            self.page = None;
            return;
        }
        let moved = staged.state.query.as_ref().map(|q| &q.uri)
            != self.committed.query.as_ref().map(|q| &q.uri);
        if moved {
            self.page = None;
        }
        self.committed = staged.state;
        if staged.saved {
            self.saved = Some(self.committed.clone());
            self.last_save = Instant::now();
        }
        if staged.messages > 0 {
            self.metrics.delivered(staged.messages, staged.bytes);
        }
        if let Some(offset) = staged.last_offset {
            self.metrics.set_last_offset(offset);
        }
    }

    /// Stops the query's job with a savepoint, leaving the session open so
    /// the next start can read what the job produced before it.
    pub async fn close(&mut self) {
        if self.phase != Phase::Reading {
            return;
        }
        let Some(query) = self.committed.query.clone() else {
            return;
        };
        let id = self.id;
        if !self.settings.savepoint_on_close {
            info!(
                "{PLUGIN} {id}: the query keeps running; a restart within the SQL Gateway's session idle timeout reads on from where this run stopped"
            );
            return;
        }
        let (Some(rest), Some(job_id)) = (&self.rest, &query.job_id) else {
            warn!(
                "{PLUGIN} {id}: the query's job is not known yet, so no savepoint was taken; the gateway cancels it when the idle session expires"
            );
            return;
        };
        match rest
            .stop_with_savepoint(
                job_id,
                self.settings.savepoint_dir.as_deref(),
                self.settings.savepoint_timeout,
            )
            .await
        {
            Ok(path) => info!(
                "{PLUGIN} {id}: stopped the query's job {job_id} with savepoint {path}; the next start delivers the rows it produced before the savepoint, then runs the query from it"
            ),
            Err(error) => warn!(
                "{PLUGIN} {id}: could not stop job {job_id} with a savepoint: {error}; it runs on until the gateway closes the idle session"
            ),
        }
    }

    fn backoff(&self) -> Duration {
        let doublings = self.empty_streak.saturating_sub(1).min(16);
        self.poll_interval
            .saturating_mul(1 << doublings)
            .min(self.max_poll_interval)
    }

    /// Session heartbeats and the periodic metrics line.
    async fn housekeeping(&mut self) {
        let now = Instant::now();
        if self.phase == Phase::Reading
            && now >= self.next_heartbeat
            && let Some(query) = &self.committed.query
        {
            self.next_heartbeat = now + self.settings.heartbeat_interval;
            if let Err(error) = self.gateway.heartbeat(&query.session).await {
                warn!("{PLUGIN} {}: session heartbeat failed: {error}", self.id);
            }
        }
        if now >= self.next_lag_sample {
            self.next_lag_sample = now + self.metrics_log_interval;
            let lag = self.pending_records().await;
            self.metrics.set_lag(lag);
        }
        self.metrics.maybe_log();
    }

    /// Flink's `pendingRecords` summed over the query's source operators
    /// (reported by Kafka and Kinesis sources, not by every connector).
    async fn pending_records(&self) -> Option<i64> {
        let rest = self.rest.as_ref()?;
        let job_id = self.committed.query.as_ref()?.job_id.as_ref()?;
        let detail = rest.job(job_id).await.ok()?;
        let mut total = None;
        for vertex in detail.source_vertices() {
            let values = rest
                .vertex_metrics_ending(job_id, &vertex.id, ".pendingRecords")
                .await
                .ok()?;
            for value in values {
                if let Ok(pending) = value.value.parse::<i64>() {
                    *total.get_or_insert(0) += pending;
                }
            }
        }
        total
    }

    /// The batch for the runtime. Its state goes with every batch of rows
    /// and every change of query, so a page with rows is never passed over
    /// unsaved; a cursor moved only by empty pages is saved now and then.
    fn stage(&mut self, read: Read) -> ProducedMessages {
        let unsaved = self.saved.as_ref() != Some(&read.next);
        let only_cursor_moved = self
            .saved
            .as_ref()
            .is_some_and(|saved| same_query(saved, &read.next));
        let save = unsaved
            && (!read.messages.is_empty()
                || !only_cursor_moved
                || self.last_save.elapsed() >= CURSOR_SAVE_INTERVAL);
        let state = if save {
            ConnectorState::serialize(&read.next, PLUGIN, self.id)
        } else {
            None
        };
        let batch = ProducedMessages {
            schema: Schema::Json,
            messages: read.messages,
            state,
        };
        self.staged = Some(Staged {
            saved: batch.state.is_some(),
            messages: batch.messages.len() as u64,
            bytes: batch.messages.iter().map(|m| m.payload.len() as u64).sum(),
            last_offset: read.last_offset,
            state: read.next,
        });
        batch
    }
}

/// The same query and facts; at most the cursor within it differs.
fn same_query(a: &RecordsState, b: &RecordsState) -> bool {
    let query = |s: &RecordsState| {
        s.query
            .as_ref()
            .map(|q| (q.session.clone(), q.operation.clone(), q.job_id.clone()))
    };
    query(a) == query(b) && a.restored_from == b.restored_from && a.finished == b.finished
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::QueryCursor;

    #[test]
    fn only_a_moved_cursor_is_the_same_query() {
        let cursor = QueryCursor {
            session: "s".into(),
            operation: "o".into(),
            job_id: Some("j".into()),
            uri: "/v3/sessions/s/operations/o/result/1?rowFormat=JSON".into(),
            row: 0,
        };
        let saved = RecordsState {
            query: Some(cursor.clone()),
            ..RecordsState::default()
        };
        let mut moved = saved.clone();
        if let Some(query) = moved.query.as_mut() {
            query.uri = "/v3/sessions/s/operations/o/result/2?rowFormat=JSON".into();
        }
        assert!(same_query(&saved, &moved));
        let mut other = moved.clone();
        other.restored_from = Some("file:/sp".into());
        assert!(!same_query(&saved, &other));
        let finished = RecordsState {
            finished: true,
            ..RecordsState::default()
        };
        assert!(!same_query(&saved, &finished));
    }
}
