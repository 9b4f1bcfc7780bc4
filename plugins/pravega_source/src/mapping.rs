//! One Pravega event → one Iggy message: the event bytes as payload, the
//! stream, segment and offset as headers, and a message id from them (the
//! same on every re-read). Pravega stores no routing key with an event, so
//! there is none to carry over.

use iggy_common::{HeaderKey, HeaderValue};
use iggy_connector_pravega_common::client::ReadEvent;
use iggy_connector_sdk::ProducedMessage;
use std::collections::BTreeMap;

pub const STREAM_HEADER: &str = "pravega-stream";
pub const SEGMENT_HEADER: &str = "pravega-segment";
pub const OFFSET_HEADER: &str = "pravega-offset";

/// FNV-1a of `scope/stream/segment` in the high 64 bits, the offset in the
/// low ones: offsets are unique within a segment.
pub fn message_id(stream: &str, segment: i64, offset: i64) -> u128 {
    let hash = stream
        .bytes()
        .chain(b"/".iter().copied())
        .chain(segment.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    (u128::from(hash) << 64) | u128::from(offset as u64)
}

/// `stream` is `scope/stream`.
pub fn message(stream: &str, event: ReadEvent) -> ProducedMessage {
    let mut headers = BTreeMap::new();
    let values = [
        (STREAM_HEADER, HeaderValue::try_from(stream).ok()),
        (SEGMENT_HEADER, Some(HeaderValue::from(event.segment))),
        (OFFSET_HEADER, Some(HeaderValue::from(event.offset))),
    ];
    for (name, value) in values {
        if let (Ok(key), Some(value)) = (HeaderKey::try_from(name), value) {
            headers.insert(key, value);
        }
    }
    ProducedMessage {
        id: Some(message_id(stream, event.segment, event.offset)),
        checksum: None,
        timestamp: None,
        origin_timestamp: None,
        headers: Some(headers),
        payload: event.payload,
    }
}

/// `segment N offset M` of a message made by `message`, for logs.
pub fn position(message: &ProducedMessage) -> String {
    let header = |name: &str| {
        let key = HeaderKey::try_from(name).ok()?;
        message
            .headers
            .as_ref()?
            .get(&key)
            .map(|v| v.to_string_value())
    };
    match (header(SEGMENT_HEADER), header(OFFSET_HEADER)) {
        (Some(segment), Some(offset)) => format!("segment {segment} offset {offset}"),
        _ => "position unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_becomes_a_message() {
        let event = ReadEvent {
            segment: 4_294_967_297,
            offset: 120,
            next_offset: 133,
            payload: b"hello".to_vec(),
        };
        let message = message("shop/orders", event);
        assert_eq!(message.payload, b"hello");
        assert_eq!(
            message.id,
            Some(message_id("shop/orders", 4_294_967_297, 120))
        );
        assert_eq!(position(&message), "segment 4294967297 offset 120");
        let headers = message.headers.unwrap();
        let get = |k: &str| headers.get(&HeaderKey::try_from(k).unwrap()).unwrap();
        assert_eq!(get(STREAM_HEADER).as_str().unwrap(), "shop/orders");
        assert_eq!(get(SEGMENT_HEADER).to_string_value(), "4294967297");
        assert_eq!(get(OFFSET_HEADER).to_string_value(), "120");
    }

    #[test]
    fn ids_differ_by_stream_segment_and_offset() {
        let id = message_id("s/a", 1, 8);
        assert_eq!(id as u64, 8);
        assert_ne!(id, message_id("s/b", 1, 8));
        assert_ne!(id, message_id("s/a", 2, 8));
        assert_ne!(id, message_id("s/a", 1, 9));
        assert_eq!(id, message_id("s/a", 1, 8));
    }
}
