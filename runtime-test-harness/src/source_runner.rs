//! Drives a source as the runtime does. The plugin calls back from its own
//! threads with postcard `ProducedMessages`; the callback decodes the batch
//! (a batch that does not decode is refused there), queues its own copy and
//! returns at once. A worker then converts, stores and saves the state of
//! each batch in turn and, under v2, answers Ack or Nack. So the plugin's
//! SDK waits for the answer, not for the callback, and a store slower than
//! its batch-result timeout plays out as it does under the runtime.
//! A library without the v2 symbols is driven through v1, where no answer
//! exists.

use crate::connector_file::ConnectorFile;
use crate::faults::{Faults, hits};
use crate::library::{SourceApi, SourceProtocol};
use crate::produced_batch::{self, ProducedBatch};
use crate::source_messages;
use crate::state_file::StateFile;
use crate::stats::{ConnectorStats, InFlight, Status};
use iggy_connector_sdk::Schema;
use iggy_harness_store::StreamStore;
use std::collections::HashMap;
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ACK: u8 = 0;
const NACK: u8 = 1;

/// A batch the callback took, with its own copy of the plugin's bytes.
pub struct Delivered {
    /// 0 under v1, where batches have no id.
    pub batch_id: u64,
    batch: ProducedBatch<'static>,
}

struct Route {
    sender: Sender<Delivered>,
    stats: Arc<ConnectorStats>,
}

static ROUTES: Mutex<Option<HashMap<u32, Route>>> = Mutex::new(None);

/// Routes a plugin's callbacks to the returned queue, which is unbounded
/// like the runtime's (runtime/src/source.rs, `spawn_source_handler`): the
/// callback never waits for the worker.
pub fn register(plugin_id: u32, stats: &Arc<ConnectorStats>) -> Receiver<Delivered> {
    let (sender, receiver) = channel();
    ROUTES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(
            plugin_id,
            Route {
                sender,
                stats: Arc::clone(stats),
            },
        );
    receiver
}

/// Stops routing a plugin's callbacks: later ones are refused, and the worker
/// ends once it has taken what is queued (runtime/src/source.rs, `cleanup_sender`).
pub fn unregister(plugin_id: u32) {
    if let Some(routes) = ROUTES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        routes.remove(&plugin_id);
    }
}

/// The runtime's `handle_produced_messages` (runtime/src/source.rs): -1 when
/// the plugin is not routed or the batch does not decode, else the batch is
/// queued and 0 returned before anything is stored.
fn forward(plugin_id: u32, batch_id: u64, pointer: *const u8, len: usize) -> i32 {
    let route = ROUTES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|routes| routes.get(&plugin_id))
        .map(|route| (route.sender.clone(), Arc::clone(&route.stats)));
    let Some((sender, stats)) = route else {
        return -1;
    };
    let bytes = if pointer.is_null() {
        &[][..]
    } else {
        // SAFETY: the plugin passed a buffer valid for this call; nothing
        // borrowed from it outlives the call (the batch is copied below).
        unsafe { std::slice::from_raw_parts(pointer, len) }
    };
    let batch = match produced_batch::decode(bytes) {
        Ok(batch) => batch.into_owned(),
        Err(error) => {
            ConnectorStats::add(&stats.errors, 1);
            eprintln!("source {plugin_id}: batch {batch_id} does not decode: {error}");
            return -1;
        }
    };
    match sender.send(Delivered { batch_id, batch }) {
        Ok(()) => 0,
        Err(_) => {
            ConnectorStats::add(&stats.errors, 1);
            -1
        }
    }
}

