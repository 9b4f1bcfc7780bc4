//! The source side of the ABI: the poll loop behind both runtime generations
//! and the `source_connector!` macro that exports the symbols.
//!
//! v2 (0.5+): one batch in flight; the runtime answers each with Ack or Nack
//! through `iggy_source_batch_result`, and only then is `on_batch_result`
//! called and the next `poll` made. v1 (0.4.x) has no answer, so the
//! callback's return is taken as the batch's end and Ack is applied here.

use crate::boundary::{CatchPanic, borrowed, contain};
use crate::config;
use crate::connector::Source;
use crate::log::{self, LogCallback};
use crate::runtime::get_runtime;
use crate::sink::{STOP_WAIT, close_within};
use crate::state::ConnectorState;
use crate::wire::ProducedMessages;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// v2 send callback: non-zero means the runtime did not take the batch.
pub type SendCallback = extern "C" fn(
    plugin_id: u32,
    batch_id: u64,
    messages_ptr: *const u8,
    messages_len: usize,
) -> i32;
/// v1 send callback of 0.4.x runtimes.
pub type SendCallbackV1 =
    extern "C" fn(plugin_id: u32, messages_ptr: *const u8, messages_len: usize);
pub type HandleCallback = extern "C" fn(plugin_id: u32, callback: SendCallback) -> i32;
pub type BatchResultCallback = extern "C" fn(plugin_id: u32, batch_id: u64, result: u8) -> i32;

/// The runtime's verdict on the batch in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SourceBatchResult {
    /// The batch is stored in Iggy and its state persisted: commit the cursor.
    Ack = 0,
    /// The batch was not stored: discard the staged cursor so it is polled again.
    Nack = 1,
}

impl TryFrom<u8> for SourceBatchResult {
    type Error = ();
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(Self::Ack),
            1 => Ok(Self::Nack),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct LoopPolicy {
    /// How long the runtime may take to answer a batch before it counts as Nack.
    result_timeout: Duration,
    /// First pause after a Nack or a failed poll, doubled per repeat up to `max_backoff`.
    backoff: Duration,
    max_backoff: Duration,
    /// Pause after a poll that produced nothing, so an idle source cannot spin.
    idle_pause: Duration,
    /// Nacks in a row after which the loop stops and the connector is failed.
    /// A Nacked batch is polled again from the same cursor, so these are
    /// redeliveries of the same data; a 0.5.x runtime Nacks a whole batch
    /// for one message it cannot take (runtime/src/source.rs,
    /// source_forwarding_loop), and would do so forever.
    max_consecutive_nacks: u32,
}

const POLICY: LoopPolicy = LoopPolicy {
    result_timeout: Duration::from_secs(30),
    backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(5),
    idle_pause: Duration::from_millis(5),
    // With the backoff above, about 21 s of redeliveries: long enough to
    // ride out a short Iggy hiccup (also a Nack), short enough not to loop
    // on a batch that can never be taken.
    max_consecutive_nacks: 10,
};

impl LoopPolicy {
    fn backoff_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

#[derive(Clone, Copy)]
enum Delivery {
    V1(SendCallbackV1),
    V2(SendCallback),
}

struct PendingBatch {
    id: u64,
    result: oneshot::Sender<SourceBatchResult>,
}

type Pending = Arc<Mutex<Option<PendingBatch>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the pending batch if it is still `batch_id`.
fn take_pending(pending: &Pending, batch_id: u64) -> Option<PendingBatch> {
    let mut slot = lock(pending);
    match slot.as_ref() {
        Some(batch) if batch.id == batch_id => slot.take(),
        _ => None,
    }
}

enum Lifecycle<T> {
    Opening,
    Open(Arc<T>),
    Running {
        source: Arc<T>,
        shutdown: watch::Sender<bool>,
        task: JoinHandle<()>,
    },
}

struct SourceInstance<T> {
    lifecycle: Mutex<Lifecycle<T>>,
    pending: Pending,
}

/// The open source instances of this library, keyed by the runtime's plugin id.
pub struct SourceRegistry<T> {
    instances: RwLock<BTreeMap<u32, Arc<SourceInstance<T>>>>,
}

impl<T> Default for SourceRegistry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SourceRegistry<T> {
    pub const fn new() -> Self {
        Self {
            instances: RwLock::new(BTreeMap::new()),
        }
    }

    fn get(&self, id: u32) -> Option<Arc<SourceInstance<T>>> {
        let instances = self
            .instances
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        instances.get(&id).cloned()
    }

