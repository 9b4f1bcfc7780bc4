//! What the source's integration tests share: a real nats-server per test,
//! a client to prepare streams and publish, and the source's connector file.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::{Workspace, plugin, stderr, until_idle_within};
use std::future::Future;
use std::process::Output;

pub const STREAM: &str = "ORDERS";
pub const KEY: &str = "nats_source";

/// A nats-server in the workspace's temp dir and a client to it.
pub struct Nats {
    pub server: NatsServer,
    pub runtime: tokio::runtime::Runtime,
    pub js: jetstream::Context,
}

impl Nats {
    pub fn start(ws: &Workspace) -> Self {
        let server = NatsServer::start(ws.dir.path());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let url = server.url();
        // The JetStream context spawns a task, so it is made inside the runtime.
        // Once refused right after the port answered (CI, nats-server 2.9):
        // a few tries over 5 s, then the server's log.
        let js = runtime.block_on(async {
            let mut last_error = None;
            for _ in 0..10 {
                match async_nats::connect(&url).await {
                    Ok(client) => return jetstream::new(client),
                    Err(error) => last_error = Some(error),
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            panic!(
                "the test client cannot connect to {url}: {last_error:?}; server log:\n{}",
                server.log_tail()
            )
        });
        Self {
            server,
            runtime,
            js,
        }
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A file-backed stream (messages survive a server restart).
    pub fn create_stream(&self, subjects: &[&str]) {
        self.block_on(self.js.create_stream(stream::Config {
            name: STREAM.into(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            storage: stream::StorageType::File,
            ..Default::default()
        }))
        .expect("stream created");
    }

    /// Publishes and waits for every acknowledgement; returns the stream sequences.
    pub fn publish(&self, messages: Vec<(String, Option<HeaderMap>, Bytes)>) -> Vec<u64> {
        self.block_on(async {
            let mut acks = Vec::with_capacity(messages.len());
            let mut sequences = Vec::with_capacity(messages.len());
            for (subject, headers, payload) in messages {
                let ack = match headers {
                    Some(headers) => {
                        self.js
                            .publish_with_headers(subject, headers, payload)
                            .await
                    }
                    None => self.js.publish(subject, payload).await,
                }
                .expect("publish sent");
                acks.push(ack);
                // A window of acknowledgements in flight keeps publishing fast.
                if acks.len() == 500 {
                    for ack in acks.drain(..) {
                        sequences.push(ack.await.expect("publish acknowledged").sequence);
                    }
                }
            }
            for ack in acks {
                sequences.push(ack.await.expect("publish acknowledged").sequence);
            }
            sequences
        })
    }

    /// `count` JSON messages `{"subject": s, "n": i}` spread round-robin over `subjects`.
    pub fn publish_numbered(&self, subjects: &[&str], first: u64, count: u64) -> Vec<u64> {
        self.publish(
            (first..first + count)
                .map(|n| {
                    let subject = subjects[(n % subjects.len() as u64) as usize];
                    (subject.to_string(), None, numbered(subject, n))
                })
                .collect(),
        )
    }

    pub fn consumer_names(&self) -> Vec<String> {
        self.block_on(async {
            let stream = self.js.get_stream(STREAM).await.expect("stream");
            let mut names = Vec::new();
            let mut listing = stream.consumer_names();
            use futures_util::StreamExt;
            while let Some(name) = listing.next().await {
                names.push(name.expect("consumer name"));
            }
            names.sort();
            names
        })
    }

    pub fn consumer_info(&self, name: &str) -> consumer::Info {
        self.block_on(async {
            let stream = self.js.get_stream(STREAM).await.expect("stream");
            stream.consumer_info(name).await.expect("consumer info")
        })
    }

    pub fn delete_consumer(&self, name: &str) {
        self.block_on(async {
            let stream = self.js.get_stream(STREAM).await.expect("stream");
            stream
                .delete_consumer(name)
                .await
                .expect("consumer deleted");
        });
    }

    pub fn create_consumer(&self, config: consumer::pull::Config) {
        self.block_on(async {
            let stream = self.js.get_stream(STREAM).await.expect("stream");
            stream
                .create_consumer(config)
                .await
                .expect("consumer created");
        });
    }
}

pub fn numbered(subject: &str, n: u64) -> Bytes {
    Bytes::from(serde_json::json!({ "subject": subject, "n": n }).to_string())
}

/// `[plugin_config]` lines: the server, the stream, JSON payloads, short waits, then `extra`.
pub fn plugin_config(nats: &Nats, extra: &str) -> String {
    format!(
        "servers = [\"{}\"]\nstream = \"{STREAM}\"\nschema = \"json\"\nmax_wait = \"100ms\"\nrequest_timeout = \"2s\"\n{extra}",
        nats.server.url()
    )
}

pub fn write_source(ws: &Workspace, config: &str) {
    ws.source(
        KEY,
        &plugin("iggy_connector_nats_jetstream_source"),
        "orders",
        config,
    );
}

/// One explicit consumer per `(name, filter)`.
pub fn consumers(list: &[(&str, &str)]) -> String {
    list.iter()
        .map(|(name, filter)| {
            format!(
                "[[plugin_config.consumers]]\ndurable_name = \"{name}\"\nfilter_subject = \"{filter}\"\n"
            )
        })
        .collect()
}

/// The stored messages' `(subject, n)` in stored order.
pub fn stored(ws: &Workspace) -> Vec<(String, u64)> {
    ws.dump("orders")
        .iter()
        .map(|m| {
            (
                m["payload"]["subject"]
                    .as_str()
                    .expect("subject")
                    .to_string(),
                m["payload"]["n"].as_u64().expect("n"),
            )
        })
        .collect()
}

/// The numbers stored, sorted; with `assert_once` checks no number repeats.
pub fn sorted_numbers(stored: &[(String, u64)]) -> Vec<u64> {
    let mut numbers: Vec<u64> = stored.iter().map(|(_, n)| *n).collect();
    numbers.sort_unstable();
    numbers
}

/// Every subject's messages are stored in publishing order.
pub fn assert_ordered_per_subject(stored: &[(String, u64)]) {
    let mut last: std::collections::BTreeMap<&str, u64> = Default::default();
    for (subject, n) in stored {
        if let Some(previous) = last.insert(subject, *n) {
            assert!(*n > previous, "{subject}: {n} stored after {previous}");
        }
    }
}

/// Runs the harness with its defaults plus `extra`; panics with the log unless it succeeded.
pub fn run_ok(ws: &Workspace, extra: &[&str]) -> (String, serde_json::Value) {
    succeeded(ws.run(extra))
}

/// Like `Workspace::run`, but waiting `idle` for the source to go quiet (a
/// restarted server takes a few seconds to come back).
pub fn run_patiently(ws: &Workspace, idle: &str, extra: &[&str]) -> (String, serde_json::Value) {
    succeeded(ws.run_ending(&until_idle_within(idle, "120s", extra)))
}

/// A run's log and report, once it is known to have succeeded.
fn succeeded((output, report): (Output, serde_json::Value)) -> (String, serde_json::Value) {
    let stderr = stderr(&output);
    assert!(output.status.success(), "run failed: {report}\n{stderr}");
    (stderr, report)
}

impl Nats {
    /// Fetches `count` messages from a durable consumer and leaves them
    /// unacknowledged, as a reader that crashed with a batch in hand would.
    pub fn fetch_without_ack(&self, consumer: &str, count: usize) -> usize {
        self.block_on(async {
            use futures_util::StreamExt;
            let stream = self.js.get_stream(STREAM).await.expect("stream");
            let consumer: consumer::PullConsumer =
                stream.get_consumer(consumer).await.expect("consumer");
            let mut batch = consumer
                .fetch()
                .max_messages(count)
                .messages()
                .await
                .expect("fetch");
            let mut fetched = 0;
            while let Some(message) = batch.next().await {
                message.expect("message");
                fetched += 1;
            }
            fetched
        })
    }
}
