//! Drives a source as the runtime does. The plugin calls back from its own
//! threads with postcard `ProducedMessages`. The bytes are only valid during
//! the call, so the callback lends them to a worker thread and waits until it
//! has decoded and stored the batch straight from them (nothing copies the
//! batch as a whole). The worker then saves the state file and, under v2,
//! answers Ack or Nack. A library without the v2 symbols is driven through
//! v1, where no answer exists.

use crate::connector_file::ConnectorFile;
use crate::faults::{Faults, hits};
use crate::library::{SourceApi, SourceProtocol};
use crate::produced_batch;
use crate::state_file::StateFile;
use crate::stats::{ConnectorStats, InFlight};
use iggy_connector_sdk::{ConnectorState, Schema};
use iggy_harness_store::{NewMessage, StreamStore};
use std::collections::HashMap;
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ACK: u8 = 0;
const NACK: u8 = 1;

pub struct Delivered {
    /// 0 under v1, where batches have no id.
    pub batch_id: u64,
    bytes: LentBytes,
}

/// The plugin's batch, valid while its callback waits; dropping this lets the callback return.
struct LentBytes {
    pointer: *const u8,
    len: usize,
    _returned: SyncSender<()>,
}

// SAFETY: the bytes are only read, and the callback that owns them does not
// return before this is dropped (it waits for `_returned` to disconnect).
unsafe impl Send for LentBytes {}

impl LentBytes {
    /// Runs `read` on the bytes, then gives them back to the waiting callback.
    fn lend<R>(self, read: impl FnOnce(&[u8]) -> R) -> R {
        let bytes = if self.pointer.is_null() {
            &[][..]
        } else {
            // SAFETY: the plugin passed a buffer valid for its call, which lasts
            // until `self` is dropped below; `read` cannot keep the slice.
            unsafe { std::slice::from_raw_parts(self.pointer, self.len) }
        };
        let result = read(bytes);
        drop(self);
        result
    }
}

static SENDERS: Mutex<Option<HashMap<u32, SyncSender<Delivered>>>> = Mutex::new(None);

/// Routes a plugin's callbacks to `sender`; the v2 protocol keeps one batch in flight,
/// so a small queue is enough.
pub fn register(plugin_id: u32) -> Receiver<Delivered> {
    let (sender, receiver) = sync_channel(4);
    SENDERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(plugin_id, sender);
    receiver
}

pub fn unregister(plugin_id: u32) {
    if let Some(senders) = SENDERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        senders.remove(&plugin_id);
    }
}

fn forward(plugin_id: u32, batch_id: u64, pointer: *const u8, len: usize) -> i32 {
    let sender = SENDERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|senders| senders.get(&plugin_id).cloned());
    let (returned, wait) = sync_channel(0);
    let delivered = Delivered {
        batch_id,
        bytes: LentBytes {
            pointer,
            len,
            _returned: returned,
        },
    };
    match sender.map(|s| s.send(delivered)) {
        Some(Ok(())) => {
            // Disconnects once the worker is done with the bytes (or is gone).
            let _ = wait.recv();
            0
        }
        _ => 1,
    }
}

pub extern "C" fn send_v2(plugin_id: u32, batch_id: u64, pointer: *const u8, len: usize) -> i32 {
    catch_unwind(|| forward(plugin_id, batch_id, pointer, len)).unwrap_or(1)
}

pub extern "C" fn send_v1(plugin_id: u32, pointer: *const u8, len: usize) {
    let _ = catch_unwind(|| forward(plugin_id, 0, pointer, len));
}

/// Starts the plugin's loop (`handle_v2`, else `handle`).
pub fn handle(api: &SourceApi, id: u32) -> i32 {
    // SAFETY: the callbacks are 'static functions of this binary.
    unsafe {
        match api.protocol {
            SourceProtocol::V2 { handle, .. } => handle(id, send_v2),
            SourceProtocol::V1 { handle } => handle(id, send_v1),
        }
    }
}

/// Payloads are checked under the batch's schema, as the runtime decodes them
/// before sending; a message that does not decode is dropped and counted.
fn payload_is_valid(schema: Schema, payload: &[u8]) -> bool {
    match schema {
        Schema::Json => serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok(),
        Schema::Text => std::str::from_utf8(payload).is_ok(),
        _ => true,
    }
}

/// Where the harness spent its time on one batch (for the benchmark).
#[derive(Debug, Default, Clone, Copy)]
pub struct StageTimes {
    pub decode: Duration,
    pub store: Duration,
    pub state: Duration,
    pub answer: Duration,
}

pub struct SourceWorker {
    pub id: u32,
    pub api: SourceApi,
    pub store: StreamStore,
    pub stream: String,
    pub topic: String,
    pub state: StateFile,
    pub faults: Faults,
    pub validate_payloads: bool,
    pub stats: Arc<ConnectorStats>,
}