    fn remove(&self, id: u32) -> Option<Arc<SourceInstance<T>>> {
        let mut instances = self
            .instances
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        instances.remove(&id)
    }
}

impl<T: Source + 'static> SourceRegistry<T> {
    /// # Safety
    /// Non-null pointers must point to their length of readable bytes for the call.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn open<C, F>(
        &self,
        id: u32,
        config_ptr: *const u8,
        config_len: usize,
        state_ptr: *const u8,
        state_len: usize,
        log_callback: LogCallback,
        factory: F,
    ) -> i32
    where
        C: DeserializeOwned,
        F: FnOnce(u32, C, Option<ConnectorState>) -> T,
    {
        log::install(log_callback);
        // SAFETY: forwarded from the caller's contract.
        let (config_bytes, state_bytes) = unsafe {
            (
                borrowed(config_ptr, config_len),
                borrowed(state_ptr, state_len),
            )
        };
        let state = (!state_ptr.is_null()).then(|| ConnectorState(state_bytes.to_vec()));
        contain("iggy_source_open", id, || {
            let instance = Arc::new(SourceInstance {
                lifecycle: Mutex::new(Lifecycle::Opening),
                pending: Pending::default(),
            });
            {
                let mut instances = self
                    .instances
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if instances.contains_key(&id) {
                    error!(
                        "source connector {id} is already open; close it before opening it again"
                    );
                    return -1;
                }
                instances.insert(id, Arc::clone(&instance));
            }
            let code = open_instance(id, config_bytes, state, factory, &instance);
            if code != 0 {
                self.remove(id);
            }
            code
        })
    }

    /// Starts the poll loop for a 0.4.x runtime.
    pub fn handle_v1(&self, id: u32, callback: SendCallbackV1) -> i32 {
        self.start(id, "iggy_source_handle", Delivery::V1(callback))
    }

    /// Starts the poll loop for a 0.5+ runtime.
    pub fn handle_v2(&self, id: u32, callback: SendCallback) -> i32 {
        self.start(id, "iggy_source_handle_v2", Delivery::V2(callback))
    }

    fn start(&self, id: u32, entry: &str, delivery: Delivery) -> i32 {
        contain(entry, id, || {
            let Some(instance) = self.get(id) else {
                error!("source connector {id} is not open; {entry} refused");
                return -1;
            };
            let mut lifecycle = lock(&instance.lifecycle);
            let source = match &*lifecycle {
                Lifecycle::Open(source) => Arc::clone(source),
                Lifecycle::Opening => {
                    error!("source connector {id} is still opening; {entry} refused");
                    return -1;
                }
                Lifecycle::Running { .. } => {
                    error!("source connector {id} is already running; {entry} refused");
                    return -1;
                }
            };
            let (shutdown, shutdown_rx) = watch::channel(false);
            let task = get_runtime().spawn(poll_loop(
                id,
                Arc::clone(&source),
                delivery,
                Arc::clone(&instance.pending),
                shutdown_rx,
                POLICY,
            ));
            *lifecycle = Lifecycle::Running {
                source,
                shutdown,
                task,
            };
            0
        })
    }

    pub fn batch_result(&self, id: u32, batch_id: u64, result: u8) -> i32 {
        contain("iggy_source_batch_result", id, || {
            let Some(instance) = self.get(id) else {
                error!("source connector {id} is not open; batch result refused");
                return -1;
            };
            let (verdict, valid) = match SourceBatchResult::try_from(result) {
                Ok(verdict) => (verdict, true),
                Err(()) => {
                    error!(
                        "source connector {id} got result code {result} for batch {batch_id}; treating it as Nack"
                    );
                    (SourceBatchResult::Nack, false)
                }
            };
            let Some(batch) = take_pending(&instance.pending, batch_id) else {
                error!("source connector {id} has no batch {batch_id} awaiting a result");
                return -1;
            };
            // The loop may have just given up on this batch; then it is already Nacked.
            let _ = batch.result.send(verdict);
            if valid { 0 } else { -1 }
        })
    }

