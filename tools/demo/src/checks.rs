//! The end-to-end check: every generated order event arrived exactly once
//! wherever the connectors promise exactly once (Iggy topics fed by the
//! sources, S2 streams, the Pravega round trip) and as exactly one point where the target overwrites
//! (InfluxDB/openGemini, keyed by measurement, tags and time).

use crate::connectors::{FLINK_JOB_NAME, FLINK_TOPIC};
use crate::orders::{self, STREAM};
use crate::servers::Servers;
use iggy_harness::topic_io;
use iggy_harness_store::{StoredMessage, StreamStore};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

const S2_STREAM_HEADER: &str = "s2-stream";
const S2_PLAIN_STREAM: &str = "iggy-shop-orders";
const S2_CHANGELOG_STREAM: &str = "iggy-shop-orders-changelog";
/// Where the shipped Pravega source file puts what it reads.
const PRAVEGA_TOPIC: &str = "orders_from_pravega";
/// Where the shipped Flink source file puts the query's rows.
const FLINK_ROWS_TOPIC: &str = "orders_from_flink";

pub struct Check {
    pub path: String,
    pub promise: &'static str,
    pub expected: u64,
    pub found: String,
    pub ok: bool,
}

pub fn run(store: &StreamStore, servers: &Servers, count: u64) -> Vec<Check> {
    let from_nats = messages(store, "orders_from_nats");
    let from_s2 = messages(store, "orders_from_s2");
    let in_stream = |name: &str| -> Vec<&Received> {
        from_s2
            .iter()
            .filter(|m| m.header(S2_STREAM_HEADER) == Some(name))
            .collect()
    };
    let mut checks = vec![
        exactly_once(
            "orders → NATS sink → JetStream → NATS source",
            "exactly once",
            &from_nats.iter().collect::<Vec<_>>(),
            count,
        ),
        exactly_once(
            "… → S2 sink → S2 stream → S2 source",
            "exactly once",
            &in_stream(S2_PLAIN_STREAM),
            count,
        ),
        changelog(&in_stream(S2_CHANGELOG_STREAM), count),
        points(servers, count),
    ];
    if servers.flink.is_some() {
        checks.push(flink_rows(store, count));
        checks.push(flink_events(store));
    }
    if servers.pravega.is_some() {
        // The sink's transactions commit each Iggy offset once despite
        // redelivered batches; a Nacked source batch is read again with the
        // same events, and the harness stores none of a Nacked batch.
        checks.push(exactly_once(
            "orders → Pravega sink (txn) → Pravega source",
            "exactly once",
            &messages(store, PRAVEGA_TOPIC).iter().collect::<Vec<_>>(),
            count,
        ));
    }
    checks
}

/// A message as the checks see it: its JSON payload and its headers as text.
struct Received {
    payload: Value,
    headers: BTreeMap<String, String>,
}

