//! The target stream per message: a fixed name or a template such as
//! `iggy-{stream}-{topic}` or `orders-{header.region}` (the shared message
//! template; S2 checks the names).

use iggy_connector_common::template::MessageTemplate;
use iggy_connector_sdk::{ConsumedMessage, TopicMetadata};

#[derive(Debug, Clone)]
pub struct StreamTemplate {
    template: MessageTemplate,
}

impl StreamTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let template = MessageTemplate::parse("stream", template, false)?;
        if let Some(fixed) = template.fixed() {
            iggy_connector_s2_common::stream_name(fixed).map_err(|e| format!("stream: {e}"))?;
        }
        Ok(Self { template })
    }

    /// The name when the template has no placeholder.
    pub fn fixed(&self) -> Option<&str> {
        self.template.fixed()
    }

    /// Whether every message of one partition batch goes to the same stream.
    pub fn per_batch(&self) -> bool {
        !self.template.depends_on_message()
    }

    pub fn render(
        &self,
        topic: &TopicMetadata,
        partition: u32,
        message: &ConsumedMessage,
    ) -> Result<String, String> {
        self.template.render(topic, partition, message, |_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::HeaderKey;
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
