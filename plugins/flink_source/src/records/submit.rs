//! Starting a query: a session, the setup statements, the restore point,
//! the statement itself, and waiting until Flink accepted it.

use super::query::restore_statement;
use super::state::{QueryCursor, RecordsState};
use super::{PLUGIN, Phase, RecordsReader};
use iggy_connector_sdk::Error;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;

impl RecordsReader {
    /// Opens a session, runs the setup statements and submits the query,
    /// from `restore` when given. The new query's cursor is a fact from now
    /// on (the old one is gone), so it goes straight into `committed`.
    pub(super) async fn start_query(&mut self, restore: Option<String>) -> Result<(), Error> {
        let id = self.id;
        match &restore {
            Some(path) => info!("{PLUGIN} {id}: starting the query from savepoint {path}"),
            None => info!("{PLUGIN} {id}: starting the query"),
        }
        let mut properties = BTreeMap::from([(
            "execution.runtime-mode".to_string(),
            "streaming".to_string(),
        )]);
        properties.extend(self.settings.session_properties.clone());
        let session = self
            .gateway
            .open_session(&self.settings.job_name, &properties)
            .await
            .map_err(|e| Error::Connection(format!("cannot open a SQL Gateway session: {e}")))?;
        let operation = match self.submit(&session, restore.as_deref()).await {
            Ok(operation) => operation,
            Err(error) => {
                self.close_query(&session, None).await;
                return Err(Error::InitError(error));
            }
        };
        self.committed = RecordsState {
            query: Some(QueryCursor {
                uri: self.gateway.first_result_uri(&session, &operation),
                session,
                operation,
                job_id: None,
                row: 0,
            }),
            restored_from: restore,
            finished: false,
        };
        self.page = None;
        self.phase = Phase::Reading;
        self.empty_streak = 0;
        self.next_heartbeat = Instant::now() + self.settings.heartbeat_interval;
        Ok(())
    }

    async fn submit(&self, session: &str, restore: Option<&str>) -> Result<String, String> {
        for statement in &self.statements.setup {
            self.gateway
                .configure(session, statement)
                .await
                .map_err(|e| format!("setup statement failed: {}", e.detail))?;
        }
        if let Some(path) = restore {
            self.gateway
                .configure(session, &restore_statement(path))
                .await
                .map_err(|e| format!("cannot restore from {path}: {}", e.detail))?;
        }
        let execution_config = BTreeMap::from([
            (
                "execution.checkpointing.interval".to_string(),
                format!("{}ms", self.settings.checkpoint_interval.as_millis()),
            ),
            ("pipeline.name".to_string(), self.settings.job_name.clone()),
        ]);
        let operation = self
            .gateway
            .execute(session, &self.statements.select, &execution_config)
            .await
            .map_err(|e| format!("the query was refused: {}", e.detail))?;
        self.await_submission(session, &operation).await?;
        Ok(operation)
    }

    /// A SELECT's operation is RUNNING while Flink plans and submits its job,
    /// then FINISHED (the rows keep coming) or ERROR: report a query Flink
    /// cannot run here rather than as failing pages later.
    async fn await_submission(&self, session: &str, operation: &str) -> Result<(), String> {
        let deadline = Instant::now() + self.settings.statement_timeout;
        loop {
            let status = self
                .gateway
                .operation_status(session, operation)
                .await
                .map_err(|e| format!("cannot follow the query's submission: {e}"))?;
            match status.as_str() {
                "FINISHED" => return Ok(()),
                "ERROR" => {
                    let uri = self.gateway.first_result_uri(session, operation);
                    let reason = match self.gateway.fetch(&uri).await {
                        Err(error) => error.detail,
                        Ok(_) => "no reason given".into(),
                    };
                    return Err(format!("the query failed: {reason}"));
                }
                "CANCELED" | "CLOSED" | "TIMEOUT" => {
                    return Err(format!("the query's operation ended as {status}"));
                }
                _ if Instant::now() >= deadline => {
                    return Err(format!(
                        "the query was still {status} after records.statement_timeout ({:?})",
                        self.settings.statement_timeout
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Best effort: an operation or session that is already gone is fine.
    pub(super) async fn close_query(&self, session: &str, operation: Option<&str>) {
        if let Some(operation) = operation
            && let Err(error) = self.gateway.close_operation(session, operation).await
        {
            tracing::debug!("{PLUGIN} {}: closing the old operation: {error}", self.id);
        }
        if let Err(error) = self.gateway.close_session(session).await {
            tracing::debug!("{PLUGIN} {}: closing the old session: {error}", self.id);
        }
    }
}
