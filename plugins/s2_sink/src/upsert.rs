//! Keyed changelog records: the key from payload fields (a JSON object in
//! `@key`) and the action as `u` (insert, update) or `d` (delete) in
//! `@action`, as the S2 Flink upsert sink writes them.

use crate::config::UpsertSettings;
use iggy_common::HeaderKey;
use iggy_connector_sdk::{ConsumedMessage, Payload, owned_value_to_serde_json};
use simd_json::prelude::*;

pub const KEY_HEADER: &str = "@key";
pub const ACTION_HEADER: &str = "@action";

#[derive(Debug)]
pub struct Upsert {
    key_fields: Vec<String>,
    action: ActionSource,
}

#[derive(Debug)]
enum ActionSource {
    Header(HeaderKey),
    Field(String),
}

impl Upsert {
    pub fn new(settings: &UpsertSettings) -> Result<Self, String> {
        let action = match (&settings.action_header, &settings.action_field) {
            (Some(header), None) => ActionSource::Header(
                HeaderKey::try_from(header.as_str())
                    .map_err(|e| format!("upsert.action_header: `{header}`: {e}"))?,
            ),
            (None, Some(field)) => ActionSource::Field(field.clone()),
            _ => return Err("upsert: give exactly one of action_header or action_field".into()),
        };
        Ok(Self {
            key_fields: settings.key_fields.clone(),
            action,
        })
    }

    /// The `@key` and `@action` values for one message.
    pub fn key_and_action(
        &self,
        message: &ConsumedMessage,
    ) -> Result<(String, &'static str), String> {
        let Payload::Json(row) = &message.payload else {
            return Err("upsert needs JSON payloads (schema = \"json\")".into());
        };
        let mut key = serde_json::Map::new();
        for field in &self.key_fields {
            let value = row
                .get(field.as_str())
                .ok_or_else(|| format!("key field `{field}` is missing"))?;
            key.insert(field.clone(), owned_value_to_serde_json(value));
        }
        let action = match &self.action {
            ActionSource::Header(name) => message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.to_string_value())
                .ok_or_else(|| format!("action header `{name}` is missing"))?,
            ActionSource::Field(field) => row
                .get(field.as_str())
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| format!("action field `{field}` is missing or not a string"))?,
        };
        Ok((
            serde_json::Value::Object(key).to_string(),
            changelog_action(&action)?,
        ))
    }
}

/// insert/update (and Debezium's c, r, u) → `u`; delete (Debezium d) → `d`.
fn changelog_action(action: &str) -> Result<&'static str, String> {
    match action.to_ascii_lowercase().as_str() {
        "insert" | "update" | "c" | "r" | "u" => Ok("u"),
        "delete" | "d" => Ok("d"),
        other => Err(format!(
            "action `{other}` is not insert, update, delete or a Debezium op (c, r, u, d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::HeaderValue;

    fn message(json: &str, action_header: Option<&str>) -> ConsumedMessage {
        let mut bytes = json.as_bytes().to_vec();
        let value = simd_json::to_owned_value(&mut bytes).unwrap();
        ConsumedMessage {
            id: 1,
            offset: 0,
            checksum: 0,
            timestamp: 0,
            origin_timestamp: 0,
            headers: action_header.map(|a| {
                [(
                    HeaderKey::try_from("op").unwrap(),
                    HeaderValue::try_from(a).unwrap(),
                )]
                .into()
            }),
            payload: Payload::Json(value),
        }
    }

    fn settings(header: bool) -> UpsertSettings {
        UpsertSettings {
            key_fields: vec!["tenant".into(), "id".into()],
            action_header: header.then(|| "op".into()),
            action_field: (!header).then(|| "op".into()),
        }
    }

    #[test]
    fn actions_from_a_field_or_a_header() {
        let by_field = Upsert::new(&settings(false)).unwrap();
        for (op, expected) in [
            ("c", "u"),
            ("r", "u"),
            ("u", "u"),
            ("d", "d"),
            ("INSERT", "u"),
        ] {
            let m = message(&format!(r#"{{"id":7,"tenant":"a","op":"{op}"}}"#), None);
            let (key, action) = by_field.key_and_action(&m).unwrap();
            assert_eq!(key, r#"{"id":7,"tenant":"a"}"#);
            assert_eq!(action, expected);
        }
        let by_header = Upsert::new(&settings(true)).unwrap();
        let m = message(r#"{"id":7,"tenant":"a"}"#, Some("delete"));
        assert_eq!(by_header.key_and_action(&m).unwrap().1, "d");
    }

    #[test]
    fn missing_or_unknown_values_are_errors() {
        let by_field = Upsert::new(&settings(false)).unwrap();
        let cases = [
            (r#"{"tenant":"a","op":"c"}"#, "`id`"),
            (r#"{"id":1,"tenant":"a"}"#, "action field"),
            (r#"{"id":1,"tenant":"a","op":"merge"}"#, "merge"),
        ];
        for (json, expected) in cases {
            let error = by_field.key_and_action(&message(json, None)).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let by_header = Upsert::new(&settings(true)).unwrap();
        let error = by_header
            .key_and_action(&message(r#"{"id":1,"tenant":"a"}"#, None))
            .unwrap_err();
        assert!(error.contains("action header"), "{error}");
    }
}
