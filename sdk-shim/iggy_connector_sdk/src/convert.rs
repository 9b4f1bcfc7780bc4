//! Conversions between simd-json values (what sinks receive) and serde_json values.

use simd_json::OwnedValue;
use simd_json::StaticNode;

/// Converts a JSON payload value into a `serde_json::Value`; non-finite floats become null.
pub fn owned_value_to_serde_json(value: &OwnedValue) -> serde_json::Value {
    match value {
        OwnedValue::Static(StaticNode::Null) => serde_json::Value::Null,
        OwnedValue::Static(StaticNode::Bool(b)) => serde_json::Value::Bool(*b),
        OwnedValue::Static(StaticNode::I64(n)) => serde_json::Value::from(*n),
        OwnedValue::Static(StaticNode::U64(n)) => serde_json::Value::from(*n),
        OwnedValue::Static(StaticNode::F64(n)) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        OwnedValue::String(s) => serde_json::Value::String(s.to_string()),
        OwnedValue::Array(items) => {
            serde_json::Value::Array(items.iter().map(owned_value_to_serde_json).collect())
        }
        OwnedValue::Object(fields) => serde_json::Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), owned_value_to_serde_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_convert() {
        let mut text =
            br#"{"a":[1,-2,2.5,null,true],"b":{"c":"d"},"e":18446744073709551615}"#.to_vec();
        let value = simd_json::to_owned_value(&mut text).unwrap();
        let converted = owned_value_to_serde_json(&value);
        assert_eq!(
            converted,
            serde_json::json!({"a":[1,-2,2.5,null,true],"b":{"c":"d"},"e":18446744073709551615u64})
        );
    }
}
