//! The sink side of the ABI: one registry of open instances per library,
//! batch decoding, and the `sink_connector!` macro that exports the symbols.

use crate::boundary::{borrowed, contain};
use crate::log::{self, LogCallback};
use crate::{
    ConsumedMessage, MessagesMetadata, RawMessages, Sink, TopicMetadata, config, get_runtime,
};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use tracing::{error, info};

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
    /// so it waits for batches still in flight.
    sink: RwLock<Option<T>>,
    undecodable_total: AtomicU64,
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
            let taken = instance
                .sink
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let Some(mut sink) = taken else {
                error!("sink connector {id} was still opening; close refused");
                return -1;
            };
            info!("closing sink connector {id}");
            match get_runtime().block_on(sink.close()) {
                Ok(()) => {
                    info!("closed sink connector {id}");
                    0
                }
                Err(error) => {
                    error!("sink connector {id} failed to close cleanly: {error}");
                    1
                }
            }
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
    let guard = instance.sink.read().unwrap_or_else(PoisonError::into_inner);
    let Some(sink) = guard.as_ref() else {
        error!("sink connector {id} is still opening; consume refused");
        return -1;
    };
    match get_runtime().block_on(sink.consume(&topic, meta, messages)) {
        Ok(()) => 0,
        Err(error) => {
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
        static __IGGY_SINKS: $crate::sink::SinkRegistry<$type> = $crate::sink::SinkRegistry::new();

        /// # Safety
        /// Called by the Iggy connectors runtime with a valid config buffer.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn iggy_sink_open(
            id: u32,
            config_ptr: *const u8,
            config_len: usize,
            log_callback: $crate::LogCallback,
        ) -> i32 {
            unsafe { __IGGY_SINKS.open(id, config_ptr, config_len, log_callback, <$type>::new) }
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
                __IGGY_SINKS.consume(
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
            __IGGY_SINKS.close(id)
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
