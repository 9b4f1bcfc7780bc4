//! Subjects built per message from a template such as
//! `orders.{topic}.{payload.region}`: the shared message template, with NATS
//! subject rules on each filled-in value and on the result.

use iggy_connector_common::template::MessageTemplate;
use iggy_connector_sdk::{ConsumedMessage, TopicMetadata};

#[derive(Debug, Clone)]
pub struct SubjectTemplate {
    template: MessageTemplate,
}

impl SubjectTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        let template = MessageTemplate::parse("subject", template, true)?;
        if let Some(subject) = template.fixed() {
            check_subject(subject).map_err(|e| format!("subject: {e}"))?;
        }
        Ok(Self { template })
    }

    pub fn fixed(&self) -> Option<&str> {
        self.template.fixed()
    }

    /// The template with each placeholder as `*`: the subjects it can produce.
    pub fn wildcard_form(&self) -> String {
        self.template.with_placeholders_as("*")
    }

    /// Renders the subject for one message, or says why it cannot.
    pub fn render(
        &self,
        topic: &TopicMetadata,
        partition: u32,
        message: &ConsumedMessage,
    ) -> Result<String, String> {
        let subject = self
            .template
            .render(topic, partition, message, check_token)?;
        check_subject(&subject)?;
        Ok(subject)
    }
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
    use iggy_connector_sdk::Payload;

    fn message(payload: &str) -> ConsumedMessage {
        let mut bytes = payload.as_bytes().to_vec();
        ConsumedMessage {
            id: 1,
            offset: 7,
            checksum: 0,
            timestamp: 0,
            origin_timestamp: 0,
            headers: None,
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
    fn values_must_stay_one_subject_token() {
        let template = SubjectTemplate::parse("o.{topic}.{payload.region}").unwrap();
        assert_eq!(
            template
                .render(&topic(), 1, &message(r#"{"region":"eu"}"#))
                .unwrap(),
            "o.orders.eu"
        );
        assert_eq!(template.wildcard_form(), "o.*.*");
        for bad in [
            r#"{"region":"a.b"}"#,
            r#"{"region":""}"#,
            r#"{"region":"a b"}"#,
            r#"{"region":">"}"#,
        ] {
            let error = template.render(&topic(), 1, &message(bad)).unwrap_err();
            assert!(
                error.contains("cannot be a subject token"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn fixed_subjects_must_be_publishable() {
        assert!(
            SubjectTemplate::parse("o.>")
                .unwrap_err()
                .contains("not a valid publish subject")
        );
        assert!(
            SubjectTemplate::parse("o..x")
                .unwrap_err()
                .contains("not a valid publish subject")
        );
        assert_eq!(
            SubjectTemplate::parse("orders.new").unwrap().fixed(),
            Some("orders.new")
        );
        assert!(
            SubjectTemplate::parse("o.{nope}")
                .unwrap_err()
                .starts_with("subject: unknown placeholder")
        );
    }
}
