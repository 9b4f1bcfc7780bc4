//! `produce` and `dump`: moving messages between a topic and JSON lines.
//!
//! Input lines are either a payload as is, or (with `--envelope`) an object
//! `{"id": "…", "headers": {"k": "v"}, "payload": …}` whose string headers
//! become string header values. Output lines always use the envelope form,
//! with the payload as JSON when it parses, else as text, else as Base64.

use iggy_common::{HeaderKey, HeaderValue, UserHeaders};
use iggy_harness_store::{NewMessage, StoredMessage, StreamStore};
use serde::Deserialize;
use std::io::{BufRead, Write};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    payload: serde_json::Value,
}

fn envelope_message(line: &str, number: usize) -> Result<NewMessage<'static>, String> {
    let envelope: Envelope =
        serde_json::from_str(line).map_err(|e| format!("line {number}: not an envelope: {e}"))?;
    let mut headers = UserHeaders::new();
    for (key, value) in &envelope.headers {
        let key = HeaderKey::try_from(key.as_str())
            .map_err(|e| format!("line {number}: header `{key}`: {e}"))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|e| format!("line {number}: header value: {e}"))?;
        headers.insert(key, value);
    }
    let payload = match envelope.payload {
        serde_json::Value::String(text) => text.into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let id = match envelope.id {
        Some(id) => id
            .parse::<u128>()
            .map_err(|_| format!("line {number}: id `{id}` is not a number"))?,
        None => 0,
    };
    let headers = if headers.is_empty() {
        Vec::new()
    } else {
        postcard::to_allocvec(&headers).map_err(|e| e.to_string())?
    };
    Ok(NewMessage {
        id,
        timestamp: None,
        origin_timestamp: 0,
        headers: headers.into(),
        payload: payload.into(),
    })
}

/// Reads JSON lines into the topic in batches of 1000; returns how many were written.
pub fn produce_lines(
    store: &StreamStore,
    stream: &str,
    topic: &str,
    input: impl BufRead,
    envelope: bool,
) -> Result<u64, String> {
    let mut batch = Vec::new();
    let mut written = 0u64;
    let flush = |batch: &mut Vec<NewMessage<'_>>| -> Result<u64, String> {
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len() as u64;
        store
            .append_balanced(stream, topic, std::mem::take(batch))
            .map_err(|e| e.to_string())?;
        Ok(n)
    };
    for (index, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("reading input: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push(if envelope {
            envelope_message(&line, index + 1)?
        } else {
            NewMessage::new(line.into_bytes())
        });
        if batch.len() == 1000 {
            written += flush(&mut batch)?;
        }
    }
    written += flush(&mut batch)?;
    Ok(written)
}

/// A JSON object of `payload_size` bytes (at least its `seq` part).
pub fn generated_payload(seq: u64, payload_size: usize) -> Vec<u8> {
    let mut payload = format!(r#"{{"seq":{seq},"pad":""#).into_bytes();
    let pad = payload_size.saturating_sub(payload.len() + 2);
    payload.resize(payload.len() + pad, b'x');
    payload.extend_from_slice(b"\"}");
    payload
}

pub fn produce_generated(
    store: &StreamStore,
    stream: &str,
    topic: &str,
    count: u64,
    payload_size: usize,
) -> Result<u64, String> {
    let mut seq = 0u64;
    while seq < count {
        let end = count.min(seq + 1000);
        let batch = (seq..end)
            .map(|n| NewMessage::new(generated_payload(n, payload_size)))
            .collect();
        store
            .append_balanced(stream, topic, batch)
            .map_err(|e| e.to_string())?;
        seq = end;
    }
    Ok(count)
}

/// The Iggy headers a stored message carries (none when it has none).
pub fn headers(message: &StoredMessage) -> Result<UserHeaders, postcard::Error> {
    if message.headers.is_empty() {
        return Ok(UserHeaders::new());
    }
    postcard::from_bytes(&message.headers)
}

pub fn message_json(partition: u32, message: &StoredMessage) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = match headers(message) {
        Ok(map) => map
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string_value(),
                    serde_json::Value::String(v.to_string()),
                )
            })
            .collect(),
        Err(_) => [("<undecodable>".to_string(), serde_json::Value::Bool(true))]
            .into_iter()
            .collect(),
    };
    let payload = serde_json::from_slice::<serde_json::Value>(&message.payload)
        .or_else(|_| std::str::from_utf8(&message.payload).map(|t| serde_json::Value::String(t.to_string())))
        .unwrap_or_else(|_| {
            use base64::Engine;
            serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(&message.payload) })
        });
    serde_json::json!({
        "partition": partition,
        "offset": message.offset,
        "id": message.id.to_string(),
        "timestamp": message.timestamp,
        "origin_timestamp": message.origin_timestamp,
        "headers": headers,
        "payload": payload,
    })
}

/// Writes the topic's messages as JSON lines; returns how many.
pub fn dump(
    store: &StreamStore,
    stream: &str,
    topic: &str,
    partition: Option<u32>,
    from: u64,
    max: u64,
    out: &mut impl Write,
) -> Result<u64, String> {
    let info = store
        .topic_info(stream, topic)
        .ok_or_else(|| format!("topic {stream}/{topic} does not exist"))?;
    let partitions: Vec<u32> = match partition {
        Some(p) => vec![p],
        None => (1..=info.partitions).collect(),
    };
    let mut written = 0u64;
    for partition in partitions {
        let mut offset = from;
        while written < max {
            let want = (max - written).min(1000) as usize;
            let batch = store
                .read(stream, topic, partition, offset, want)
                .map_err(|e| e.to_string())?;
            let Some(last) = batch.last() else { break };
            offset = last.offset + 1;
            for message in &batch {
                writeln!(out, "{}", message_json(partition, message)).map_err(|e| e.to_string())?;
                written += 1;
            }
        }
    }
    Ok(written)
}
