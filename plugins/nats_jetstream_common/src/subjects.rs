//! NATS subject wildcards: `*` stands for one token, `>` for one or more
//! trailing tokens.

/// Whether the literal `subject` falls under `filter`.
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (literal, Some(other)) if literal == other => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// Whether some subject falls under both filters.
pub fn overlap(a: &str, b: &str) -> bool {
    let (mut left, mut right) = (a.split('.'), b.split('.'));
    loop {
        match (left.next(), right.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some("*"), Some(_)) | (Some(_), Some("*")) => {}
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_matching() {
        assert!(matches("orders.>", "orders.eu.created"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches("orders.*.created", "orders.us.created"));
        assert!(!matches("orders.*.created", "orders.us.deleted"));
        assert!(!matches("orders.*", "orders.us.created"));
        assert!(matches("orders", "orders"));
        assert!(!matches("orders", "orders.eu"));
    }

    #[test]
    fn filter_overlap() {
        assert!(overlap("orders.>", "orders.eu.*"));
        assert!(overlap("orders.*.created", "orders.eu.>"));
        assert!(overlap("a.b", "a.b"));
        assert!(!overlap("orders.eu.>", "orders.us.>"));
        assert!(!overlap("orders.*", "orders.*.x"));
        assert!(!overlap("orders", "orders.>"));
        assert!(overlap(">", "anything.at.all"));
    }
}
