//! The sink side of the ABI: one registry of open instances per library,
//! batch decoding, and the `sink_connector!` macro that exports the symbols.

use crate::boundary::{borrowed, contain};
use crate::config;
use crate::connector::Sink;
use crate::log::{self, LogCallback};
use crate::runtime::get_runtime;
use crate::wire::{ConsumedMessage, MessagesMetadata, RawMessages, TopicMetadata};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard, TryLockError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{error, info};

/// How long `close` waits for calls still running in the connector (a
/// sink's `consume`, a source's poll loop) once it has told them to stop.
/// They are dropped at their next `await`, so this only runs out for code
/// that blocks a thread without awaiting.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(2);
/// How long the connector's own `close` may take. The runtime stops a sink
/// by waiting 5 s for its consume task and then calling `iggy_sink_close`
/// (runtime/src/sink.rs), and awaits each close in turn on shutdown, so a
/// close that hangs would hold up the whole runtime. With `STOP_WAIT`,
/// closing takes at most 10 s.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(8);

/// Runs a connector's `close`, giving up after [`CLOSE_WAIT`]: 0 when it
/// closed, 1 when it failed or ran out of time (its future is dropped then).
pub(crate) fn close_within<E: Display>(
    kind: &str,
    id: u32,
    close: impl Future<Output = Result<(), E>>,
) -> i32 {
    // The timer is made inside `block_on`, where the runtime is current.
    match get_runtime().block_on(async { tokio::time::timeout(CLOSE_WAIT, close).await }) {
        Ok(Ok(())) => {
            info!("closed {kind} connector {id}");
            0
        }
        Ok(Err(error)) => {
            error!("{kind} connector {id} failed to close cleanly: {error}");
            1
        }
        Err(_) => {
            error!(
                "{kind} connector {id} did not finish closing within {CLOSE_WAIT:?}; its close was abandoned"
            );
            1
        }
    }
}

pub type ConsumeCallback = extern "C" fn(
    plugin_id: u32,
    topic_meta_ptr: *const u8,
    topic_meta_len: usize,
    messages_meta_ptr: *const u8,
    messages_meta_len: usize,
    messages_ptr: *const u8,
    messages_len: usize,
) -> i32;

/// Messages of a batch that could not be decoded and were kept from the connector.
#[derive(Debug, Default)]
pub struct Undecodable {
    pub offsets: Vec<u64>,
    pub first_error: Option<String>,
}

/// Decodes a batch the way the runtime's messages reach `consume`: headers
/// from their postcard bytes, the payload under the batch's schema. Messages
/// that fail are left out and reported, never passed on half-decoded.
pub fn decode_messages(
    metadata: &MessagesMetadata,
    raw: RawMessages,
) -> (Vec<ConsumedMessage>, Undecodable) {
    let mut messages = Vec::with_capacity(raw.messages.len());
    let mut undecodable = Undecodable::default();
    for message in raw.messages {
        let headers = if message.headers.is_empty() {
            Ok(None)
        } else {
            postcard::from_bytes(&message.headers)
                .map(Some)
                .map_err(|error| format!("headers: {error}"))
        };
        let decoded = headers.and_then(|headers| {
            metadata
                .schema
                .try_into_payload(message.payload)
                .map(|payload| (headers, payload))
                .map_err(|error| format!("payload: {error}"))
        });
        match decoded {
            Ok((headers, payload)) => messages.push(ConsumedMessage {
                id: message.id,
                offset: message.offset,
                checksum: message.checksum,
                timestamp: message.timestamp,
                origin_timestamp: message.origin_timestamp,
                headers,
                payload,
            }),
            Err(reason) => {
                undecodable.offsets.push(message.offset);
                undecodable.first_error.get_or_insert(reason);
            }
        }
    }
    (messages, undecodable)
}

/// Offsets as compact ranges (`3-5, 9`), capped so one bad batch cannot flood the log.
fn offset_ranges(offsets: &[u64]) -> String {
    const MAX_RANGES: usize = 32;
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &offset in offsets {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == offset => *end = offset,
            _ => ranges.push((offset, offset)),
        }
    }
    let mut text: Vec<String> = ranges
        .iter()
        .take(MAX_RANGES)
        .map(|(start, end)| match start == end {
            true => start.to_string(),
            false => format!("{start}-{end}"),
        })
        .collect();
    if ranges.len() > MAX_RANGES {
        text.push("…".to_string());
    }
    text.join(", ")
}

struct SinkInstance<T> {
    /// `None` while `open` runs; consumes share the lock, `close` takes it whole
    /// once the batches still in flight have ended.
    sink: RwLock<Option<T>>,
    undecodable_total: AtomicU64,
    /// Raised first thing by `close`: a consume in flight stops at its next
    /// `await` instead of holding the close up (the runtime may close while
    /// a consume still runs on another thread).
    closing: watch::Sender<bool>,
}

