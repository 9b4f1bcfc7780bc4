//! What the source's real-server tests share: a scope of their own on the
//! server, a writer and the controller's scaling through pravega-client
//! itself (so the events, and when the stream scales, are the test's
//! choice), connector files, and reading back what the source stored.

#![allow(dead_code)] // each test binary uses a part

#[path = "../../../pravega_sink/examples/raw_pravega/mod.rs"]
mod raw_pravega;

use base64::Engine;
use iggy_harness_test_support::pravega::fresh_scope;
use iggy_harness_test_support::*;
use pravega_client::client_factory::ClientFactory;
use pravega_client_shared::{ScopedStream, Segment};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const KEY: &str = "from_pravega";
pub const TOPIC: &str = "in";

/// The source's connection keys (short client time limits: a test waits for them).
pub fn connection(uri: &str, scope: &str) -> String {
    format!(
        "controller_uri = \"{uri}\"\nscope = \"{scope}\"\nstream = \"orders\"\nrequest_timeout = \"3s\"\nmax_retries = 2\n"
    )
}

/// Writes the source's connector file for `scope/orders` at `uri`, with
/// `settings` after the connection keys: the `[[streams]]` schema matches
/// the plugin's `schema`, so a raw source's bytes reach the store unchanged.
pub fn source_file(ws: &Workspace, uri: &str, scope: &str, schema: &str, settings: &str) {
    ws.connector_file(
        "source",
        KEY,
        &plugin("iggy_connector_pravega_source"),
        &source_stream(TOPIC, schema),
        &format!(
            "{}schema = \"{schema}\"\npoll_wait = \"200ms\"\n{settings}",
            connection(uri, scope)
        ),
    );
}

/// A stream of `segments` segments in a scope of its own holding
/// `written` binary events, and a workspace with a raw source of it
/// (`settings` added); the scope's name last.
pub fn raw_source(
    uri: &str,
    test: &str,
    segments: i32,
    written: std::ops::Range<u32>,
    settings: &str,
) -> (Pravega, Workspace, String) {
    let scope = fresh_scope(&format!("src-{test}"));
    let pravega = Pravega::create(uri, &scope, segments);
    pravega.write(binary_events(written));
    let ws = Workspace::new();
    source_file(&ws, uri, &scope, "raw", settings);
    (pravega, ws, scope)
}

/// A run that ends once idle for 5 s (a reader group takes a while to
/// start), 120 s at most, then `extra`.
pub fn run(ws: &Workspace, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
    run_until_idle(ws, "5s", extra)
}

/// A run that ends once idle for `idle`, 120 s at most, then `extra`.
pub fn run_until_idle(
    ws: &Workspace,
    idle: &str,
    extra: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let (output, report) = ws.run_ending(&until_idle_within(idle, "120s", extra));
    assert_polled_cleanly(&output);
    (output, report)
}

/// The run succeeded and no poll failed: against a healthy server every
/// reader group, Nacks and restarts included, must start at once.
pub fn assert_polled_cleanly(output: &std::process::Output) {
    let report = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}\n{log}");
    assert!(!log.contains("failed to poll"), "{report}\n{log}");
}

pub fn state_file(ws: &Workspace) -> PathBuf {
    ws.path("state").join(format!("source_{KEY}.state"))
}

/// The positions the source saved (segment number → offset) and the
/// stream they are for; `None` before its first save.
pub fn saved_positions(ws: &Workspace) -> Option<(String, BTreeMap<i64, i64>)> {
    let bytes = std::fs::read(state_file(ws)).ok()?;
    Some(rmp_serde::from_slice(&bytes).expect("the source's state"))
}

/// An event no text decoder accepts (0xff, 0xfe and a NUL in front), so
/// the harness dumps it as Base64, byte for byte; `n` is in it.
pub fn binary_event(n: u32) -> Vec<u8> {
    let mut event = vec![0xff, 0xfe, 0x00];
    event.extend_from_slice(&n.to_be_bytes());
    event.extend((0..(n % 23)).map(|i| (i * 37 + n) as u8));
    event
}

/// The number `binary_event` put in.
pub fn event_number(event: &[u8]) -> u32 {
    u32::from_be_bytes(event[3..7].try_into().expect("a binary event"))
}

/// A stored message's payload bytes (the harness dumps bytes that are
/// not text as `{"base64": ...}`).
pub fn payload_bytes(message: &serde_json::Value) -> Vec<u8> {
    let encoded = message["payload"]["base64"]
        .as_str()
        .unwrap_or_else(|| panic!("not a binary payload: {message}"));
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap()
}

/// The numbers of every stored binary event, sorted (duplicates kept).
pub fn stored_numbers(ws: &Workspace) -> Vec<u32> {
    let mut numbers: Vec<u32> = ws
        .dump(TOPIC)
        .iter()
        .map(|m| event_number(&payload_bytes(m)))
        .collect();
    numbers.sort_unstable();
    numbers
}

/// One stream `scope/orders` on a Pravega server, written and scaled
/// through pravega-client.
pub struct Pravega {
    factory: ClientFactory,
    stream: ScopedStream,
}

impl Pravega {
    /// Creates `scope/orders` with `segments` fixed segments.
    pub fn create(uri: &str, scope: &str, segments: i32) -> Self {
        let factory = raw_pravega::client(uri);
        let stream = raw_pravega::scoped(scope, "orders");
        factory
            .runtime()
            .block_on(raw_pravega::create_stream(&factory, &stream, segments));
        Self { factory, stream }
    }

    /// Writes every `(routing key, event)` and waits until the server has
    /// acknowledged them all.
    pub fn write(&self, events: impl IntoIterator<Item = (String, Vec<u8>)>) {
        let mut writer = self.factory.create_event_writer(self.stream.clone());
        self.factory.runtime().block_on(async {
            let mut acks = Vec::new();
            for (key, event) in events {
                acks.push(writer.write_event_by_routing_key(key, event).await);
            }
            for ack in acks {
                ack.await.expect("writer alive").expect("event written");
            }
        });
    }

    /// The open segments: number → (lowest key, highest key).
    pub fn segments(&self) -> BTreeMap<i64, (f64, f64)> {
        let controller = self.factory.controller_client();
        let segments = self
            .factory
            .runtime()
            .block_on(controller.get_current_segments(&self.stream))
            .expect("current segments");
        segments
            .key_segment_map
            .values()
            .map(|s| (s.scoped_segment.segment.number, (s.min_key.0, s.max_key.0)))
            .collect()
    }

    /// Seals `segment` and puts two halves of its key range in its place;
    /// returns once the scale is done.
    pub fn split(&self, segment: i64) {
        let (low, high) = self.segments()[&segment];
        let middle = (low + high) / 2.0;
        let controller = self.factory.controller_client();
        self.factory
            .runtime()
            .block_on(controller.scale_stream(
                &self.stream,
                &[Segment::from(segment)],
                &[(low, middle), (middle, high)],
            ))
            .expect("scale");
    }
}

/// `binary_event(n)` for each `n`, routed by `n % 8`.
pub fn binary_events(numbers: std::ops::Range<u32>) -> impl Iterator<Item = (String, Vec<u8>)> {
    numbers.map(|n| (format!("key-{}", n % 8), binary_event(n)))
}