impl SourceWorker {
    pub fn new(
        file: &ConnectorFile,
        api: &SourceApi,
        id: u32,
        store: &StreamStore,
        state: StateFile,
        faults: &Faults,
        stats: &Arc<ConnectorStats>,
    ) -> Result<Self, String> {
        let settings = &file.streams[0];
        if file.streams.len() > 1 {
            eprintln!(
                "connector {}: only the first [[streams]] entry is used for a source",
                file.key
            );
        }
        Ok(Self {
            id,
            api: api.clone(),
            store: store.clone(),
            stream: settings.stream.clone(),
            topic: settings
                .topic
                .clone()
                .ok_or("a source stream needs `topic`")?,
            state,
            faults: faults.clone(),
            validate_payloads: true,
            stats: Arc::clone(stats),
        })
    }

    /// Runs until `stop` is set and nothing is queued.
    pub fn spawn(
        self,
        receiver: Receiver<Delivered>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("source-{}", self.id))
            .spawn(move || {
                let mut batches = 0u64;
                loop {
                    match receiver.recv_timeout(Duration::from_millis(20)) {
                        Ok(delivered) => {
                            let _in_flight = InFlight::start(&self.stats.in_flight);
                            batches += 1;
                            self.take(delivered, batches);
                        }
                        Err(RecvTimeoutError::Timeout) if !stop.load(Ordering::Relaxed) => {}
                        Err(_) => break,
                    }
                }
            })
    }

    fn answer(&self, batch_id: u64, result: u8, times: &mut StageTimes) -> StageTimes {
        let started = Instant::now();
        if result == NACK {
            ConnectorStats::add(&self.stats.nacks, 1);
        }
        let SourceProtocol::V2 {
            result: batch_result,
            ..
        } = self.api.protocol
        else {
            return *times;
        };
        if !self.faults.delay_result.is_zero() {
            std::thread::sleep(self.faults.delay_result);
        }
        // SAFETY: a plain call into the plugin with values.
        let code = unsafe { batch_result(self.id, batch_id, result) };
        if code != 0 {
            ConnectorStats::add(&self.stats.errors, 1);
            eprintln!(
                "source {}: iggy_source_batch_result for batch {batch_id} returned {code}",
                self.id
            );
        }
        times.answer = started.elapsed();
        *times
    }

    /// Stores one delivered batch and answers it; `number` counts batches for faults.
    pub fn take(&self, delivered: Delivered, number: u64) -> StageTimes {
        let mut times = StageTimes::default();
        let batch_id = delivered.batch_id;
        let stored = delivered
            .bytes
            .lend(|bytes| self.decode_and_store(bytes, batch_id, number, &mut times));
        let Stored::Yes(state) = stored else {
            return self.answer(batch_id, NACK, &mut times);
        };
        let started = Instant::now();
        if let Some(state) = state {
            let saved = if hits(self.faults.fail_state_save_every, number) {
                Err("injected state save failure".to_string())
            } else {
                self.state.save(&state.0)
            };
            if let Err(error) = saved {
                ConnectorStats::add(&self.stats.errors, 1);
                eprintln!(
                    "source {}: batch {batch_id} stored but its state was not saved: {error}",
                    self.id
                );
                return self.answer(batch_id, NACK, &mut times);
            }
        }
        times.state = started.elapsed();
        self.answer(batch_id, ACK, &mut times)
    }

    /// Decodes the batch and stores its messages, straight from the plugin's bytes.
    fn decode_and_store(
        &self,
        bytes: &[u8],
        batch_id: u64,
        number: u64,
        times: &mut StageTimes,
    ) -> Stored {
        let started = Instant::now();
        let batch = match produced_batch::decode(bytes) {
            Ok(batch) => batch,
            Err(error) => {
                self.stats
                    .fail(format!("batch {batch_id} does not decode: {error}"));
                return Stored::No;
            }
        };
        times.decode = started.elapsed();
        ConnectorStats::add(&self.stats.messages_in, batch.messages.len() as u64);
        ConnectorStats::add(&self.stats.batches, 1);
        if hits(self.faults.nack_every, number) {
            return Stored::No;
        }
        let schema = batch.schema;
        let mut invalid = 0u64;
        let mut messages = Vec::with_capacity(batch.messages.len());
        for message in &batch.messages {
            let payload = batch.payload(message);
            if self.validate_payloads && !payload_is_valid(schema, payload) {
                invalid += 1;
                continue;
            }
            messages.push(NewMessage {
                id: message.id.unwrap_or(0),
                timestamp: message.timestamp,
                origin_timestamp: message.origin_timestamp.unwrap_or(0),
                headers: batch.headers(message).into(),
                payload: payload.into(),
            });
        }
        if invalid > 0 {
            ConnectorStats::add(&self.stats.errors, invalid);
            eprintln!(
                "source {}: {invalid} message(s) of batch {batch_id} do not decode as {schema} and were dropped",
                self.id
            );
        }
        let stored = messages.len() as u64;
        if stored > 0
            && let Err(error) = self
                .store
                .append_balanced(&self.stream, &self.topic, messages)
        {
            ConnectorStats::add(&self.stats.errors, 1);
            eprintln!("source {}: cannot store batch {batch_id}: {error}", self.id);
            return Stored::No;
        }
        ConnectorStats::add(&self.stats.messages_out, stored);
        times.store = started.elapsed() - times.decode;
        Stored::Yes(batch.state)
    }
}

/// What became of a batch's messages: stored (with the state to save), or to be Nacked.
enum Stored {
    Yes(Option<ConnectorState>),
    No,
}
