//! A source library as a 0.4.x plugin looks to the runtime: only
//! `iggy_source_open/handle/close/version`, no batch results. Written by hand
//! (not with `source_connector!`, which exports both generations) so the
//! harness's fallback to v1 is tested against a library that truly lacks v2.
//! It emits `total` messages `{"seq":n}` in batches, each with its cursor as
//! state; the message `bad_seq`, if set, has an empty payload.

use iggy_connector_sdk::source::SendCallbackV1;
use iggy_connector_sdk::{ConnectorState, LogCallback, ProducedMessage, ProducedMessages, Schema};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    total: u64,
    batch_size: u64,
    /// The sequence number whose payload is empty, which Iggy refuses.
    bad_seq: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            total: 100,
            batch_size: 10,
            bad_seq: None,
        }
    }
}

struct Instance {
    config: Config,
    next: u64,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

static INSTANCES: Mutex<BTreeMap<u32, Instance>> = Mutex::new(BTreeMap::new());

fn instances() -> std::sync::MutexGuard<'static, BTreeMap<u32, Instance>> {
    INSTANCES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// # Safety
/// The pointers must be valid for their lengths during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iggy_source_open(
    id: u32,
    config_ptr: *const u8,
    config_len: usize,
    state_ptr: *const u8,
    state_len: usize,
    _log: LogCallback,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    contained(|| unsafe { open(id, config_ptr, config_len, state_ptr, state_len) })
}

/// Nothing may unwind out of an `extern "C"` function: a panic becomes -1.
fn contained(call: impl FnOnce() -> i32) -> i32 {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or(-1)
}

/// # Safety
/// As `iggy_source_open`.
unsafe fn open(
    id: u32,
    config_ptr: *const u8,
    config_len: usize,
    state_ptr: *const u8,
    state_len: usize,
) -> i32 {
    let bytes = if config_ptr.is_null() {
        &[][..]
    } else {
        // SAFETY: valid for the call per the ABI.
        unsafe { std::slice::from_raw_parts(config_ptr, config_len) }
    };
    let config = match serde_json::from_slice::<Option<Config>>(bytes) {
        Ok(config) => config.unwrap_or_default(),
        Err(_) => return -1,
    };
    let next = if state_ptr.is_null() {
        0
    } else {
        // SAFETY: valid for the call per the ABI.
        let state = unsafe { std::slice::from_raw_parts(state_ptr, state_len) };
        serde_json::from_slice::<u64>(state).unwrap_or(0)
    };
    let mut all = instances();
    if all.contains_key(&id) {
        return -1;
    }
    all.insert(
        id,
        Instance {
            config,
            next,
            stop: Arc::default(),
            worker: None,
        },
    );
    0
}

#[unsafe(no_mangle)]
pub extern "C" fn iggy_source_handle(id: u32, callback: SendCallbackV1) -> i32 {
    contained(|| handle(id, callback))
}

fn handle(id: u32, callback: SendCallbackV1) -> i32 {
    let mut all = instances();
    let Some(instance) = all.get_mut(&id) else {
        return -1;
    };
    let (start, total, batch, bad_seq) = (
        instance.next,
        instance.config.total,
        instance.config.batch_size.max(1),
        instance.config.bad_seq,
    );
    let stop = Arc::clone(&instance.stop);
    instance.worker = Some(std::thread::spawn(move || {
        let mut next = start;
        while !stop.load(Ordering::Relaxed) {
            if next >= total {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let end = total.min(next + batch);
            let messages = (next..end)
                .map(|seq| ProducedMessage {
                    id: Some(u128::from(seq) + 1),
                    checksum: None,
                    timestamp: None,
                    origin_timestamp: None,
                    headers: None,
                    payload: if bad_seq == Some(seq) {
                        Vec::new()
                    } else {
                        format!(r#"{{"seq":{seq}}}"#).into_bytes()
                    },
                })
                .collect();
            let state = ConnectorState(end.to_string().into_bytes());
            let batch = ProducedMessages {
                schema: Schema::Json,
                messages,
                state: Some(state),
            };
            if let Ok(bytes) = postcard::to_allocvec(&batch) {
                callback(id, bytes.as_ptr(), bytes.len());
            }
            next = end;
        }
    }));
    0
}

#[unsafe(no_mangle)]
pub extern "C" fn iggy_source_close(id: u32) -> i32 {
    contained(|| close(id))
}

fn close(id: u32) -> i32 {
    let Some(mut instance) = instances().remove(&id) else {
        return -1;
    };
    instance.stop.store(true, Ordering::Relaxed);
    match instance.worker.take().map(JoinHandle::join) {
        Some(Err(_)) => -1,
        _ => 0,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn iggy_source_version() -> *const std::ffi::c_char {
    // catch_unwind keeps even this trivial entry point from unwinding.
    catch_unwind(|| c"0.4.0-testkit".as_ptr()).unwrap_or(std::ptr::null())
}