    pub fn close(&self, id: u32) -> i32 {
        contain("iggy_source_close", id, || {
            let Some(instance) = self.remove(id) else {
                error!("source connector {id} is not open; close refused");
                return -1;
            };
            let lifecycle = std::mem::replace(&mut *lock(&instance.lifecycle), Lifecycle::Opening);
            let source = match lifecycle {
                Lifecycle::Opening => {
                    error!("source connector {id} was still opening; close refused");
                    return -1;
                }
                Lifecycle::Open(source) => source,
                Lifecycle::Running {
                    source,
                    shutdown,
                    task,
                } => {
                    info!("stopping source connector {id}");
                    let _ = shutdown.send(true);
                    get_runtime().block_on(stop_loop(id, task));
                    source
                }
            };
            let Ok(mut source) = Arc::try_unwrap(source) else {
                error!(
                    "source connector {id} is still in use (a call into it blocks without yielding) and cannot be closed"
                );
                return -1;
            };
            close_within("source", id, source.close())
        })
    }
}

fn open_instance<T, C, F>(
    id: u32,
    config_bytes: &[u8],
    state: Option<ConnectorState>,
    factory: F,
    instance: &SourceInstance<T>,
) -> i32
where
    T: Source,
    C: DeserializeOwned,
    F: FnOnce(u32, C, Option<ConnectorState>) -> T,
{
    let config = match config::parse::<C>(config_bytes) {
        Ok(config) => config,
        Err(reason) => {
            error!("source connector {id} has an invalid configuration: {reason}");
            return -1;
        }
    };
    let mut source = factory(id, config, state);
    if let Err(error) = get_runtime().block_on(source.open()) {
        error!("source connector {id} failed to open: {error}");
        return 1;
    }
    *lock(&instance.lifecycle) = Lifecycle::Open(Arc::new(source));
    info!("opened source connector {id}");
    0
}

