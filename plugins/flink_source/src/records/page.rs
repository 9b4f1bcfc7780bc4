//! Reading the committed page: fetching it (with retries on the same
//! token), following NOT_READY, empty pages and EOS, and turning its rows
//! into a batch of at most `batch_size` messages.

use super::recovery::is_status;
use super::rows::PageSlice;
use super::{PLUGIN, Phase, Read, RecordsReader, SKIP_LOG_LIMIT};
use crate::client::gateway::{ResultType, token_of};
use iggy_connector_sdk::Error;
use tracing::warn;

impl RecordsReader {
    /// Delivers the rest of the committed page, or finds out what is next.
    pub(super) async fn read_page(&mut self) -> Result<Read, Error> {
        let Some(cursor) = self.committed.query.clone() else {
            self.phase = Phase::Start(self.committed.restored_from.clone());
            return Ok(Read::nothing(&self.committed));
        };
        if self.page.as_ref().is_none_or(|(uri, _)| *uri != cursor.uri) {
            let gateway = &self.gateway;
            let fetched = gateway
                .http()
                .with_retry("fetch query results", |_| gateway.fetch(&cursor.uri))
                .await;
            match fetched {
                Ok(page) => self.page = Some((cursor.uri.clone(), page)),
                Err(error) if self.resumed && is_status(&error.last) => {
                    return self.probe_forward(&cursor, error).await;
                }
                Err(error) => return self.fetch_failed(&cursor, error).await,
            }
            self.resumed = false;
        }
        let Some((_, page)) = &self.page else {
            return Ok(Read::nothing(&self.committed));
        };
        let mut next = self.committed.clone();
        let next_cursor = next.query.get_or_insert_with(|| cursor.clone());
        if next_cursor.job_id.is_none() {
            next_cursor.job_id = page.job_id.clone();
        }
        match page.result_type {
            ResultType::NotReady => {
                // The same token again later; its answer will differ.
                self.page = None;
                self.empty_streak += 1;
                return Ok(Read {
                    messages: Vec::new(),
                    next,
                    last_offset: None,
                });
            }
            ResultType::Eos => return self.query_ended(&cursor).await,
            ResultType::Payload => {}
        }
        let (columns, rows) = match &page.results {
            Some(results) => (results.columns.as_slice(), results.data.as_slice()),
            None => (&[][..], &[][..]),
        };
        let start = cursor.row.min(rows.len());
        if start == rows.len() {
            let Some(next_uri) = page.next_result_uri.clone() else {
                return self.query_ended(&cursor).await;
            };
            next_cursor.uri = next_uri;
            next_cursor.row = 0;
            self.empty_streak += 1;
            return Ok(Read {
                messages: Vec::new(),
                next,
                last_offset: None,
            });
        }
        let end = (start + self.batch_size).min(rows.len());
        let query_key = next_cursor
            .job_id
            .clone()
            .unwrap_or_else(|| cursor.operation.clone());
        let slice = PageSlice {
            columns,
            rows: &rows[start..end],
            first_row: start,
            job_id: next_cursor.job_id.as_deref(),
            query_key: &query_key,
            token: token_of(&cursor.uri).unwrap_or_default(),
        };
        let mapped = self
            .mapper
            .map(&slice, self.skip_errors)
            .map_err(|reason| {
                self.metrics.error();
                Error::InvalidRecordValue(format!(
                    "{reason} (set skip_errors = true to skip such rows)"
                ))
            })?;
        if !mapped.skipped.is_empty() {
            self.metrics.skipped(mapped.skipped.len() as u64);
            for reason in mapped.skipped.iter().take(SKIP_LOG_LIMIT) {
                warn!("{PLUGIN} {}: skipped {reason}", self.id);
            }
        }
        if end == rows.len() {
            match page.next_result_uri.clone() {
                Some(next_uri) => {
                    next_cursor.uri = next_uri;
                    next_cursor.row = 0;
                }
                // A last page without a successor: EOS comes next time.
                None => next_cursor.row = end,
            }
        } else {
            next_cursor.row = end;
        }
        self.empty_streak = 0;
        Ok(Read {
            messages: mapped.messages,
            next,
            last_offset: mapped.last_offset,
        })
    }
}
