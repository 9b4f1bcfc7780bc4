//! How a message payload is to be read (`Schema`) and the decoded payload itself.

use crate::error::Error;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Display, Formatter};
use std::str::FromStr;

/// Serialized by declaration index on the wire; the order is part of the ABI
/// (0.4.x runtimes know the first five).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, Eq, Hash, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schema {
    #[default]
    Json,
    Raw,
    Text,
    Proto,
    // Connector files write `flatbuffer`; serde's own spelling is kept too.
    #[serde(alias = "flatbuffer")]
    FlatBuffer,
    Avro,
}

const SCHEMA_NAMES: [(Schema, &str); 6] = [
    (Schema::Json, "json"),
    (Schema::Raw, "raw"),
    (Schema::Text, "text"),
    (Schema::Proto, "proto"),
    (Schema::FlatBuffer, "flatbuffer"),
    (Schema::Avro, "avro"),
];

impl Display for Schema {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEMA_NAMES[*self as usize].1)
    }
}

impl From<Schema> for &'static str {
    fn from(schema: Schema) -> Self {
        SCHEMA_NAMES[schema as usize].1
    }
}

impl FromStr for Schema {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.to_ascii_lowercase();
        SCHEMA_NAMES
            .iter()
            .find(|(_, name)| *name == wanted || (*name == "flatbuffer" && wanted == "flat_buffer"))
            .map(|(schema, _)| *schema)
            .ok_or_else(|| Error::InvalidConfigValue(format!("unknown schema `{s}`")))
    }
}

thread_local! {
    // simd-json's scratch space, kept between payloads: allocating and
    // growing it for every message was most of the cost of a JSON decode.
    static JSON_BUFFERS: std::cell::RefCell<simd_json::Buffers> =
        std::cell::RefCell::new(simd_json::Buffers::default());
}

impl Schema {
    /// Decodes stored bytes into the payload a sink receives.
    pub fn try_into_payload(self, mut value: Vec<u8>) -> Result<Payload, Error> {
        match self {
            Schema::Json => JSON_BUFFERS
                .with_borrow_mut(|buffers| {
                    simd_json::to_owned_value_with_buffers(&mut value, buffers)
                })
                .map(Payload::Json)
                .map_err(|_| Error::InvalidJsonPayload),
            Schema::Raw => Ok(Payload::Raw(value)),
            Schema::Text => String::from_utf8(value)
                .map(Payload::Text)
                .map_err(|_| Error::InvalidTextPayload),
            Schema::Proto => Ok(match decode_proto_any(&value) {
                Some((type_url, any_value)) => Payload::Json(simd_json::json!({
                    "type_url": type_url,
                    "value": STANDARD.encode(any_value),
                })),
                None => Payload::Raw(value),
            }),
            Schema::FlatBuffer => Ok(Payload::FlatBuffer(value)),
            Schema::Avro => Ok(Payload::Avro(value)),
        }
    }
}

/// Reads bytes as a protobuf `google.protobuf.Any` (field 1 `type_url`,
/// field 2 `value`), skipping unknown fields as protobuf decoders do.
/// `None` when the bytes are not a valid message; groups count as invalid.
fn decode_proto_any(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut rest = bytes;
    let mut type_url: &[u8] = &[];
    let mut value: &[u8] = &[];
    while !rest.is_empty() {
        let key = read_varint(&mut rest)?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 {
            return None;
        }
        match wire_type {
            0 => {
                read_varint(&mut rest)?;
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                rest = rest.get(width..)?;
            }
            2 => {
                let len = usize::try_from(read_varint(&mut rest)?).ok()?;
                let data = rest.get(..len)?;
                rest = &rest[len..];
                match field {
                    1 => type_url = data,
                    2 => value = data,
                    _ => {}
                }
            }
            _ => return None,
        }
    }
    let type_url = String::from_utf8(type_url.to_vec()).ok()?;
    Some((type_url, value))
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut result = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(result);
        }
    }
    None
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Payload {
    Json(simd_json::OwnedValue),
    Raw(Vec<u8>),
    Text(String),
    Proto(String),
    FlatBuffer(Vec<u8>),
    Avro(Vec<u8>),
}

