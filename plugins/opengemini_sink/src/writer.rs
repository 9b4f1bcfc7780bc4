//! The lines of one `consume` → `/write` requests of at most `batch_size`
//! points, in order. A 413 halves the request; a 404 creates the database
//! when allowed; a 400 is recorded with its offsets and the remaining
//! requests still go out; anything else (credentials, a missing database,
//! retries exhausted) stops the batch.

use crate::batch::{LineBatch, chunks};
use crate::client::{Client, ClientError, ErrorKind};
use iggy_connector_shared::RetryError;
use std::ops::Range;

/// Points not written, with the Iggy offsets they came from.
#[derive(Debug)]
pub struct Unwritten {
    pub points: usize,
    pub first_offset: u64,
    pub last_offset: u64,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub written: usize,
    pub requests: usize,
    /// Requests halved after a 413.
    pub splits: usize,
    /// Requests the server refused for good (400, or one line over the size limit).
    pub refused: Vec<Unwritten>,
    /// What stopped the batch, counting every point not sent after it.
    pub stopped: Option<Unwritten>,
}

pub async fn write_batch(
    client: &Client,
    batch: &LineBatch,
    batch_size: usize,
    create_database: bool,
) -> Outcome {
    let mut outcome = Outcome::default();
    // A stack, last request on top, so halves go out before what follows.
    let mut pending: Vec<Range<usize>> = chunks(batch.len(), batch_size).rev().collect();
    let mut created = false;
    let unwritten = |range: Range<usize>, points: usize, reason: String| {
        let (first_offset, last_offset) = batch.offsets(range);
        Unwritten {
            points,
            first_offset,
            last_offset,
            reason,
        }
    };
    while let Some(range) = pending.pop() {
        outcome.requests += 1;
        let error = match client.write(batch.body(range.clone())).await {
            Ok(()) => {
                outcome.written += range.len();
                continue;
            }
            Err(error) => error,
        };
        match error.last.kind {
            ErrorKind::TooLarge if range.len() > 1 => {
                let middle = range.start + range.len() / 2;
                pending.push(middle..range.end);
                pending.push(range.start..middle);
                outcome.splits += 1;
            }
            ErrorKind::DatabaseNotFound if create_database && !created => {
                created = true;
                if let Err(create) = client.create_database().await {
                    let rest = pending.iter().map(ExactSizeIterator::len).sum::<usize>();
                    let last = pending.first().map_or(range.end, |r| r.end);
                    outcome.stopped = Some(unwritten(
                        range.start..last,
                        range.len() + rest,
                        format!("the database is missing and creating it failed: {create}"),
                    ));
                    return outcome;
                }
                tracing::info!("created the missing database after a 404");
                pending.push(range);
            }
            ErrorKind::BadRequest | ErrorKind::TooLarge => {
                outcome
                    .refused
                    .push(unwritten(range.clone(), range.len(), error.to_string()));
            }
            _ => {
                let rest = pending.iter().map(ExactSizeIterator::len).sum::<usize>();
                let last = pending.first().map_or(range.end, |r| r.end);
                outcome.stopped = Some(unwritten(
                    range.start..last,
                    range.len() + rest,
                    explain(&error),
                ));
                return outcome;
            }
        }
    }
    outcome
}

/// Checks at open that the database takes writes (an empty write answers
/// 404, 401 or 403 as a real one would), creating it when allowed.
pub async fn ensure_database(
    client: &Client,
    database: &str,
    create_database: bool,
) -> Result<(), String> {
    let error = match client.write(b"").await {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    match error.last.kind {
        ErrorKind::DatabaseNotFound if create_database => {
            client
                .create_database()
                .await
                .map_err(|e| format!("cannot create database `{database}`: {e}"))?;
            tracing::info!("created database `{database}`");
            Ok(())
        }
        _ => Err(format!(
            "database `{database}` does not take writes: {}",
            explain(&error)
        )),
    }
}

fn explain(error: &RetryError<ClientError>) -> String {
    match error.last.kind {
        ErrorKind::Unauthorized | ErrorKind::Forbidden => format!(
            "{error} (credentials or grants refused; not retried, since openGemini locks \
             a user out after 5 failed logins)"
        ),
        ErrorKind::DatabaseNotFound => {
            format!("{error} (the database is missing; create it or set create_database = true)")
        }
        _ => error.to_string(),
    }
}