/// Takes `lock` for writing once its readers are done, or gives up at `wait`.
fn write_within<T>(lock: &RwLock<T>, wait: Duration) -> Option<RwLockWriteGuard<'_, T>> {
    let deadline = Instant::now() + wait;
    loop {
        match lock.try_write() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => return None,
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// The open sink instances of this library, keyed by the runtime's plugin id.
pub struct SinkRegistry<T> {
    instances: RwLock<BTreeMap<u32, Arc<SinkInstance<T>>>>,
}

impl<T> Default for SinkRegistry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SinkRegistry<T> {
    pub const fn new() -> Self {
        Self {
            instances: RwLock::new(BTreeMap::new()),
        }
    }

    fn get(&self, id: u32) -> Option<Arc<SinkInstance<T>>> {
        let instances = self
            .instances
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        instances.get(&id).cloned()
    }

    fn remove(&self, id: u32) -> Option<Arc<SinkInstance<T>>> {
        let mut instances = self
            .instances
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        instances.remove(&id)
    }
}

impl<T: Sink + 'static> SinkRegistry<T> {
    /// # Safety
    /// `config_ptr` must point to `config_len` readable bytes for the call.
    pub unsafe fn open<C, F>(
        &self,
        id: u32,
        config_ptr: *const u8,
        config_len: usize,
        log_callback: LogCallback,
        factory: F,
    ) -> i32
    where
        C: DeserializeOwned,
        F: FnOnce(u32, C) -> T,
    {
        log::install(log_callback);
        // SAFETY: forwarded from the caller's contract.
        let config_bytes = unsafe { borrowed(config_ptr, config_len) };
        contain("iggy_sink_open", id, || {
            let instance = Arc::new(SinkInstance {
                sink: RwLock::new(None),
                undecodable_total: AtomicU64::new(0),
                closing: watch::Sender::new(false),
            });
            {
                let mut instances = self
                    .instances
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if instances.contains_key(&id) {
                    error!("sink connector {id} is already open; close it before opening it again");
                    return -1;
                }
                // Reserve the id first so a concurrent second open is refused too.
                instances.insert(id, Arc::clone(&instance));
            }
            let code = open_instance(id, config_bytes, factory, &instance);
            if code != 0 {
                self.remove(id);
            }
            code
        })
    }

    /// # Safety
    /// Each pointer must point to its length of readable bytes for the call.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn consume(
        &self,
        id: u32,
        topic_meta_ptr: *const u8,
        topic_meta_len: usize,
        messages_meta_ptr: *const u8,
        messages_meta_len: usize,
        messages_ptr: *const u8,
        messages_len: usize,
    ) -> i32 {
        // SAFETY: forwarded from the caller's contract.
        let (topic_bytes, meta_bytes, message_bytes) = unsafe {
            (
                borrowed(topic_meta_ptr, topic_meta_len),
                borrowed(messages_meta_ptr, messages_meta_len),
                borrowed(messages_ptr, messages_len),
            )
        };
        contain("iggy_sink_consume", id, || {
            let Some(instance) = self.get(id) else {
                error!("sink connector {id} is not open; consume refused");
                return -1;
            };
            consume_batch(id, &instance, topic_bytes, meta_bytes, message_bytes)
        })
    }

    pub fn close(&self, id: u32) -> i32 {
        contain("iggy_sink_close", id, || {
            let Some(instance) = self.remove(id) else {
                error!("sink connector {id} is not open; close refused");
                return -1;
            };
            instance.closing.send_replace(true);
            let Some(mut slot) = write_within(&instance.sink, STOP_WAIT) else {
                error!(
                    "sink connector {id} still runs a consume {STOP_WAIT:?} after close began (it blocks without yielding); close gives up, and the connector is dropped unclosed when that consume returns"
                );
                return -1;
            };
            let Some(mut sink) = slot.take() else {
                error!("sink connector {id} was still opening; close refused");
                return -1;
            };
            drop(slot);
            info!("closing sink connector {id}");
            close_within("sink", id, sink.close())
        })
    }
}

fn open_instance<T, C, F>(
    id: u32,
    config_bytes: &[u8],
    factory: F,
    instance: &SinkInstance<T>,
) -> i32
where
    T: Sink,
    C: DeserializeOwned,
    F: FnOnce(u32, C) -> T,
{
    let config = match config::parse::<C>(config_bytes) {
        Ok(config) => config,
        Err(reason) => {
            error!("sink connector {id} has an invalid configuration: {reason}");
            return -1;
        }
    };
    let mut sink = factory(id, config);
    if let Err(error) = get_runtime().block_on(sink.open()) {
        error!("sink connector {id} failed to open: {error}");
        return 1;
    }
    *instance
        .sink
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(sink);
    info!("opened sink connector {id}");
    0
}

