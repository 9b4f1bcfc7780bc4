//! Names built per message from a template over the message's Iggy position
//! and content: `{stream}`, `{topic}`, `{partition}`, `{header.NAME}` and,
//! where the plugin allows it, `{payload.FIELD}` (a top-level JSON field).
//! Shared by the plugins that route messages (NATS subjects, S2 stream
//! names); each checks values and results with its own rules.

use iggy_common::HeaderKey;
use iggy_connector_sdk::{ConsumedMessage, Payload, TopicMetadata};
use simd_json::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Stream,
    Topic,
    Partition,
    Header(HeaderKey),
    PayloadField(String),
}

#[derive(Debug, Clone)]
pub struct MessageTemplate {
    parts: Vec<Part>,
}

impl MessageTemplate {
    /// Parses `template`; errors start with `setting` (the config key).
    /// `payload_fields` allows `{payload.FIELD}`.
    pub fn parse(setting: &str, template: &str, payload_fields: bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let end = rest[start..]
                .find('}')
                .map(|i| start + i)
                .ok_or_else(|| format!("{setting}: `{template}` has a `{{` without `}}`"))?;
            let name = &rest[start + 1..end];
            parts.push(match (name, name.split_once('.')) {
                ("stream", _) => Part::Stream,
                ("topic", _) => Part::Topic,
                ("partition", _) => Part::Partition,
                (_, Some(("header", key))) if !key.is_empty() => Part::Header(
                    HeaderKey::try_from(key).map_err(|e| format!("{setting}: header `{key}`: {e}"))?,
                ),
                (_, Some(("payload", field))) if payload_fields && !field.is_empty() && !field.contains('.') => {
                    Part::PayloadField(field.to_string())
                }
                _ => {
                    let payload = if payload_fields { ", payload.FIELD" } else { "" };
                    return Err(format!(
                        "{setting}: unknown placeholder `{{{name}}}` (use stream, topic, partition, header.NAME{payload})"
                    ));
                }
            });
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if parts.is_empty() {
            return Err(format!("{setting} must not be empty"));
        }
        Ok(Self { parts })
    }

    /// The name when the template has no placeholder.
    pub fn fixed(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// Whether the name can differ between messages of one partition batch.
    pub fn depends_on_message(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Header(_) | Part::PayloadField(_)))
    }

    /// The template with every placeholder replaced by `text` (e.g. a wildcard).
    pub fn with_placeholders_as(&self, text: &str) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(literal) => literal.as_str(),
                _ => text,
            })
            .collect()
    }

    /// The name for one message; each placeholder's value must pass `check_value`.
    pub fn render(
        &self,
        topic: &TopicMetadata,
        partition: u32,
        message: &ConsumedMessage,
        check_value: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String, String> {
        let mut name = String::with_capacity(64);
        for part in &self.parts {
            let value = match part {
                Part::Literal(text) => {
                    name.push_str(text);
                    continue;
                }
                Part::Stream => topic.stream.clone(),
                Part::Topic => topic.topic.clone(),
                Part::Partition => partition.to_string(),
                Part::Header(key) => header_text(message, key)?,
                Part::PayloadField(field) => payload_field(&message.payload, field)?,
            };
            check_value(&value)?;
            name.push_str(&value);
        }
        Ok(name)
    }
}

fn header_text(message: &ConsumedMessage, key: &HeaderKey) -> Result<String, String> {
    let value = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(key))
        .ok_or_else(|| format!("header `{}` is missing", key.to_string_value()))?;
    Ok(value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|_| value.to_string_value()))
}

fn payload_field(payload: &Payload, field: &str) -> Result<String, String> {
    let Payload::Json(value) = payload else {
        return Err(format!("payload.{field} needs a JSON payload"));
    };
    let found = value
        .get(field)
        .ok_or_else(|| format!("payload field `{field}` is missing"))?;
    if let Some(text) = found.as_str() {
        return Ok(text.to_string());
    }
    if found.is_bool() || found.is_number() {
        return Ok(found.to_string());
    }
    Err(format!(
        "payload field `{field}` is not a string, number or boolean"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::HeaderValue;
    use std::collections::BTreeMap;

    fn message(payload: &str, region: Option<&str>) -> ConsumedMessage {
        let mut bytes = payload.as_bytes().to_vec();
        ConsumedMessage {
            id: 1,
            offset: 7,
            checksum: 0,
            timestamp: 0,
            origin_timestamp: 0,
            headers: region.map(|r| {
                BTreeMap::from([(
                    HeaderKey::try_from("region").unwrap(),
                    HeaderValue::try_from(r).unwrap(),
                )])
            }),
            payload: Payload::Json(simd_json::to_owned_value(&mut bytes).unwrap()),
        }
    }

    fn topic() -> TopicMetadata {
        TopicMetadata {
            stream: "shop".into(),
            topic: "orders".into(),
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let template = MessageTemplate::parse(
            "subject",
            "x.{stream}.{topic}.{partition}.{header.region}.{payload.kind}.{payload.n}",
            true,
        )
        .unwrap();
        let name = template
            .render(
                &topic(),
                3,
                &message(r#"{"kind":"new","n":5}"#, Some("eu")),
                |_| Ok(()),
            )
            .unwrap();
        assert_eq!(name, "x.shop.orders.3.eu.new.5");
        assert_eq!(template.with_placeholders_as("*"), "x.*.*.*.*.*.*");
        assert!(template.depends_on_message());
        assert_eq!(template.fixed(), None);
        let fixed = MessageTemplate::parse("stream", "orders", false).unwrap();
        assert_eq!(fixed.fixed(), Some("orders"));
        assert!(!fixed.depends_on_message());
    }

    #[test]
    fn missing_and_unusable_values_say_why() {
        let template = MessageTemplate::parse("subject", "o.{payload.region}", true).unwrap();
        let error = |payload| {
            template
                .render(&topic(), 1, &message(payload, None), |_| Ok(()))
                .unwrap_err()
        };
        assert!(error(r#"{"x":1}"#).contains("payload field `region` is missing"));
        assert!(error(r#"{"region":{"a":1}}"#).contains("not a string"));
        let checked = template.render(&topic(), 1, &message(r#"{"region":"a.b"}"#, None), |v| {
            if v.contains('.') {
                Err(format!("`{v}` has a dot"))
            } else {
                Ok(())
            }
        });
        assert_eq!(checked.unwrap_err(), "`a.b` has a dot");
        let header = MessageTemplate::parse("stream", "o-{header.region}", false).unwrap();
        assert!(
            header
                .render(&topic(), 1, &message("{}", None), |_| Ok(()))
                .unwrap_err()
                .contains("header `region` is missing")
        );
    }

    #[test]
    fn bad_templates_name_the_setting() {
        for (template, payload, expected) in [
            ("o.{nope}", true, "subject: unknown placeholder"),
            ("o.{topic", true, "without"),
            ("", true, "subject must not be empty"),
            ("o.{payload.x}", false, "unknown placeholder"),
            ("o.{payload.a.b}", true, "unknown placeholder"),
        ] {
            let error = MessageTemplate::parse("subject", template, payload).unwrap_err();
            assert!(error.contains(expected), "{template}: {error}");
        }
    }
}
