//! Turns the runtime's JSON `plugin_config` into the connector's config type,
//! with errors that name the offending field and never echo string values
//! (they may be credentials).

use serde::de::DeserializeOwned;

pub(crate) fn parse<C: DeserializeOwned>(bytes: &[u8]) -> Result<C, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "configuration is not UTF-8".to_string())?;
    let mut value: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| format!("configuration is not valid JSON: {error}"))?;
    // A connector file without `[plugin_config]` arrives as `null`; treat it
    // as an empty table so configs whose fields all have defaults still open.
    if value.is_null() {
        value = serde_json::Value::Object(Default::default());
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let reason = redact_strings(&error.into_inner().to_string());
        if path == "." {
            reason
        } else {
            format!("field `{path}`: {reason}")
        }
    })
}

/// serde writes an offending string as `string "..."`; hide its content.
fn redact_strings(reason: &str) -> String {
    const MARK: &str = "string \"";
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(start) = rest.find(MARK) {
        let content = &rest[start + MARK.len()..];
        let Some(end) = content.find('"') else { break };
        out.push_str(&rest[..start]);
        out.push_str("a string");
        rest = &content[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        #[serde(default)]
        servers: Vec<String>,
        #[serde(default)]
        retry: Retry,
    }

    #[derive(Debug, Default, Deserialize)]
    #[allow(dead_code)]
    struct Retry {
        max_attempts: u32,
    }

    #[test]
    fn null_means_all_defaults() {
        let config: Config = parse(b"null").unwrap();
        assert!(config.servers.is_empty());
    }

    #[test]
    fn nested_field_is_named() {
        let error = parse::<Config>(br#"{"retry":{"max_attempts":"secret-ish"}}"#).unwrap_err();
        assert!(error.contains("retry.max_attempts"), "{error}");
        assert!(!error.contains("secret-ish"), "{error}");
    }

    #[test]
    fn unknown_and_bad_json_are_explained() {
        let error = parse::<Config>(br#"{"servrs":[]}"#).unwrap_err();
        assert!(error.contains("servrs"), "{error}");
        let error = parse::<Config>(b"{").unwrap_err();
        assert!(
            error.starts_with("configuration is not valid JSON"),
            "{error}"
        );
        assert_eq!(
            parse::<Config>(&[0xff]).unwrap_err(),
            "configuration is not UTF-8"
        );
    }
}