/// Gives the poll loop, told to stop, most of [`STOP_WAIT`] to end; then
/// aborts it, which drops whatever it awaits (a poll, or the connector's
/// handling of a batch result) at its next `await`, and waits out the rest.
async fn stop_loop(id: u32, mut task: JoinHandle<()>) {
    let (grace, after_abort) = (STOP_WAIT * 3 / 4, STOP_WAIT / 4);
    let ended = match tokio::time::timeout(grace, &mut task).await {
        Ok(ended) => ended,
        Err(_) => {
            warn!("source connector {id} did not stop within {grace:?}; its poll loop is aborted");
            task.abort();
            match tokio::time::timeout(after_abort, task).await {
                Ok(ended) => ended,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = ended
        && !error.is_cancelled()
    {
        error!("source connector {id} poll loop ended abnormally: {error}");
    }
}

/// Waits `duration` unless shutdown comes first; `false` means stop.
async fn pause(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = shutdown.changed() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}

/// Tells the connector how its batch ended; `false` means the loop must stop
/// (the connector could not apply the result, as the `Source` contract says).
async fn apply_result<T: Source>(id: u32, source: &T, result: SourceBatchResult) -> bool {
    match CatchPanic(source.on_batch_result(result)).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            error!("source connector {id} could not apply {result:?}: {error}; it stops polling");
            false
        }
        Err(panic) => {
            error!("source connector {id} panicked applying {result:?}: {panic}; it stops polling");
            false
        }
    }
}

struct Outcome {
    result: SourceBatchResult,
    shutting_down: bool,
}

/// Runs a call into the runtime, which blocks while the runtime stores the
/// batch, with this worker's queue handed to another thread meanwhile. The
/// task a plugin spawned last in `poll` (its next fetch, say) waits in a slot
/// of this worker that no other worker takes from, so without this it would
/// not start until the call returned.
fn off_the_scheduler<R>(call: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(call)
}

async fn deliver_v2(
    id: u32,
    batch_id: u64,
    callback: SendCallback,
    (batch, bytes): (ProducedMessages, Vec<u8>),
    pending: &Pending,
    shutdown: &mut watch::Receiver<bool>,
    policy: LoopPolicy,
) -> Outcome {
    let (sender, mut receiver) = oneshot::channel();
    *lock(pending) = Some(PendingBatch {
        id: batch_id,
        result: sender,
    });
    let code = off_the_scheduler(|| callback(id, batch_id, bytes.as_ptr(), bytes.len()));
    // Freed while the runtime stores the batch rather than after its answer:
    // a batch is thousands of allocations, and the answer is what the next
    // poll waits for.
    drop((batch, bytes));
    let nack = |shutting_down| Outcome {
        result: SourceBatchResult::Nack,
        shutting_down,
    };
    if code != 0 {
        take_pending(pending, batch_id);
        warn!("runtime did not take batch {batch_id} of source connector {id} (code {code}); Nack");
        return nack(false);
    }
    // When giving up, a result that raced in is still honoured.
    let give_up =
        |receiver: &mut oneshot::Receiver<SourceBatchResult>| match take_pending(pending, batch_id)
        {
            Some(_) => SourceBatchResult::Nack,
            None => receiver.try_recv().unwrap_or(SourceBatchResult::Nack),
        };
    tokio::select! {
        biased;
        result = &mut receiver => Outcome { result: result.unwrap_or(SourceBatchResult::Nack), shutting_down: false },
        _ = shutdown.changed() => Outcome { result: give_up(&mut receiver), shutting_down: true },
        _ = tokio::time::sleep(policy.result_timeout) => {
            warn!("no result for batch {batch_id} of source connector {id} within {:?}; Nack", policy.result_timeout);
            Outcome { result: give_up(&mut receiver), shutting_down: false }
        }
    }
}

async fn poll_loop<T: Source>(
    id: u32,
    source: Arc<T>,
    delivery: Delivery,
    pending: Pending,
    mut shutdown: watch::Receiver<bool>,
    policy: LoopPolicy,
) {
    let mut batch_id = 0u64;
    let mut consecutive_nacks = 0u32;
    let mut first_nacked = 0u64;
    let mut consecutive_poll_failures = 0u32;
    loop {
        let polled = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            polled = CatchPanic(source.poll()) => polled,
        };
        let batch = match polled {
            Ok(Ok(batch)) => batch,
            failed => {
                consecutive_poll_failures += 1;
                let delay = policy.backoff_after(consecutive_poll_failures);
                match failed {
                    Ok(Err(error)) => error!(
                        "source connector {id} failed to poll: {error}; retrying in {delay:?}"
                    ),
                    _ => error!(
                        "source connector {id} panicked in poll: {}; retrying in {delay:?}",
                        failed.err().unwrap_or_default()
                    ),
                }
                if !pause(&mut shutdown, delay).await {
                    break;
                }
                continue;
            }
        };
        consecutive_poll_failures = 0;
        if batch.messages.is_empty() && batch.state.is_none() {
            // Nothing for the runtime to store or save: the answer would be Ack.
            if !apply_result(id, &*source, SourceBatchResult::Ack).await
                || !pause(&mut shutdown, policy.idle_pause).await
            {
                break;
            }
            continue;
        }
        batch_id += 1;
        let outcome = match encode(&batch) {
            Err(error) => {
                error!(
                    "source connector {id} produced batch {batch_id} that cannot be encoded: {error}; Nack"
                );
                Outcome {
                    result: SourceBatchResult::Nack,
                    shutting_down: false,
                }
            }
            Ok(bytes) => match delivery {
                Delivery::V1(callback) => {
                    off_the_scheduler(|| callback(id, bytes.as_ptr(), bytes.len()));
                    Outcome {
                        result: SourceBatchResult::Ack,
                        shutting_down: false,
                    }
                }
                Delivery::V2(callback) => {
                    deliver_v2(
                        id,
                        batch_id,
                        callback,
                        (batch, bytes),
                        &pending,
                        &mut shutdown,
                        policy,
                    )
                    .await
                }
            },
        };
        if !apply_result(id, &*source, outcome.result).await || outcome.shutting_down {
            break;
        }
        if outcome.result == SourceBatchResult::Ack {
            consecutive_nacks = 0;
            continue;
        }
        consecutive_nacks += 1;
        if consecutive_nacks == 1 {
            first_nacked = batch_id;
        }
        if consecutive_nacks >= policy.max_consecutive_nacks {
            error!(
                "source connector {id} has failed: the runtime refused the same data {consecutive_nacks} times in a row (batches {first_nacked} to {batch_id}, each a redelivery of the one before); it stops polling until restarted. The runtime's log says why it refused the batch"
            );
            break;
        }
        let delay = policy.backoff_after(consecutive_nacks);
        if delay == policy.max_backoff {
            error!(
                "source connector {id}: {consecutive_nacks} batches in a row were not taken; retrying every {delay:?}"
            );
        }
        if !pause(&mut shutdown, delay).await {
            break;
        }
    }
    info!("source connector {id} stopped polling");
}

/// Encodes a batch into a buffer sized up front: payloads dominate the size,
/// so growing by doubling would copy them several times.
fn encode(batch: &ProducedMessages) -> Result<Vec<u8>, postcard::Error> {
    let estimate: usize = batch
        .messages
        .iter()
        .map(|m| m.payload.len() + 64 + m.headers.as_ref().map_or(0, |h| h.len() * 48))
        .sum::<usize>()
        + batch.state.as_ref().map_or(0, |s| s.0.len())
        + 16;
    postcard::to_extend(batch, Vec::with_capacity(estimate))
}

