//! The lines of one `consume` → `/write` requests of at most `batch_size`
//! points, in order, in up to `write_concurrency` lanes written at once. A
//! 413 halves the request; a 404 creates the database when allowed; a 400
//! is recorded with its offsets and the remaining requests still go out;
//! anything else (credentials, a missing database, retries exhausted) stops
//! the lane.

use crate::batch::{LineBatch, chunks};
use crate::client::{Client, ClientError, ErrorKind};
use iggy_connector_common::RetryError;
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

/// Fewer points than this per lane are not worth a request of their own.
const MIN_LANE_POINTS: usize = 1000;

impl Outcome {
    /// One outcome for lanes written side by side.
    fn merge(lanes: Vec<Outcome>) -> Outcome {
        let mut merged = Outcome::default();
        let mut stopped_lanes = 0;
        for lane in lanes {
            merged.written += lane.written;
            merged.requests += lane.requests;
            merged.splits += lane.splits;
            merged.refused.extend(lane.refused);
            let Some(stopped) = lane.stopped else {
                continue;
            };
            stopped_lanes += 1;
            merged.stopped = Some(match merged.stopped.take() {
                None => stopped,
                Some(earlier) => Unwritten {
                    points: earlier.points + stopped.points,
                    first_offset: earlier.first_offset.min(stopped.first_offset),
                    last_offset: earlier.last_offset.max(stopped.last_offset),
                    reason: earlier.reason,
                },
            });
        }
        if stopped_lanes > 1
            && let Some(stopped) = &mut merged.stopped
        {
            stopped.reason = format!("{} (in {stopped_lanes} concurrent lanes)", stopped.reason);
        }
        merged
    }
}

/// Writes the batch in up to `concurrency` lanes at once (see
/// [`LineBatch::split_by_timestamp`] for why that keeps replays exact):
/// openGemini and InfluxDB parse concurrent requests in parallel.
pub async fn write_concurrently(
    client: &Client,
    batch: &LineBatch,
    batch_size: usize,
    concurrency: usize,
    create_database: bool,
) -> Outcome {
    let lanes = concurrency.min(batch.len() / MIN_LANE_POINTS).max(1);
    if lanes == 1 {
        return write_batch(client, batch, batch_size, create_database).await;
    }
    let split = batch.split_by_timestamp(lanes);
    let writes = split
        .iter()
        .map(|lane| write_batch(client, lane, batch_size, create_database));
    Outcome::merge(futures_util::future::join_all(writes).await)
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
    let error = match client.probe().await {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn unwritten(points: usize, first_offset: u64, last_offset: u64, reason: &str) -> Unwritten {
        Unwritten {
            points,
            first_offset,
            last_offset,
            reason: reason.into(),
        }
    }

    #[test]
    fn merged_lanes_add_up_and_keep_every_failure() {
        let lane = |written, refused: Vec<Unwritten>, stopped| Outcome {
            written,
            requests: 2,
            splits: 1,
            refused,
            stopped,
        };
        let merged = Outcome::merge(vec![
            lane(10, vec![unwritten(3, 5, 9, "bad line")], None),
            lane(7, vec![], Some(unwritten(4, 20, 30, "timed out"))),
            lane(0, vec![], Some(unwritten(6, 2, 25, "refused"))),
        ]);
        assert_eq!((merged.written, merged.requests, merged.splits), (17, 6, 3));
        assert_eq!(merged.refused.len(), 1);
        let stopped = merged.stopped.expect("stopped");
        assert_eq!(
            (stopped.points, stopped.first_offset, stopped.last_offset),
            (10, 2, 30)
        );
        assert_eq!(stopped.reason, "timed out (in 2 concurrent lanes)");
        let clean = Outcome::merge(vec![lane(1, vec![], None), lane(2, vec![], None)]);
        assert!(clean.stopped.is_none() && clean.refused.is_empty());
    }
}
