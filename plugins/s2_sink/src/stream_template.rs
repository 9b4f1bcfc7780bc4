//! The target stream per message: a fixed name or a template such as
//! `iggy-{stream}-{topic}` or `orders-{header.region}`.

use iggy_common::HeaderKey;
use iggy_connector_sdk::{ConsumedMessage, TopicMetadata};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Stream,
    Topic,
    Partition,
    Header(HeaderKey),
}

#[derive(Debug, Clone)]
pub struct StreamTemplate {
    parts: Vec<Part>,
}

impl StreamTemplate {
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
                .ok_or_else(|| format!("stream: `{template}` has a `{{` without `}}`"))?;
            let name = &rest[start + 1..end];
            parts.push(match name {
                "stream" => Part::Stream,
                "topic" => Part::Topic,
                "partition" => Part::Partition,
                _ => match name.strip_prefix("header.") {
                    Some(key) if !key.is_empty() => Part::Header(
                        HeaderKey::try_from(key)
                            .map_err(|e| format!("stream: header `{key}`: {e}"))?,
                    ),
                    _ => {
                        return Err(format!(
                            "stream: unknown placeholder `{{{name}}}` (use stream, topic, partition or header.NAME)"
                        ));
                    }
                },
            });
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        let template = Self { parts };
        if let Some(fixed) = template.fixed() {
            iggy_connector_shared::s2::stream_name(fixed).map_err(|e| format!("stream: {e}"))?;
        } else if template.parts.is_empty() {
            return Err("stream must not be empty".into());
        }
        Ok(template)
    }

    /// The name when the template has no placeholder.
    pub fn fixed(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Literal(name)] => Some(name),
            _ => None,
        }
    }

    /// Whether every message of one partition batch goes to the same stream.
    pub fn per_batch(&self) -> bool {
        !self.parts.iter().any(|p| matches!(p, Part::Header(_)))
    }

    pub fn render(
        &self,
        topic: &TopicMetadata,
        partition: u32,
        message: &ConsumedMessage,
    ) -> Result<String, String> {
        let mut name = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => name.push_str(text),
                Part::Stream => name.push_str(&topic.stream),
                Part::Topic => name.push_str(&topic.topic),
                Part::Partition => name.push_str(&partition.to_string()),
                Part::Header(key) => {
                    let value = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(key))
                        .ok_or_else(|| format!("no header `{key}` for the stream name"))?;
                    name.push_str(&value.to_string_value());
                }
            }
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::HeaderValue;
    use iggy_connector_sdk::Payload;
    use std::collections::BTreeMap;

    fn message(headers: &[(&str, &str)]) -> ConsumedMessage {
        let headers: BTreeMap<HeaderKey, HeaderValue> = headers
            .iter()
            .map(|(k, v)| {
                (
                    HeaderKey::try_from(*k).unwrap(),
                    HeaderValue::try_from(*v).unwrap(),
                )
            })
            .collect();
        ConsumedMessage {
            id: 1,
            offset: 0,
            checksum: 0,
            timestamp: 0,
            origin_timestamp: 0,
            headers: Some(headers),
            payload: Payload::Raw(vec![]),
        }
    }

    #[test]
    fn renders_placeholders() {
        let topic = TopicMetadata {
            stream: "shop".into(),
            topic: "orders".into(),
        };
        let t = StreamTemplate::parse("{stream}-{topic}-{partition}-{header.region}").unwrap();
        assert!(t.fixed().is_none());
        assert!(!t.per_batch());
        assert_eq!(
            t.render(&topic, 3, &message(&[("region", "eu")])).unwrap(),
            "shop-orders-3-eu"
        );
        assert!(
            t.render(&topic, 3, &message(&[]))
                .unwrap_err()
                .contains("region")
        );
        let fixed = StreamTemplate::parse("orders").unwrap();
        assert_eq!(fixed.fixed(), Some("orders"));
        assert!(fixed.per_batch());
    }

    #[test]
    fn bad_templates_are_refused() {
        for (template, expected) in [
            ("{nope}", "unknown placeholder"),
            ("a{topic", "without"),
            ("", "empty"),
        ] {
            let error = StreamTemplate::parse(template).unwrap_err();
            assert!(error.contains(expected), "{template}: {error}");
        }
    }
}
