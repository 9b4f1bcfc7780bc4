//! A job's metrics sample: per vertex, records and bytes in and out (Flink
//! counts them on network edges, so a fully chained job reports zeros),
//! backpressure, watermark lag, and for sources the records not yet read
//! (`pendingRecords`, where the connector reports it); plus the job's restarts.
//! A figure Flink does not report is `null`.

use crate::client::rest::{JobDetail, MetricValue, Rest, Vertex};
use serde_json::{Value, json};

pub async fn sample(rest: &Rest, detail: &JobDetail, now_ms: i64) -> Value {
    let sources: Vec<&str> = detail
        .source_vertices()
        .iter()
        .map(|vertex| vertex.id.as_str())
        .collect();
    let mut vertices = Vec::with_capacity(detail.vertices.len());
    for vertex in &detail.vertices {
        let is_source = sources.contains(&vertex.id.as_str());
        vertices.push(vertex_sample(rest, &detail.jid, vertex, is_source, now_ms).await);
    }
    let restarts = rest
        .job_metrics(&detail.jid, &["numRestarts"])
        .await
        .ok()
        .and_then(|values| values.first().and_then(|v| v.value.parse::<i64>().ok()));
    json!({
        "state": detail.state,
        "restarts": restarts,
        "vertices": vertices,
    })
}

async fn vertex_sample(
    rest: &Rest,
    jid: &str,
    vertex: &Vertex,
    is_source: bool,
    now_ms: i64,
) -> Value {
    let backpressure = rest.backpressure(jid, &vertex.id).await.ok();
    let level = backpressure.as_ref().and_then(|b| b.level.clone());
    let ratio = backpressure.as_ref().and_then(|b| {
        b.subtasks
            .iter()
            .filter_map(|subtask| subtask.ratio.as_f64())
            .reduce(f64::max)
    });
    let watermark_lag = rest
        .watermarks(jid, &vertex.id)
        .await
        .ok()
        .and_then(|values| watermark_lag_ms(&values, now_ms));
    let pending = if is_source {
        rest.vertex_metrics_ending(jid, &vertex.id, ".pendingRecords")
            .await
            .ok()
            .and_then(|values| sum(&values))
    } else {
        None
    };
    let metrics = &vertex.metrics;
    json!({
        "id": vertex.id,
        "name": vertex.name,
        "parallelism": vertex.parallelism,
        "status": vertex.status,
        "source": is_source,
        "records_in": metrics.read_records,
        "records_out": metrics.write_records,
        "bytes_in": metrics.read_bytes,
        "bytes_out": metrics.write_bytes,
        "backpressured_ms": metrics.backpressured_ms,
        "backpressure_level": level,
        "backpressure_ratio": ratio,
        "watermark_lag_ms": watermark_lag,
        "pending_records": pending,
    })
}

/// Now minus the slowest subtask's watermark; `None` without watermarks
/// (Flink reports `Long.MIN_VALUE` before the first one).
fn watermark_lag_ms(values: &[MetricValue], now_ms: i64) -> Option<i64> {
    values
        .iter()
        .filter_map(|v| v.value.parse::<i64>().ok())
        .filter(|watermark| *watermark > 0)
        .min()
        .map(|watermark| now_ms.saturating_sub(watermark).max(0))
}

fn sum(values: &[MetricValue]) -> Option<i64> {
    values
        .iter()
        .filter_map(|v| v.value.parse::<i64>().ok())
        .reduce(|a, b| a.saturating_add(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (metric id, value) pairs as Flink lists them; only values are read.
    fn values(pairs: &[(&str, &str)]) -> Vec<MetricValue> {
        pairs
            .iter()
            .map(|(_, value)| MetricValue {
                value: value.to_string(),
            })
            .collect()
    }

    #[test]
    fn watermark_lag_uses_the_slowest_subtask_and_ignores_none() {
        // rest-insert-14-vertex1-watermarks.json and rest-jar-12 (no watermark yet).
        let recorded = values(&[("0.currentInputWatermark", "1795255015967")]);
        assert_eq!(watermark_lag_ms(&recorded, 1_795_255_022_459), Some(6492));
        let none = values(&[("0.currentInputWatermark", "-9223372036854775808")]);
        assert_eq!(watermark_lag_ms(&none, 1), None);
        let two = values(&[("0.w", "100"), ("1.w", "40")]);
        assert_eq!(watermark_lag_ms(&two, 150), Some(110));
    }

    #[test]
    fn pending_records_add_up() {
        let pending = values(&[
            ("0.Source__k.pendingRecords", "5"),
            ("1.Source__k.pendingRecords", "7"),
        ]);
        assert_eq!(sum(&pending), Some(12));
        assert_eq!(sum(&[]), None);
    }
}