/// Exports the source symbols of both runtime generations for `$type`,
/// built with `<$type>::new(id, config, state)`.
#[macro_export]
macro_rules! source_connector {
    ($type:ty) => {
        // What upstream's expansion needs of the plugin, asked here too so a
        // plugin that builds against this SDK builds against upstream's: the
        // type is a `Source` and `Debug`, the crate depends on `dashmap` and
        // `tracing` (upstream's expansion names both), and the names it
        // brings into this module are free.
        const _: fn() = || {
            fn source_connector_type<T: $crate::Source + ::std::fmt::Debug>() {}
            source_connector_type::<$type>();
        };
        #[allow(unused_imports)]
        use ::std::sync::LazyLock;
        #[allow(unused_imports)]
        use dashmap::DashMap;
        #[allow(unused_imports)]
        use tracing as _;
        #[allow(unused_imports)]
        use $crate::LogCallback;
        #[allow(unused_imports)]
        use $crate::source::{SendCallback, SourceRegistry as SourceContainer};

        static INSTANCES: $crate::source::SourceRegistry<$type> =
            $crate::source::SourceRegistry::new();

        /// # Safety
        /// Called by the Iggy connectors runtime with valid config and state buffers.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn iggy_source_open(
            id: u32,
            config_ptr: *const u8,
            config_len: usize,
            state_ptr: *const u8,
            state_len: usize,
            log_callback: $crate::LogCallback,
        ) -> i32 {
            unsafe {
                INSTANCES.open(
                    id,
                    config_ptr,
                    config_len,
                    state_ptr,
                    state_len,
                    log_callback,
                    <$type>::new,
                )
            }
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn iggy_source_handle(
            id: u32,
            callback: $crate::source::SendCallbackV1,
        ) -> i32 {
            INSTANCES.handle_v1(id, callback)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn iggy_source_handle_v2(
            id: u32,
            callback: $crate::source::SendCallback,
        ) -> i32 {
            INSTANCES.handle_v2(id, callback)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn iggy_source_batch_result(id: u32, batch_id: u64, result: u8) -> i32 {
            INSTANCES.batch_result(id, batch_id, result)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn iggy_source_close(id: u32) -> i32 {
            INSTANCES.close(id)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn iggy_source_version() -> *const ::std::ffi::c_char {
            static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
            VERSION.as_ptr().cast()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, ProducedMessage, Schema};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_and_caps() {
        let delays: Vec<u64> = (1..=8)
            .map(|n| POLICY.backoff_after(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(POLICY.backoff_after(u32::MAX), POLICY.max_backoff);
    }

    /// Produces one message per poll and records every result it is told.
    #[derive(Default)]
    struct Recorder {
        polls: AtomicU32,
        results: Mutex<Vec<SourceBatchResult>>,
        /// Set by a task each poll spawns, when there is one.
        spawned_task_ran: Option<&'static AtomicBool>,
    }

    #[async_trait]
    impl Source for Recorder {
        async fn open(&mut self) -> Result<(), Error> {
            Ok(())
        }
        async fn poll(&self) -> Result<ProducedMessages, Error> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if let Some(flag) = self.spawned_task_ran {
                flag.store(false, Ordering::SeqCst);
                tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
            }
            Ok(ProducedMessages {
                schema: Schema::Raw,
                messages: vec![ProducedMessage {
                    id: None,
                    checksum: None,
                    timestamp: None,
                    origin_timestamp: None,
                    headers: None,
                    payload: b"x".to_vec(),
                }],
                state: None,
            })
        }
        async fn on_batch_result(&self, result: SourceBatchResult) -> Result<(), Error> {
            lock(&self.results).push(result);
            Ok(())
        }
        async fn close(&mut self) -> Result<(), Error> {
            Ok(())
        }
    }

    const FAST: LoopPolicy = LoopPolicy {
        result_timeout: Duration::from_millis(50),
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        idle_pause: Duration::from_millis(1),
        max_consecutive_nacks: u32::MAX,
    };

    extern "C" fn takes_and_never_answers(_: u32, _: u64, _: *const u8, _: usize) -> i32 {
        0
    }

    extern "C" fn refuses(_: u32, _: u64, _: *const u8, _: usize) -> i32 {
        1
    }

    extern "C" fn v1_takes(_: u32, _: *const u8, _: usize) {}

    static SPAWNED_TASK_RAN: AtomicBool = AtomicBool::new(false);
    static SEEN_DURING_THE_CALL: AtomicBool = AtomicBool::new(false);

    /// Blocks, as the runtime's callback does while it stores a batch, until
    /// the task `poll` spawned has run (or 2 s have passed), and notes which.
    extern "C" fn waits_for_the_spawned_task(_: u32, _: u64, _: *const u8, _: usize) -> i32 {
        for _ in 0..400 {
            if SPAWNED_TASK_RAN.load(Ordering::SeqCst) {
                SEEN_DURING_THE_CALL.store(true, Ordering::SeqCst);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        0
    }

    /// Runs the real poll loop until `results` has `count` entries.
    fn run_until(
        source: Recorder,
        delivery: Delivery,
        count: usize,
    ) -> (Arc<Recorder>, Vec<SourceBatchResult>) {
        let source = Arc::new(source);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let (shutdown, receiver) = watch::channel(false);
        let task = runtime.spawn(poll_loop(
            7,
            Arc::clone(&source),
            delivery,
            Pending::default(),
            receiver,
            FAST,
        ));
        for _ in 0..500 {
            if lock(&source.results).len() >= count {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = shutdown.send(true);
        runtime.block_on(task).unwrap();
        let results = lock(&source.results).clone();
        (source, results)
    }

    #[test]
    fn an_unanswered_batch_times_out_as_nack_and_is_polled_again() {
        let (source, results) = run_until(
            Recorder::default(),
            Delivery::V2(takes_and_never_answers),
            2,
        );
        assert!(results.len() >= 2, "{results:?}");
        assert!(
            results.iter().all(|r| *r == SourceBatchResult::Nack),
            "{results:?}"
        );
        assert!(source.polls.load(Ordering::SeqCst) >= 2);
    }

    #[test]
    fn a_batch_the_runtime_refuses_is_a_nack() {
        let (_, results) = run_until(Recorder::default(), Delivery::V2(refuses), 3);
        assert!(results.len() >= 3 && results.iter().all(|r| *r == SourceBatchResult::Nack));
    }

    #[test]
    fn the_loop_stops_after_the_cap_of_nacks_in_a_row() {
        let source = Arc::new(Recorder::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_shutdown, receiver) = watch::channel(false);
        let policy = LoopPolicy {
            max_consecutive_nacks: 4,
            ..FAST
        };
        let task = runtime.spawn(poll_loop(
            7,
            Arc::clone(&source),
            Delivery::V2(refuses),
            Pending::default(),
            receiver,
            policy,
        ));
        runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await })
            .expect("the loop stopped by itself")
            .unwrap();
        assert_eq!(*lock(&source.results), [SourceBatchResult::Nack; 4]);
        assert_eq!(source.polls.load(Ordering::SeqCst), 4);
        assert_eq!(POLICY.max_consecutive_nacks, 10);
    }

    #[test]
    fn under_v1_the_callback_return_is_the_ack() {
        let (_, results) = run_until(Recorder::default(), Delivery::V1(v1_takes), 3);
        assert!(results.len() >= 3 && results.iter().all(|r| *r == SourceBatchResult::Ack));
    }

    /// A plugin's poll may spawn work (its next fetch) meant to run while the
    /// runtime stores the batch; the blocking callback must not hold it back.
    #[test]
    fn tasks_spawned_in_poll_run_while_the_runtime_stores_the_batch() {
        let source = Recorder {
            spawned_task_ran: Some(&SPAWNED_TASK_RAN),
            ..Recorder::default()
        };
        run_until(source, Delivery::V2(waits_for_the_spawned_task), 1);
        assert!(
            SEEN_DURING_THE_CALL.load(Ordering::SeqCst),
            "the task spawned in poll ran while the callback blocked"
        );
    }

    #[test]
    fn a_result_for_the_batch_in_flight_reaches_the_loop() {
        let pending = Pending::default();
        let (sender, mut receiver) = oneshot::channel();
        *lock(&pending) = Some(PendingBatch {
            id: 4,
            result: sender,
        });
        assert!(
            take_pending(&pending, 3).is_none(),
            "another batch id is not taken"
        );
        let batch = take_pending(&pending, 4).expect("batch 4 is in flight");
        batch.result.send(SourceBatchResult::Ack).unwrap();
        assert_eq!(receiver.try_recv().unwrap(), SourceBatchResult::Ack);
        assert!(take_pending(&pending, 4).is_none(), "taken once");
    }
}
