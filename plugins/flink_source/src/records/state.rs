//! What records mode keeps in the connector state (MessagePack, saved by the
//! runtime with a batch): the query being read with the next page to
//! deliver, and the savepoint that query started from. It goes with every
//! batch of rows and every change of query; a cursor moved only by empty
//! pages is saved at most every few seconds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordsState {
    pub query: Option<QueryCursor>,
    /// The savepoint the current query was started from; the restore point of
    /// last resort when Flink no longer knows a newer one.
    #[serde(default)]
    pub restored_from: Option<String>,
    /// The query reached its end (a bounded source); there is nothing more to read.
    #[serde(default)]
    pub finished: bool,
}

/// A query on the SQL Gateway and how far its rows are delivered. The
/// gateway keeps a session's results in memory, so a restart within the
/// session's idle timeout can read on from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryCursor {
    pub session: String,
    pub operation: String,
    pub job_id: Option<String>,
    /// The page to deliver next, as the gateway named it (`.../result/<token>?rowFormat=JSON`).
    pub uri: String,
    /// Rows of that page already delivered.
    pub row: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_connector_sdk::ConnectorState;

    #[test]
    fn state_round_trips_through_connector_state() {
        let state = RecordsState {
            query: Some(QueryCursor {
                session: "s".into(),
                operation: "o".into(),
                job_id: Some("j".into()),
                uri: "/v3/sessions/s/operations/o/result/7?rowFormat=JSON".into(),
                row: 3,
            }),
            restored_from: Some("file:/sp/savepoint-1".into()),
            finished: false,
        };
        let saved = ConnectorState::serialize(&state, "test", 1).unwrap();
        let read: RecordsState = saved.deserialize("test", 1).unwrap();
        assert_eq!(read, state);
    }
}
