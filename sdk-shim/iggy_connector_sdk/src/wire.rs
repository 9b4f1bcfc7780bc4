//! The structures that cross the ABI, postcard-encoded in this field order.
//! Changing a field's type or position breaks compatibility with the runtime.
//! Byte fields go through `serde_bytes`: postcard writes a byte string exactly
//! as a sequence of u8 (length, then the bytes), so the wire is unchanged,
//! but encoding and decoding become one copy instead of a call per byte.

use crate::schema::{Payload, Schema};
use crate::state::ConnectorState;
use iggy_common::{HeaderKey, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[repr(C)]
#[derive(Debug, Serialize, Deserialize)]
pub struct TopicMetadata {
    pub stream: String,
    pub topic: String,
}

#[repr(C)]
#[derive(Debug, Serialize, Deserialize)]
pub struct MessagesMetadata {
    pub partition_id: u32,
    pub current_offset: u64,
    pub schema: Schema,
}

/// A sink batch as the runtime sends it.
#[repr(C)]
#[derive(Debug, Serialize, Deserialize)]
pub struct RawMessages {
    pub schema: Schema,
    pub messages: Vec<RawMessage>,
}

#[repr(C)]
#[derive(Debug, Serialize, Deserialize)]
pub struct RawMessage {
    pub id: u128,
    pub offset: u64,
    pub checksum: u64,
    pub timestamp: u64,
    pub origin_timestamp: u64,
    /// A postcard-encoded header map, or empty for none.
    #[serde(with = "serde_bytes")]
    pub headers: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

#[repr(C)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceivedMessage {
    pub id: u128,
    pub offset: u64,
    pub checksum: u64,
    pub timestamp: u64,
    pub origin_timestamp: u64,
    pub headers: Option<BTreeMap<HeaderKey, HeaderValue>>,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// A message as a sink's `consume` receives it.
#[repr(C)]
#[derive(Debug, Serialize, Deserialize)]
pub struct ConsumedMessage {
    pub id: u128,
    pub offset: u64,
    pub checksum: u64,
    pub timestamp: u64,
    pub origin_timestamp: u64,
    pub headers: Option<BTreeMap<HeaderKey, HeaderValue>>,
    pub payload: Payload,
}

/// A source batch as the runtime receives it; `state` is saved by the runtime.
#[repr(C)]
#[derive(Debug, Serialize, Deserialize)]
pub struct ProducedMessages {
    pub schema: Schema,
    pub messages: Vec<ProducedMessage>,
    pub state: Option<ConnectorState>,
}

#[repr(C)]
#[derive(Debug, Serialize, Deserialize)]
pub struct ProducedMessage {
    pub id: Option<u128>,
    pub checksum: Option<u64>,
    pub timestamp: Option<u64>,
    pub origin_timestamp: Option<u64>,
    pub headers: Option<BTreeMap<HeaderKey, HeaderValue>>,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

#[repr(C)]
#[derive(Debug, Serialize, Deserialize)]
pub struct DecodedMessage {
    pub id: Option<u128>,
    pub offset: Option<u64>,
    pub checksum: Option<u64>,
    pub timestamp: Option<u64>,
    pub origin_timestamp: Option<u64>,
    pub headers: Option<BTreeMap<HeaderKey, HeaderValue>>,
    pub payload: Payload,
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use iggy_common::{HeaderKind, HeaderValue};

    /// Short fields are encoded and decoded in a smaller buffer than long
    /// ones, and the shortest are held inline; every side of those
    /// boundaries must give the same wire as plain Base64 and read it back.
    #[test]
    fn header_fields_of_every_length_encode_as_base64_text() {
        for len in [1, 2, 21, 22, 23, 47, 48, 49, 50, 200, 255] {
            let bytes: Vec<u8> = (0..len).map(|n| n as u8).collect();
            let value = HeaderValue::from_raw(HeaderKind::Raw, &bytes).unwrap();
            let text = STANDARD.encode(&bytes);
            let wire = postcard::to_allocvec(&value).unwrap();
            let expected = postcard::to_allocvec(&(0u8, text.as_str())).unwrap();
            assert_eq!(wire, expected, "field of {len} bytes");
            let back: HeaderValue = postcard::from_bytes(&wire).unwrap();
            assert_eq!(back.as_bytes(), &bytes[..], "field of {len} bytes");
        }
    }
}
