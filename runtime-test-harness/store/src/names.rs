//! Stream, topic and consumer-group names become directory names on disk, so
//! anything that could escape or alias a directory is rejected in every mode.

use crate::error::StoreError;

/// Longest name in bytes; also the usual file-name limit of file systems.
pub(crate) const MAX_LEN: usize = 255;

pub(crate) fn validate(kind: &'static str, name: &str) -> Result<(), StoreError> {
    match problem(name) {
        None => Ok(()),
        Some(reason) => Err(StoreError::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        }),
    }
}

pub(crate) fn is_valid(name: &str) -> bool {
    problem(name).is_none()
}

fn problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_LEN {
        Some("must be at most 255 bytes long")
    } else if name == "." || name == ".." {
        Some("must not be \".\" or \"..\"")
    } else if name.contains(['/', '\\', '\0']) {
        Some("must not contain '/', '\\' or NUL")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "orders",
            "a",
            "with space",
            "dots.in.name",
            "ünïcode",
            "...",
        ] {
            assert!(is_valid(name), "{name:?}");
        }
        assert!(is_valid(&"x".repeat(MAX_LEN)));
    }

    #[test]
    fn rejects_names_that_are_unsafe_as_directories() {
        let too_long = "x".repeat(MAX_LEN + 1);
        for name in ["", ".", "..", "a/b", "a\\b", "nul\0byte", too_long.as_str()] {
            assert!(!is_valid(name), "{name:?}");
            assert!(matches!(
                validate("stream", name),
                Err(StoreError::InvalidName { kind: "stream", .. })
            ));
        }
    }
}
