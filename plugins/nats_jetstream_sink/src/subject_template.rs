//! Subjects built per message from a template such as
//! `orders.{topic}.{payload.region}`.

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
pub struct SubjectTemplate {
    parts: Vec<Part>,
    /// A fixed subject is rendered once.
    fixed: Option<String>,
}

impl SubjectTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let end = rest[start..]
                .find('}')
                .map(|i| start + i)
                .ok_or_else(|| format!("subject: `{template}` has a `{{` without `}}`"))?;
            let name = &rest[start + 1..end];
            parts.push(match name {
                "stream" => Part::Stream,
                "topic" => Part::Topic,
                "partition" => Part::Partition,
                _ => match name.split_once('.') {
                    Some(("header", key)) if !key.is_empty() => Part::Header(
                        HeaderKey::try_from(key).map_err(|e| format!("subject: header `{key}`: {e}"))?,
                    ),
                    Some(("payload", field)) if !field.is_empty() && !field.contains('.') => {
                        Part::PayloadField(field.to_string())
                    }
                    _ => {
                        return Err(format!(
                            "subject: unknown placeholder `{{{name}}}` (use stream, topic, partition, header.NAME or payload.FIELD)"
                        ));
                    }
                },
            });
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("subject must not be empty".into());
        }
        let fixed = match parts.as_slice() {
            [Part::Literal(subject)] => {
                check_subject(subject).map_err(|e| format!("subject: {e}"))?;
                Some(subject.clone())
            }
            _ => None,
        };
        Ok(Self { parts, fixed })
    }

    pub fn fixed(&self) -> Option<&str> {
        self.fixed.as_deref()
    }

    /// The template with each placeholder as `*`: the subjects it can produce.
    pub fn wildcard_form(&self) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.as_str(),
                _ => "*",
            })
            .collect()
    }

    /// Renders the subject for one message, or says why it cannot.
    pub fn render(
        &self,
        topic: &TopicMetadata,
        partition: u32,
        message: &ConsumedMessage,
    ) -> Result<String, String> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let mut subject = String::with_capacity(64);
        for part in &self.parts {
            let value = match part {
                Part::Literal(text) => {
                    subject.push_str(text);
                    continue;
                }
                Part::Stream => topic.stream.clone(),
                Part::Topic => topic.topic.clone(),
                Part::Partition => partition.to_string(),
                Part::Header(key) => header_text(message, key)?,
                Part::PayloadField(field) => payload_field(&message.payload, field)?,
            };
            check_token(&value)?;
            subject.push_str(&value);
        }
        check_subject(&subject)?;
        Ok(subject)
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

/// A value placed into a subject must stay one token.
fn check_token(value: &str) -> Result<(), String> {
    if value.is_empty() || value.contains(['.', '*', '>']) || value.chars().any(char::is_whitespace)
    {
        return Err(format!(
            "`{value}` cannot be a subject token (empty, or has `.`, `*`, `>` or whitespace)"
        ));
    }
    Ok(())
}

fn check_subject(subject: &str) -> Result<(), String> {
    if subject.is_empty()
        || subject.split('.').any(str::is_empty)
        || subject.contains(['*', '>'])
        || subject.chars().any(char::is_whitespace)
    {
        return Err(format!("`{subject}` is not a valid publish subject"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::HeaderValue;
    use std::collections::BTreeMap;

    fn message(payload: &str, region_header: Option<&str>) -> ConsumedMessage {
        let mut bytes = payload.as_bytes().to_vec();
        ConsumedMessage {
            id: 1,
            offset: 7,
            checksum: 0,
            timestamp: 0,
            origin_timestamp: 0,
            headers: region_header.map(|r| {
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
        let template = SubjectTemplate::parse(
            "x.{stream}.{topic}.{partition}.{header.region}.{payload.kind}.{payload.n}",
        )
        .unwrap();
        let subject = template
            .render(&topic(), 3, &message(r#"{"kind":"new","n":5}"#, Some("eu")))
            .unwrap();
        assert_eq!(subject, "x.shop.orders.3.eu.new.5");
        assert_eq!(template.wildcard_form(), "x.*.*.*.*.*.*");
        assert_eq!(template.fixed(), None);
    }

    #[test]
    fn unresolvable_values_say_why() {
        let template = SubjectTemplate::parse("o.{payload.region}").unwrap();
        let err = |payload| {
            template
                .render(&topic(), 1, &message(payload, None))
                .unwrap_err()
        };
        assert!(err(r#"{"x":1}"#).contains("payload field `region` is missing"));
        assert!(err(r#"{"region":"a.b"}"#).contains("cannot be a subject token"));
        assert!(err(r#"{"region":{"a":1}}"#).contains("not a string"));
        assert!(err(r#"{"region":""}"#).contains("cannot be a subject token"));
        let header = SubjectTemplate::parse("o.{header.region}").unwrap();
        assert!(
            header
                .render(&topic(), 1, &message("{}", None))
                .unwrap_err()
                .contains("header `region`")
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(
            SubjectTemplate::parse("o.{nope}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(
            SubjectTemplate::parse("o.{topic")
                .unwrap_err()
                .contains("without")
        );
        assert!(
            SubjectTemplate::parse("o.>")
                .unwrap_err()
                .contains("not a valid publish subject")
        );
        assert!(SubjectTemplate::parse("").is_err());
        assert_eq!(
            SubjectTemplate::parse("orders.new").unwrap().fixed(),
            Some("orders.new")
        );
    }
}