fn consume_batch<T: Sink>(
    id: u32,
    instance: &SinkInstance<T>,
    topic_bytes: &[u8],
    meta_bytes: &[u8],
    message_bytes: &[u8],
) -> i32 {
    let decoded = postcard::from_bytes::<TopicMetadata>(topic_bytes)
        .map_err(|error| format!("topic metadata: {error}"))
        .and_then(|topic| {
            postcard::from_bytes::<MessagesMetadata>(meta_bytes)
                .map(|meta| (topic, meta))
                .map_err(|error| format!("messages metadata: {error}"))
        })
        .and_then(|(topic, meta)| {
            postcard::from_bytes::<RawMessages>(message_bytes)
                .map(|raw| (topic, meta, raw))
                .map_err(|error| format!("messages: {error}"))
        });
    let (topic, meta, raw) = match decoded {
        Ok(parts) => parts,
        Err(reason) => {
            error!(
                "sink connector {id} received a batch it cannot decode ({reason}); consume refused"
            );
            return -1;
        }
    };
    let (messages, undecodable) = decode_messages(&meta, raw);
    if !undecodable.offsets.is_empty() {
        let count = undecodable.offsets.len() as u64;
        let total = instance
            .undecodable_total
            .fetch_add(count, Ordering::Relaxed)
            + count;
        error!(
            "sink connector {id}: {count} message(s) of {}/{} partition {} do not decode as {} and were not passed to the connector (offsets {}; first error: {}); {total} so far",
            topic.stream,
            topic.topic,
            meta.partition_id,
            meta.schema,
            offset_ranges(&undecodable.offsets),
            undecodable.first_error.unwrap_or_default(),
        );
    }
    let mut closing = instance.closing.subscribe();
    let guard = instance.sink.read().unwrap_or_else(PoisonError::into_inner);
    let Some(sink) = guard.as_ref() else {
        error!("sink connector {id} is still opening; consume refused");
        return -1;
    };
    let consumed = get_runtime().block_on(async {
        tokio::select! {
            biased;
            _ = closing.wait_for(|closing| *closing) => None,
            consumed = sink.consume(&topic, meta, messages) => Some(consumed),
        }
    });
    match consumed {
        Some(Ok(())) => 0,
        None => {
            error!(
                "sink connector {id} is closing: the batch from {}/{} in flight was abandoned, not durably written",
                topic.stream, topic.topic
            );
            1
        }
        Some(Err(error)) => {
            error!(
                "sink connector {id} failed to consume a batch from {}/{}: {error}",
                topic.stream, topic.topic
            );
            1
        }
    }
}

/// Exports the sink symbols of the ABI for `$type`, built with `<$type>::new(id, config)`.
#[macro_export]
macro_rules! sink_connector {
    ($type:ty) => {
        // What upstream's expansion needs of the plugin, asked here too so a
        // plugin that builds against this SDK builds against upstream's: the
        // type is a `Sink` and `Debug`, the crate depends on `tracing`, and
        // the names upstream's expansion brings into this module are free.
        const _: fn() = || {
            fn sink_connector_type<T: $crate::Sink + ::std::fmt::Debug>() {}
            sink_connector_type::<$type>();
        };
        #[allow(unused_imports)]
        use ::std::sync::LazyLock;
        #[allow(unused_imports)]
        use tracing as _;
        #[allow(unused_imports)]
        use $crate::LogCallback;
        #[allow(unused_imports)]
        use $crate::connector_macro_support::DashMap;
        #[allow(unused_imports)]
        use $crate::sink::SinkRegistry as SinkContainer;

        static INSTANCES: $crate::sink::SinkRegistry<$type> = $crate::sink::SinkRegistry::new();

        /// # Safety
        /// Called by the Iggy connectors runtime with a valid config buffer.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn iggy_sink_open(
            id: u32,
            config_ptr: *const u8,
            config_len: usize,
            log_callback: $crate::LogCallback,
        ) -> i32 {
            unsafe { INSTANCES.open(id, config_ptr, config_len, log_callback, <$type>::new) }
        }

        /// # Safety
        /// Called by the Iggy connectors runtime with valid postcard buffers.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn iggy_sink_consume(
            id: u32,
            topic_meta_ptr: *const u8,
            topic_meta_len: usize,
            messages_meta_ptr: *const u8,
            messages_meta_len: usize,
            messages_ptr: *const u8,
            messages_len: usize,
        ) -> i32 {
            unsafe {
                INSTANCES.consume(
                    id,
                    topic_meta_ptr,
                    topic_meta_len,
                    messages_meta_ptr,
                    messages_meta_len,
                    messages_ptr,
                    messages_len,
                )
            }
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn iggy_sink_close(id: u32) -> i32 {
            INSTANCES.close(id)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn iggy_sink_version() -> *const ::std::ffi::c_char {
            static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
            VERSION.as_ptr().cast()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_compress_to_ranges() {
        assert_eq!(offset_ranges(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        let many: Vec<u64> = (0..100).map(|n| n * 2).collect();
        assert!(offset_ranges(&many).ends_with('…'));
    }
}