impl Payload {
    /// Turns the payload back into bytes, giving up its buffers.
    pub fn try_into_vec(self) -> Result<Vec<u8>, Error> {
        match self {
            Payload::Json(value) => {
                simd_json::to_vec(&value).map_err(|_| Error::InvalidJsonPayload)
            }
            Payload::Text(text) | Payload::Proto(text) => Ok(text.into_bytes()),
            Payload::Raw(bytes) | Payload::FlatBuffer(bytes) | Payload::Avro(bytes) => Ok(bytes),
        }
    }

    /// Serializes a copy of the payload, leaving it in place.
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, Error> {
        match self {
            Payload::Json(value) => simd_json::to_vec(value).map_err(|_| Error::InvalidJsonPayload),
            Payload::Text(text) | Payload::Proto(text) => Ok(text.as_bytes().to_vec()),
            Payload::Raw(bytes) | Payload::FlatBuffer(bytes) | Payload::Avro(bytes) => {
                Ok(bytes.clone())
            }
        }
    }
}

impl Display for Payload {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Json(value) => match simd_json::to_string(value) {
                Ok(text) => write!(f, "Json({text})"),
                Err(_) => f.write_str("Json(<unprintable>)"),
            },
            Payload::Raw(bytes) => write!(f, "Raw({bytes:?})"),
            Payload::Text(text) => write!(f, "Text({text})"),
            Payload::Proto(text) => write!(f, "Proto({text})"),
            Payload::FlatBuffer(bytes) => write!(f, "FlatBuffer({} bytes)", bytes.len()),
            Payload::Avro(bytes) => write!(f, "Avro({} bytes)", bytes.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    #[test]
    fn names_parse_and_print() {
        for (schema, name) in SCHEMA_NAMES {
            assert_eq!(schema.to_string(), name);
            assert_eq!(name.parse::<Schema>().unwrap(), schema);
        }
        assert_eq!("flat_buffer".parse::<Schema>().unwrap(), Schema::FlatBuffer);
        assert!("xml".parse::<Schema>().is_err());
    }

    #[test]
    fn json_and_text_decode_or_fail() {
        let payload = Schema::Json
            .try_into_payload(br#"{"a":1}"#.to_vec())
            .unwrap();
        let Payload::Json(value) = &payload else {
            panic!("expected json, got {payload}");
        };
        assert_eq!(value.get("a").and_then(|v| v.as_u64()), Some(1));
        assert_eq!(payload.try_to_bytes().unwrap(), br#"{"a":1}"#);
        assert_eq!(payload.to_string(), r#"Json({"a":1})"#);
        assert_eq!(
            Schema::Json
                .try_into_payload(b"{oops".to_vec())
                .unwrap_err(),
            Error::InvalidJsonPayload
        );
        assert_eq!(
            Schema::Text.try_into_payload(vec![0xff]).unwrap_err(),
            Error::InvalidTextPayload
        );
    }

    #[test]
    fn proto_any_becomes_json_and_garbage_stays_raw() {
        // Any { type_url: "t/x", value: [1, 2] } plus an unknown varint field 3.
        let bytes = vec![0x0a, 3, b't', b'/', b'x', 0x12, 2, 1, 2, 0x18, 0x96, 0x01];
        let Payload::Json(value) = Schema::Proto.try_into_payload(bytes).unwrap() else {
            panic!("expected json");
        };
        assert_eq!(value.get("type_url").and_then(|v| v.as_str()), Some("t/x"));
        assert_eq!(value.get("value").and_then(|v| v.as_str()), Some("AQI="));
        let garbage = vec![0x0a, 9, 1];
        assert!(matches!(
            Schema::Proto.try_into_payload(garbage).unwrap(),
            Payload::Raw(_)
        ));
    }
}
