//! What the sink's integration tests share: a client for the real
//! nats-server each test starts, reading a stream back, the sink's library.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::{Workspace, plugin};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

pub fn sink_library() -> PathBuf {
    plugin("iggy_connector_nats_jetstream_sink")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub async fn context(url: &str) -> jetstream::Context {
    jetstream::new(
        async_nats::connect(url)
            .await
            .expect("test client connects"),
    )
}

pub async fn create_stream(js: &jetstream::Context, name: &str, subjects: &[&str]) {
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("stream created");
}

pub struct Received {
    pub subject: String,
    pub headers: Option<async_nats::HeaderMap>,
    pub payload: serde_json::Value,
}

/// Every message of the stream, in stream order (through an ephemeral consumer).
pub async fn read_stream(js: &jetstream::Context, name: &str) -> Vec<Received> {
    let mut stream = js.get_stream(name).await.unwrap();
    let total = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut received = Vec::with_capacity(total);
    for _ in 0..1000 {
        if received.len() >= total {
            break;
        }
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        while let Some(Ok(message)) = batch.next().await {
            received.push(Received {
                subject: message.subject.to_string(),
                headers: message.headers.clone(),
                payload: serde_json::from_slice(&message.payload)
                    .unwrap_or(serde_json::Value::Null),
            });
        }
    }
    assert_eq!(received.len(), total, "read the whole stream");
    received
}

pub fn header(message: &Received, name: &str) -> Option<String> {
    let name: async_nats::HeaderName = name.parse().ok()?;
    message
        .headers
        .as_ref()?
        .get(name)
        .map(|v| v.as_str().to_string())
}

/// A nats-server in the workspace with stream `ORDERS` (subjects
/// `orders.>`), and `messages` generated into topic `created`.
pub fn server_with_orders(ws: &Workspace, messages: u64) -> NatsServer {
    let server = NatsServer::start(ws.dir.path());
    let rt = runtime();
    let js = rt.block_on(context(&server.url()));
    rt.block_on(create_stream(&js, "ORDERS", &["orders.>"]));
    ws.produce("created", messages);
    server
}

/// Waits (10 s at most) until stream `ORDERS` holds `count` messages.
pub fn wait_for_stored(server: &NatsServer, count: u64) {
    runtime().block_on(async {
        let js = context(&server.url()).await;
        for _ in 0..400 {
            if let Ok(mut stream) = js.get_stream("ORDERS").await
                && stream
                    .info()
                    .await
                    .is_ok_and(|info| info.state.messages >= count)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the sink did not store {count} messages within 10 s");
    });
}

/// Each of `count` messages is in `received` exactly once, told apart by
/// the sink's `Nats-Msg-Id`.
pub fn assert_each_once(received: &[Received], count: usize) {
    let ids: BTreeSet<String> = received
        .iter()
        .filter_map(|m| header(m, "Nats-Msg-Id"))
        .collect();
    assert_eq!(ids.len(), count, "every message arrived");
    assert_eq!(received.len(), count, "and none twice");
}

pub fn connection(server: &NatsServer) -> String {
    format!(
        "servers = [\"{}\"]\nrequest_timeout = \"2s\"\n",
        server.url()
    )
}
