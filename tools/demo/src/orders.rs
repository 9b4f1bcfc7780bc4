//! The demo's input: order events, three per order (created, then updated,
//! then updated again or, for every fourth order, deleted), so the upsert
//! sink sees every changelog action. Each event has a unique `event_id` and
//! `created_at`, which is what the end-to-end checks count.

use iggy_harness_store::{NewMessage, StreamStore};

pub const STREAM: &str = "shop";
pub const TOPIC: &str = "orders";

/// Milliseconds of the first event (2026-01-01T00:00:00Z); one ms apart.
const FIRST_CREATED_AT: u64 = 1_767_225_600_000;

pub fn op(event_id: u64) -> &'static str {
    let order_id = event_id / 3;
    match event_id % 3 {
        0 => "c",
        1 => "u",
        _ if order_id.is_multiple_of(4) => "d",
        _ => "u",
    }
}

pub fn event(event_id: u64) -> serde_json::Value {
    let order_id = event_id / 3;
    serde_json::json!({
        "event_id": event_id,
        "order_id": order_id,
        "op": op(event_id),
        "region": if order_id.is_multiple_of(2) { "eu" } else { "us" },
        "amount": (order_id % 997) as f64 * 1.25 + 0.5,
        "customer": { "id": order_id % 101, "vip": order_id.is_multiple_of(7) },
        "created_at": FIRST_CREATED_AT + event_id,
    })
}

/// Appends `count` events to `shop/orders`, spread over its partitions.
pub fn produce(store: &StreamStore, partitions: u32, count: u64) -> Result<(), String> {
    store
        .ensure_topic(STREAM, TOPIC, partitions)
        .map_err(|e| e.to_string())?;
    let mut next = 0;
    while next < count {
        let end = count.min(next + 1000);
        let batch = (next..end)
            .map(|id| NewMessage::new(event(id).to_string().into_bytes()))
            .collect();
        store
            .append_balanced(STREAM, TOPIC, batch)
            .map_err(|e| e.to_string())?;
        next = end;
    }
    store.sync().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_gets_created_updated_then_updated_or_deleted() {
        let ops: Vec<&str> = (0..12).map(op).collect();
        assert_eq!(
            ops,
            ["c", "u", "d", "c", "u", "u", "c", "u", "u", "c", "u", "u"]
        );
        assert_eq!(event(5)["order_id"], 1);
        assert_eq!(event(5)["region"], "us");
        assert_ne!(event(4)["created_at"], event(5)["created_at"]);
    }
}
