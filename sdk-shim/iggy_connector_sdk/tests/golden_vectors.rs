//! Byte compatibility with the upstream SDK: every vector in
//! `golden/abi-vectors.json` (produced by the upstream SDK with postcard) decodes to the content its `value` describes,
//! and that content, built here independently, encodes to the same bytes.

use iggy_common::{HeaderKey, HeaderValue, UserHeaders};
use iggy_connector_sdk::{
    ConnectorState, MessagesMetadata, ProducedMessage, ProducedMessages, RawMessage, RawMessages,
    Schema, TopicMetadata,
};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Vector {
    #[serde(rename = "type")]
    kind: String,
    value: String,
    postcard_hex: String,
}

fn vectors(kind: &str) -> Vec<(String, Vec<u8>)> {
    let text = include_str!("golden/abi-vectors.json");
    let all: Vec<Vector> = serde_json::from_str(text).expect("golden file parses");
    let found: Vec<_> = all
        .into_iter()
        .filter(|v| v.kind == kind)
        .map(|v| (v.value, hex(&v.postcard_hex)))
        .collect();
    assert!(!found.is_empty(), "no golden vectors of type {kind}");
    found
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn key(name: &str) -> HeaderKey {
    HeaderKey::try_from(name).unwrap()
}

/// The map described by the `headers` vector.
fn expected_headers() -> UserHeaders {
    UserHeaders::from([
        (
            key("content-type"),
            HeaderValue::try_from("application/json").unwrap(),
        ),
        (key("attempt"), HeaderValue::from(3u64)),
        (key("flag"), HeaderValue::from(true)),
        (
            key("blob"),
            HeaderValue::try_from(vec![0u8, 255, 16]).unwrap(),
        ),
        (key("ratio"), HeaderValue::from(0.5f64)),
        (key("delta"), HeaderValue::from(-7i32)),
    ])
}

#[test]
fn topic_metadata() {
    for (_, bytes) in vectors("topic_metadata") {
        let decoded: TopicMetadata = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            (decoded.stream.as_str(), decoded.topic.as_str()),
            ("orders", "created")
        );
        let built = TopicMetadata {
            stream: "orders".into(),
            topic: "created".into(),
        };
        assert_eq!(postcard::to_allocvec(&built).unwrap(), bytes);
    }
}

#[test]
fn messages_metadata_for_every_schema() {
    let mut seen = Vec::new();
    for (value, bytes) in vectors("messages_metadata") {
        let name = value
            .rsplit("schema: ")
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        let schema: Schema = name.parse().unwrap();
        let decoded: MessagesMetadata = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            (decoded.partition_id, decoded.current_offset, decoded.schema),
            (3, 41, schema)
        );
        let built = MessagesMetadata {
            partition_id: 3,
            current_offset: 41,
            schema,
        };
        assert_eq!(postcard::to_allocvec(&built).unwrap(), bytes, "{value}");
        seen.push(schema);
    }
    assert_eq!(seen.len(), 6, "one vector per schema");
}

#[test]
fn headers_map() {
    let (_, bytes) = vectors("headers").remove(0);
    let decoded: UserHeaders = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(decoded, expected_headers());
    assert_eq!(decoded[&key("attempt")].as_uint64().unwrap(), 3);
    assert_eq!(decoded[&key("delta")].as_int32().unwrap(), -7);
    assert_eq!(decoded[&key("blob")].as_raw().unwrap(), &[0, 255, 16]);
    assert_eq!(postcard::to_allocvec(&expected_headers()).unwrap(), bytes);
}

#[test]
fn raw_messages() {
    let (_, headers_bytes) = vectors("headers").remove(0);
    let (_, bytes) = vectors("raw_messages").remove(0);
    let decoded: RawMessages = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(decoded.schema, Schema::Json);
    assert_eq!(decoded.messages.len(), 2);
    let first = &decoded.messages[0];
    assert_eq!(first.id, 0x0123456789abcdef0011223344556677);
    assert_eq!((first.offset, first.checksum), (40, 987654321));
    assert_eq!(
        (first.timestamp, first.origin_timestamp),
        (1763720000000000, 1763719999000000)
    );
    assert_eq!(first.headers, headers_bytes);
    let second = &decoded.messages[1];
    assert!(second.headers.is_empty());
    let built = RawMessages {
        schema: Schema::Json,
        messages: vec![
            RawMessage {
                id: 0x0123456789abcdef0011223344556677,
                offset: 40,
                checksum: 987654321,
                timestamp: 1763720000000000,
                origin_timestamp: 1763719999000000,
                headers: postcard::to_allocvec(&expected_headers()).unwrap(),
                payload: br#"{"order_id":1,"amount":12.5}"#.to_vec(),
            },
            RawMessage {
                id: 2,
                offset: 41,
                checksum: 5,
                timestamp: 1763720000000001,
                origin_timestamp: 0,
                headers: Vec::new(),
                payload: br#"{"order_id":2,"note":"zazolc gesla jazn \u00f3"}"#.to_vec(),
            },
        ],
    };
    assert_eq!(postcard::to_allocvec(&built).unwrap(), bytes);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct NatsLikeState {
    stream_sequence: u64,
    consumer: String,
}

#[test]
fn produced_messages_with_state() {
    let (_, bytes) = vectors("produced_messages").remove(0);
    let decoded: ProducedMessages = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(decoded.schema, Schema::Json);
    assert_eq!(
        decoded.messages[0].headers.as_ref(),
        Some(&expected_headers())
    );
    let state: NatsLikeState = decoded.state.unwrap().deserialize("golden", 1).unwrap();
    assert_eq!(
        state,
        NatsLikeState {
            stream_sequence: 42,
            consumer: "c1".into()
        }
    );

    let state = NatsLikeState {
        stream_sequence: 42,
        consumer: "c1".into(),
    };
    let built = ProducedMessages {
        schema: Schema::Json,
        messages: vec![
            ProducedMessage {
                id: Some(77),
                checksum: None,
                timestamp: Some(1763720000000000),
                origin_timestamp: None,
                headers: Some(expected_headers()),
                payload: br#"{"k":"v"}"#.to_vec(),
            },
            ProducedMessage {
                id: None,
                checksum: None,
                timestamp: None,
                origin_timestamp: None,
                headers: None,
                payload: b"plain".to_vec(),
            },
        ],
        state: ConnectorState::serialize(&state, "golden", 1),
    };
    assert_eq!(postcard::to_allocvec(&built).unwrap(), bytes);
}

#[test]
fn empty_produced_messages() {
    let (_, bytes) = vectors("produced_messages").remove(1);
    let decoded: ProducedMessages = postcard::from_bytes(&bytes).unwrap();
    assert_eq!((decoded.schema, decoded.messages.len()), (Schema::Text, 0));
    assert!(decoded.state.is_none());
    let built = ProducedMessages {
        schema: Schema::Text,
        messages: vec![],
        state: None,
    };
    assert_eq!(postcard::to_allocvec(&built).unwrap(), bytes);
}
