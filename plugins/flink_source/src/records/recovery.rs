//! When the query cannot be read on: stepping over empty pages after a
//! crash, finding out whether the query is gone, and where to start it again
//! (the savepoint its job was stopped with, or the one it started from).

use super::state::QueryCursor;
use super::{MAX_PROBES, PLUGIN, Phase, Read, RecordsReader, SAVEPOINT_SETTLE};
use crate::client::gateway::token_of;
use crate::client::http::{HttpError, HttpErrorKind};
use iggy_connector_common::RetryError;
use iggy_connector_sdk::Error;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// What Flink 1.20's gateway answers for every page of a query restored
/// from a savepoint that holds the results of the query's collect sink:
/// the sink comes back with its old result offset, and the gateway's new
/// result fetcher refuses it.
const RESTORED_COLLECT_SINK: &str = "userVisibleTail should not be larger than offset";
const RESTORE_HINT: &str = " (Flink cannot read a query restored from a savepoint of an earlier query read through the SQL Gateway; delete the connector's state file to start over, and set records.savepoint_on_close = false to read on across restarts instead)";

impl RecordsReader {
    /// The saved cursor of an earlier run was refused. If the query is still
    /// there, the gateway is only past it by empty pages (a page with rows is
    /// always saved before it is passed): step forward to the token it takes.
    pub(super) async fn probe_forward(
        &mut self,
        cursor: &QueryCursor,
        error: RetryError<HttpError>,
    ) -> Result<Read, Error> {
        self.resumed = false;
        let Some(token) = token_of(&cursor.uri) else {
            return self.fetch_failed(cursor, error).await;
        };
        let alive = self
            .gateway
            .operation_status(&cursor.session, &cursor.operation)
            .await
            .is_ok_and(|status| matches!(status.as_str(), "RUNNING" | "FINISHED"));
        if !alive {
            return self.fetch_failed(cursor, error).await;
        }
        for next in token + 1..=token.saturating_add(MAX_PROBES) {
            let uri = with_token(&cursor.uri, next);
            if let Ok(page) = self.gateway.fetch(&uri).await {
                info!(
                    "{PLUGIN} {}: the gateway was {} empty page(s) past the saved cursor; reading on at page {next}",
                    self.id,
                    next - token
                );
                let mut moved = cursor.clone();
                moved.uri = uri.clone();
                moved.row = 0;
                self.committed.query = Some(moved);
                self.page = Some((uri, page));
                return Ok(Read::nothing(&self.committed));
            }
        }
        self.fetch_failed(cursor, error).await
    }

    /// The page could not be read even after retries: find out whether the
    /// query is still there (then report and try again later) or gone (then
    /// run it again from the newest savepoint Flink knows for it).
    pub(super) async fn fetch_failed(
        &mut self,
        cursor: &QueryCursor,
        error: RetryError<HttpError>,
    ) -> Result<Read, Error> {
        self.metrics.error();
        let id = self.id;
        let status = self
            .gateway
            .operation_status(&cursor.session, &cursor.operation)
            .await;
        let gone = match &status {
            Ok(status) => !matches!(
                status.as_str(),
                "RUNNING" | "PENDING" | "INITIALIZED" | "FINISHED"
            ),
            // The gateway answers, but knows neither session nor operation.
            Err(status_error) => matches!(status_error.kind, HttpErrorKind::Status(_)),
        };
        if !gone {
            let hint = if self.committed.restored_from.is_some()
                && error.to_string().contains(RESTORED_COLLECT_SINK)
            {
                RESTORE_HINT
            } else {
                ""
            };
            return Err(Error::HttpRequestFailed(format!(
                "reading the query's rows failed: {error}{hint}"
            )));
        }
        let restore = match self.latest_savepoint(cursor, false).await {
            Some(path) => Some(path),
            None => self.committed.restored_from.clone(),
        };
        warn!(
            "{PLUGIN} {id}: the query can no longer be read ({}); rows its job produced after the last delivered page are lost unless the restart point covers them; running it again from {}",
            error.last,
            restore.as_deref().unwrap_or("the initial offset")
        );
        self.close_query(&cursor.session, Some(&cursor.operation))
            .await;
        self.phase = Phase::Start(restore);
        Ok(Read::nothing(&self.committed))
    }

    /// EOS: the job stopped. Stopped with a savepoint (by `close`), every row
    /// before it is now delivered and the query runs on from it; otherwise
    /// the source was bounded and the query is done.
    pub(super) async fn query_ended(&mut self, cursor: &QueryCursor) -> Result<Read, Error> {
        let id = self.id;
        let savepoint = self.latest_savepoint(cursor, true).await;
        self.close_query(&cursor.session, Some(&cursor.operation))
            .await;
        self.page = None;
        match savepoint {
            Some(path) => {
                info!(
                    "{PLUGIN} {id}: delivered every row of job {} up to its savepoint {path}",
                    cursor.job_id.as_deref().unwrap_or("?")
                );
                self.committed.query = None;
                self.committed.restored_from = Some(path.clone());
                self.phase = Phase::Start(Some(path));
            }
            None => {
                info!("{PLUGIN} {id}: the query reached its end; nothing more to read");
                self.committed.query = None;
                self.committed.finished = true;
                self.phase = Phase::Finished;
            }
        }
        Ok(Read::nothing(&self.committed))
    }

    /// The newest completed savepoint of the query's job; with
    /// `stopped_only`, only one taken by stop-with-savepoint. Flink serves
    /// checkpoint statistics from a cache (`rest.cache.checkpoint-statistics.timeout`,
    /// 3 s by default), so right after a stop the savepoint may not be listed
    /// yet: for a stop, the lookup is repeated for a while before concluding
    /// there was none.
    async fn latest_savepoint(&self, cursor: &QueryCursor, stopped_only: bool) -> Option<String> {
        let rest = self.rest.as_ref()?;
        let job_id = cursor.job_id.as_ref()?;
        let deadline = Instant::now()
            + if stopped_only {
                SAVEPOINT_SETTLE
            } else {
                Duration::ZERO
            };
        loop {
            match rest.checkpoints(job_id).await {
                Ok(stats) => {
                    let found = stats.latest.savepoint.filter(|savepoint| {
                        savepoint.status == "COMPLETED"
                            && (!stopped_only
                                || savepoint.checkpoint_type.as_deref() == Some("SYNC_SAVEPOINT"))
                    });
                    if let Some(path) = found.and_then(|savepoint| savepoint.external_path) {
                        return Some(path);
                    }
                }
                Err(error) => {
                    warn!(
                        "{PLUGIN} {}: cannot read job {job_id}'s savepoints: {error}",
                        self.id
                    );
                    return None;
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Flink answered (with an error status), as opposed to not answering.
pub(super) fn is_status(error: &HttpError) -> bool {
    matches!(error.kind, HttpErrorKind::Status(_))
}

/// `uri` with its result token replaced.
fn with_token(uri: &str, token: u64) -> String {
    match uri.rsplit_once("/result/") {
        Some((head, tail)) => {
            let rest = tail.find(['?', '/']).map_or("", |at| &tail[at..]);
            format!("{head}/result/{token}{rest}")
        }
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_replaced_in_result_uris() {
        assert_eq!(
            with_token("/v3/sessions/s/operations/o/result/7?rowFormat=JSON", 12),
            "/v3/sessions/s/operations/o/result/12?rowFormat=JSON"
        );
        assert_eq!(with_token("/v2/x/result/3", 4), "/v2/x/result/4");
    }
}