impl Received {
    fn new(message: &StoredMessage) -> Self {
        let headers = topic_io::headers(message)
            .map(|headers| {
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string_value(), v.to_string_value()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            payload: serde_json::from_slice(&message.payload).unwrap_or(Value::Null),
            headers,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

fn messages(store: &StreamStore, topic: &str) -> Vec<Received> {
    let partitions = store
        .topic_info(STREAM, topic)
        .map_or(0, |info| info.partitions);
    let mut out = Vec::new();
    for partition in 1..=partitions {
        let mut offset = 0;
        // Bounded: each pass either advances the offset or ends the partition.
        while let Ok(batch) = store.read(STREAM, topic, partition, offset, 1000) {
            let Some(last) = batch.last() else { break };
            offset = last.offset + 1;
            out.extend(batch.iter().map(Received::new));
        }
    }
    out
}

/// Counts of each generated id (`event_id` in `0..count`), and how many
/// messages carried none of them.
fn tally(messages: &[&Received], count: u64) -> (HashMap<u64, u64>, u64) {
    tally_ids(messages, count, |payload| payload["event_id"].as_u64())
}

fn tally_ids(
    messages: &[&Received],
    count: u64,
    id_of: impl Fn(&Value) -> Option<u64>,
) -> (HashMap<u64, u64>, u64) {
    let mut seen = HashMap::new();
    let mut unknown = 0;
    for message in messages {
        match id_of(&message.payload) {
            Some(id) if id < count => *seen.entry(id).or_insert(0) += 1,
            _ => unknown += 1,
        }
    }
    (seen, unknown)
}

fn verdict(seen: &HashMap<u64, u64>, unknown: u64, count: u64) -> (String, bool) {
    let missing = count - seen.len() as u64;
    let duplicates: u64 = seen.values().map(|n| n - 1).sum();
    let found = format!(
        "{} distinct, {missing} missing, {duplicates} duplicates, {unknown} unknown",
        seen.len()
    );
    (found, missing == 0 && duplicates == 0 && unknown == 0)
}

fn exactly_once(path: &str, promise: &'static str, messages: &[&Received], count: u64) -> Check {
    let (seen, unknown) = tally(messages, count);
    let (found, ok) = verdict(&seen, unknown, count);
    Check {
        path: path.into(),
        promise,
        expected: count,
        found,
        ok,
    }
}

/// The upsert stream: each event once, with `@action` (`u` for inserts and
/// updates, `d` for deletes) and `@key` (the order id) as headers.
fn changelog(messages: &[&Received], count: u64) -> Check {
    let mut check = exactly_once(
        "… → S2 sink (upsert) → S2 stream → S2 source",
        "exactly once, @key/@action",
        messages,
        count,
    );
    let wrong = messages
        .iter()
        .filter(|m| {
            let Some(id) = m.payload["event_id"].as_u64() else {
                return true;
            };
            let action = if orders::op(id) == "d" { "d" } else { "u" };
            let key: Option<Value> = m
                .header("@key")
                .and_then(|text| serde_json::from_str(text).ok());
            m.header("@action") != Some(action)
                || key != Some(serde_json::json!({ "order_id": id / 3 }))
        })
        .count();
    check.found.push_str(&format!(", {wrong} wrong headers"));
    check.ok &= wrong == 0;
    check
}

/// Points in InfluxDB: one per event (redelivered batches overwrite).
fn points(servers: &Servers, count: u64) -> Check {
    let rows = servers.influxdb.select(
        "shop",
        "SELECT count(event_id) AS points, count(distinct(event_id)) AS events FROM orders",
    );
    let number = |column: &str| {
        rows.first()
            .and_then(|row| row.get(column))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let (points, events) = (number("points"), number("events"));
    Check {
        path: "… → OpenGemini sink → InfluxDB 1.x".into(),
        promise: "one point per event",
        expected: count,
        found: format!("{points} points, {events} distinct events"),
        ok: points == count && events == count,
    }
}

/// The records query's rows: datagen's order ids 1..=count, each once.
fn flink_rows(store: &StreamStore, count: u64) -> Check {
    let rows = messages(store, FLINK_ROWS_TOPIC);
    let rows: Vec<&Received> = rows.iter().collect();
    // Shifted to 0..count so the shared verdict applies.
    let (seen, unknown) = tally_ids(&rows, count, |payload| {
        payload["order_id"].as_u64()?.checked_sub(1)
    });
    let (found, ok) = verdict(&seen, unknown, count);
    Check {
        path: "Flink SQL (datagen) → Flink source (records)".into(),
        promise: "exactly once",
        expected: count,
        found,
        ok,
    }
}

/// The Flink source in monitor mode saw the records query's job finish.
fn flink_events(store: &StreamStore) -> Check {
    let events = messages(store, FLINK_TOPIC);
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e.payload["event"] == "job_status" && e.payload["job_name"] == FLINK_JOB_NAME)
        .filter_map(|e| e.payload["status"].as_str())
        .collect();
    Check {
        path: format!("Flink job {FLINK_JOB_NAME} → Flink source (monitor)"),
        promise: "its FINISHED status seen",
        expected: 1,
        found: format!("{} events, statuses {}", events.len(), statuses.join(" ")),
        ok: statuses.contains(&"FINISHED"),
    }
}

pub fn print(checks: &[Check]) {
    println!(
        "{:<48} {:<28} {:>8}  {:<6} found",
        "path", "promise", "expected", "result"
    );
    for check in checks {
        println!(
            "{:<48} {:<28} {:>8}  {:<6} {}",
            check.path,
            check.promise,
            check.expected,
            if check.ok { "ok" } else { "FAILED" },
            check.found
        );
    }
}