pub extern "C" fn send_v2(plugin_id: u32, batch_id: u64, pointer: *const u8, len: usize) -> i32 {
    catch_unwind(|| forward(plugin_id, batch_id, pointer, len)).unwrap_or(-1)
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

/// Where the harness spent its time on one batch (for the benchmark).
#[derive(Debug, Default, Clone, Copy)]
pub struct StageTimes {
    /// Converting the messages as the runtime does (decode, encode, checks).
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
    /// The `[[streams]]` schema, whose encoder every payload goes through.
    pub schema: Schema,
    pub state: StateFile,
    pub faults: Faults,
    pub validate_payloads: bool,
    pub stats: Arc<ConnectorStats>,
    /// Set once the source is being closed: a batch result the plugin then
    /// refuses is expected, not an error.
    pub stopping: Arc<AtomicBool>,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
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
        let settings = file.producer_stream()?;
        Ok(Self {
            id,
            api: api.clone(),
            store: store.clone(),
            stream: settings.stream.clone(),
            topic: settings
                .topic
                .clone()
                .ok_or("a source stream needs `topic`")?,
            schema: settings.schema,
            state,
            faults: faults.clone(),
            validate_payloads: true,
            stats: Arc::clone(stats),
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Takes batches until the plugin is unregistered and the queue is empty.
    pub fn spawn(self, receiver: Receiver<Delivered>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("source-{}", self.id))
            .spawn(move || {
                // runtime/src/source.rs, source_forwarding_loop: Running once
                // the loop starts.
                self.stats.set_status(Status::Running);
                for (number, delivered) in (1u64..).zip(receiver.iter()) {
                    let _in_flight = InFlight::start(&self.stats.in_flight);
                    self.take(delivered, number);
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
        // runtime/src/source.rs, source_forwarding_loop: a refused result is
        // an error unless the connector is stopping.
        if code != 0 && !self.stopping.load(Ordering::Relaxed) {
            let verdict = if result == ACK { "Ack" } else { "Nack" };
            self.stats.fail(format!(
                "Failed to deliver {verdict} for batch {batch_id}: iggy_source_batch_result returned {code}"
            ));
            eprintln!(
                "source {}: iggy_source_batch_result for batch {batch_id} returned {code}",
                self.id
            );
        }
        times.answer = started.elapsed();
        *times
    }

    /// Stores one batch and answers it; `number` counts batches for faults
    /// (and names them under v1, which has no batch ids).
    pub fn take(&self, delivered: Delivered, number: u64) -> StageTimes {
        let mut times = StageTimes::default();
        let Delivered { batch_id, batch } = delivered;
        let name = if batch_id == 0 { number } else { batch_id };
        ConnectorStats::add(&self.stats.messages_in, batch.messages.len() as u64);
        ConnectorStats::add(&self.stats.batches, 1);
        if hits(self.faults.nack_every, number) {
            return self.answer(batch_id, NACK, &mut times);
        }
        if let Some((nth, delay)) = self.faults.delay_store
            && nth == number
        {
            std::thread::sleep(delay);
        }
        let started = Instant::now();
        let prepared =
            source_messages::prepare(&batch, self.schema, self.validate_payloads, now_micros());
        times.decode = started.elapsed();
        if prepared.errors > 0 {
            ConnectorStats::add(&self.stats.errors, prepared.errors);
            let first = prepared.first_error.unwrap_or_default();
            match self.api.protocol {
                // runtime/src/source.rs, source_forwarding_loop (0.5.x): one
                // message that fails refuses the whole batch, Nacks it and
                // puts the connector in error.
                SourceProtocol::V2 { .. } => {
                    ConnectorStats::add(&self.stats.refused, 1);
                    let message = format!(
                        "Rejected source batch {name} after {} decode or processing errors (first: {first})",
                        prepared.errors
                    );
                    eprintln!("source {}: {message}", self.id);
                    self.stats.set_error(message);
                    return self.answer(batch_id, NACK, &mut times);
                }
                // Runtime 0.4.x (tag connectors-0.4.0, runtime/src/source.rs,
                // process_messages): each bad message is dropped and logged,
                // the rest are sent.
                SourceProtocol::V1 { .. } => eprintln!(
                    "source {}: {} message(s) of batch {name} dropped, as runtime 0.4.x drops them (first: {first})",
                    self.id, prepared.errors
                ),
            }
        }
        let stored = prepared.messages.len() as u64;
        let store_started = Instant::now();
        if stored > 0
            && let Err(error) =
                self.store
                    .append_balanced(&self.stream, &self.topic, prepared.messages)
        {
            self.stats.fail(format!(
                "Failed to store {stored} messages of batch {name} in {}/{}: {error}",
                self.stream, self.topic
            ));
            return self.answer(batch_id, NACK, &mut times);
        }
        ConnectorStats::add(&self.stats.messages_out, stored);
        times.store = store_started.elapsed();
        let started = Instant::now();
        if let Some(state) = &batch.state {
            let saved = if hits(self.faults.fail_state_save_every, number) {
                // Injected: counted, but not the connector's status, so a run
                // with faults can still pass.
                ConnectorStats::add(&self.stats.errors, 1);
                Err("injected state save failure".to_string())
            } else {
                self.state.save(&state.0).inspect_err(|error| {
                    self.stats.fail(format!(
                        "Failed to save the state of source {}: {error}",
                        self.stats.key
                    ));
                })
            };
            if let Err(error) = saved {
                eprintln!(
                    "source {}: batch {name} stored but its state was not saved: {error}",
                    self.id
                );
                return self.answer(batch_id, NACK, &mut times);
            }
        }
        times.state = started.elapsed();
        self.answer(batch_id, ACK, &mut times)
    }
}
