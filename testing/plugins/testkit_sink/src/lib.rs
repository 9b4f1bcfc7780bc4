//! A sink for testing the harness and the SDK: it accepts everything by
//! default (a no-op for benchmarks) and, when configured, records what it
//! received, fails or panics on chosen calls, or refuses to open.

use async_trait::async_trait;
use iggy_connector_sdk::{
    ConsumedMessage, Error, MessagesMetadata, Payload, Sink, TopicMetadata, sink_connector,
};
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

sink_connector!(TestkitSink);

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestkitSinkConfig {
    /// Appends one JSON line per message written (only for batches that succeed).
    record_path: Option<PathBuf>,
    /// Fails the first N `consume` calls.
    fail_first: u64,
    /// Fails every Nth `consume` call (0 = never).
    fail_every: u64,
    /// Panics in every Nth `consume` call (0 = never).
    panic_every: u64,
    panic_on_open: bool,
    fail_open: bool,
    /// Sleeps this many milliseconds in each `consume`.
    consume_delay_ms: u64,
}

#[derive(Debug)]
pub struct TestkitSink {
    id: u32,
    config: TestkitSinkConfig,
    calls: AtomicU64,
    record: Mutex<Option<BufWriter<File>>>,
}

impl TestkitSink {
    pub fn new(id: u32, config: TestkitSinkConfig) -> Self {
        Self {
            id,
            config,
            calls: AtomicU64::new(0),
            record: Mutex::new(None),
        }
    }

    fn record_batch(
        &self,
        topic: &TopicMetadata,
        meta: &MessagesMetadata,
        messages: &[ConsumedMessage],
    ) -> Result<(), Error> {
        let mut guard = self.record.lock().unwrap_or_else(|p| p.into_inner());
        let Some(writer) = guard.as_mut() else {
            return Ok(());
        };
        let io = |e: std::io::Error| Error::CannotStoreData(e.to_string());
        for message in messages {
            let line = serde_json::json!({
                "stream": topic.stream,
                "topic": topic.topic,
                "partition": meta.partition_id,
                "offset": message.offset,
                "id": message.id.to_string(),
                "headers": message.headers.as_ref().map_or(0, |h| h.len()),
                "payload": payload_text(&message.payload),
            });
            serde_json::to_writer(&mut *writer, &line).map_err(|e| io(e.into()))?;
            writer.write_all(b"\n").map_err(io)?;
        }
        // A batch counts as written only once it is in the file.
        writer.flush().map_err(io)
    }
}

fn payload_text(payload: &Payload) -> String {
    match payload.try_to_bytes() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => format!("<unprintable payload: {error}>"),
    }
}

#[async_trait]
impl Sink for TestkitSink {
    async fn open(&mut self) -> Result<(), Error> {
        if self.config.panic_on_open {
            panic!("testkit sink {} was told to panic in open", self.id);
        }
        if self.config.fail_open {
            return Err(Error::InitError(
                "testkit sink was told to fail open".into(),
            ));
        }
        if let Some(path) = &self.config.record_path {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::InitError(format!("record_path {}: {e}", path.display())))?;
            *self.record.lock().unwrap_or_else(|p| p.into_inner()) = Some(BufWriter::new(file));
        }
        Ok(())
    }

    async fn consume(
        &self,
        topic: &TopicMetadata,
        meta: MessagesMetadata,
        messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let every = |n: u64| n != 0 && call.is_multiple_of(n);
        if every(self.config.panic_every) {
            panic!("testkit sink {} was told to panic on call {call}", self.id);
        }
        if call <= self.config.fail_first || every(self.config.fail_every) {
            return Err(Error::CannotStoreData(format!("told to fail call {call}")));
        }
        if self.config.consume_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.consume_delay_ms)).await;
        }
        self.record_batch(topic, &meta, &messages)?;
        tracing::debug!("testkit sink {} wrote {} messages", self.id, messages.len());
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        tracing::info!(
            "testkit sink {} closing after {} consume calls",
            self.id,
            self.calls.load(Ordering::Relaxed)
        );
        Ok(())
    }
}
