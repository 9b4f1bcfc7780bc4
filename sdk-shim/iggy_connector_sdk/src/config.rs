//! Turns the runtime's JSON `plugin_config` into the connector's config type,
//! with errors that name the offending field and never echo the value
//! (it may be a credential).

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
        let reason = redact_values(&error.into_inner().to_string());
        if path == "." {
            reason
        } else {
            format!("field `{path}`: {reason}")
        }
    })
}

/// serde quotes an offending value (`invalid type: integer `123456`,
/// expected ...`, `string "..."` with Rust escapes); put its kind in its
/// place.
fn redact_values(reason: &str) -> String {
    const QUOTED: [(&str, char, &str); 5] = [
        ("string \"", '"', "a string"),
        ("integer `", '`', "an integer"),
        ("floating point `", '`', "a floating point number"),
        ("boolean `", '`', "a boolean"),
        ("character `", '`', "a character"),
    ];
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some((start, mark, close, kind)) = QUOTED
        .iter()
        .filter_map(|&(mark, close, kind)| rest.find(mark).map(|at| (at, mark, close, kind)))
        .min_by_key(|(at, ..)| *at)
    {
        let content = &rest[start + mark.len()..];
        let Some(end) = closing_quote(content, close) else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(kind);
        rest = &content[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Where `close` ends `content`; a backslash escapes the next character
/// (inside `string "..."`, which serde writes with Rust's escapes).
fn closing_quote(content: &str, close: char) -> Option<usize> {
    let mut chars = content.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if close == '"' => {
                chars.next();
            }
            c if c == close => return Some(at),
            _ => {}
        }
    }
    None
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
    fn no_kind_of_value_is_echoed() {
        for (json, value, kind) in [
            (r#""se\"cret-tail""#, "cret-tail", "a string"),
            (r#""a\\""#, "a\\", "a string"),
            ("123456", "123456", "an integer"),
            ("-123456", "123456", "an integer"),
            ("12.5e3", "12500", "a floating point number"),
            ("true", "true", "a boolean"),
        ] {
            let config = format!(r#"{{"retry": {json}}}"#);
            let error = parse::<Config>(config.as_bytes()).unwrap_err();
            assert!(error.contains("field `retry`"), "{error}");
            assert!(error.contains(kind), "{error}");
            assert!(!error.contains(value), "{error}");
        }
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
