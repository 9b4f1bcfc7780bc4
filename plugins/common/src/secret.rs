//! Secret config values that never end up in logs.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A credential from the plugin config.
///
/// `Debug` and `Display` print `***` so a secret can sit in a config struct
/// that is logged with `{:?}`. There is deliberately no `Serialize`.
///
/// In config it is either the value itself, `{ env = "VAR" }` to read an
/// environment variable, or `{ file = "/path" }` to read a file (trailing
/// newlines trimmed), so the secret need not be written into the config.
///
/// A number or boolean is taken as its text (`password = 123456` is the
/// secret `123456`), because the runtime's environment override of a
/// `[plugin_config]` key turns a value of digits into a number
/// (configs/src/configs_impl/parsing.rs, parse_env_value_to_json) and a
/// type error would otherwise echo the value. That text is the number as
/// printed back, so what the number form cannot hold is lost before the
/// plugin sees it: leading zeros, `TRUE` in capitals, float spellings
/// (`1.50` reads as `1.5`). Quote such a secret, or use `{ env = "VAR" }`,
/// which reads the variable's text as is.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value, for handing to a client library; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

const SOURCES: &[&str] = &["env", "file"];

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, a number, a boolean, { env = \"VAR_NAME\" } or { file = \"/path\" }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
        let mut source: Option<(String, String)> = None;
        while let Some(key) = map.next_key::<String>()? {
            if !SOURCES.contains(&key.as_str()) {
                return Err(de::Error::unknown_field(&key, SOURCES));
            }
            if source.is_some() {
                return Err(de::Error::custom(
                    "a secret takes exactly one of `env` or `file`",
                ));
            }
            source = Some((key, map.next_value()?));
        }
        match source {
            Some((kind, name)) if kind == "env" => from_env(&name).map_err(de::Error::custom),
            Some((_, path)) => from_file(&path).map_err(de::Error::custom),
            None => Err(de::Error::custom(
                "a secret takes exactly one of `env` or `file`",
            )),
        }
    }
}

// Errors name the variable or path, never what was read from it.
fn from_env(name: &str) -> Result<Secret, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Secret(value)),
        Err(std::env::VarError::NotPresent) => {
            Err(format!("environment variable {name} is not set"))
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("environment variable {name} is not valid UTF-8"))
        }
    }
}

fn from_file(path: &str) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {path}: {e}"))?;
    Ok(Secret::new(text.trim_end_matches(['\r', '\n'])))
}

/// Replaces every occurrence of each non-empty secret in `text` with `***`,
/// for error messages from client libraries that may echo credentials.
pub fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut values: Vec<&str> = secrets
        .iter()
        .map(|s| s.expose())
        .filter(|v| !v.is_empty())
        .collect();
    // Longest first, so a secret that contains another is not left half-masked.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
        .into_iter()
        .fold(text.to_owned(), |acc, v| acc.replace(v, "***"))
}

/// Masks the password of every `scheme://user:pass@host` URL in `text`, giving
/// `scheme://user:***@host`. Works on a bare URL or on a message quoting URLs.
///
/// Userinfo without a colon (`scheme://token@host`) is masked entirely, since
/// tokens are commonly passed that way.
pub fn redact_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // These cannot appear unescaped in userinfo, so they end the authority
        // even in free text; `@` may, so the last `@` before them wins.
        let authority_len = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '<' | '>' | '\\') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        match tail[..authority_len].rfind('@') {
            Some(at) => {
                let userinfo = &tail[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str("***");
                    }
                    None => out.push_str("***"),
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Cfg {
        password: Secret,
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        let cfg = Cfg { password: s };
        let dbg = format!("{cfg:?} {cfg:#?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert_eq!(cfg.password.expose(), "hunter2");
    }

    #[test]
    fn from_plain_string() {
        let c: Cfg = toml::from_str("password = \"p@ss\"").unwrap();
        assert_eq!(c.password.expose(), "p@ss");
        let c: Cfg = serde_json::from_str(r#"{"password": ""}"#).unwrap();
        assert!(c.password.is_empty());
    }

    #[test]
    fn from_env_var() {
        let var = "IGGY_CONNECTOR_SHARED_TEST_SECRET_SET";
        // SAFETY: the variable name is unique to this test, so no other
        // thread reads or writes it concurrently.
        unsafe { std::env::set_var(var, "from-env") };
        let c: Cfg = toml::from_str(&format!("password = {{ env = \"{var}\" }}")).unwrap();
        assert_eq!(c.password.expose(), "from-env");
        let c: Cfg =
            serde_json::from_str(&format!(r#"{{"password": {{"env": "{var}"}}}}"#)).unwrap();
        assert_eq!(c.password.expose(), "from-env");
    }

    #[test]
    fn missing_env_var_error_names_the_variable() {
        let var = "IGGY_CONNECTOR_SHARED_TEST_SECRET_UNSET";
        let err = toml::from_str::<Cfg>(&format!("password = {{ env = \"{var}\" }}")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("environment variable {var} is not set")),
            "{msg}"
        );
    }

    #[test]
    fn from_file_trims_trailing_newline() {
        let path = std::env::temp_dir().join(format!(
            "iggy_connector_common_secret_{}.txt",
            std::process::id()
        ));
        std::fs::write(&path, "s3cret value \n").unwrap();
        let toml_path = path.display().to_string().replace('\\', "\\\\");
        let result = toml::from_str::<Cfg>(&format!("password = {{ file = \"{toml_path}\" }}"));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(result.unwrap().password.expose(), "s3cret value ");
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let err = toml::from_str::<Cfg>("password = { file = \"/nonexistent/iggy/secret\" }")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read secret file /nonexistent/iggy/secret"),
            "{err}"
        );
    }

    #[test]
    fn bad_secret_tables_are_rejected() {
        let err = toml::from_str::<Cfg>("password = { vault = \"x\" }").unwrap_err();
        assert!(err.to_string().contains("vault"), "{err}");
        let err = toml::from_str::<Cfg>("password = { env = \"A\", file = \"/b\" }").unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
        let err = toml::from_str::<Cfg>("password = {}").unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
        let err = toml::from_str::<Cfg>("password = [5]").unwrap_err();
        assert!(err.to_string().contains("env = "), "{err}");
    }

    #[test]
    fn numbers_and_booleans_are_taken_as_their_text() {
        for (toml_value, json_value, text) in [
            ("123456", "123456", "123456"),
            ("-42", "-42", "-42"),
            ("1.5", "1.5", "1.5"),
            ("true", "true", "true"),
            ("false", "false", "false"),
        ] {
            let c: Cfg = toml::from_str(&format!("password = {toml_value}")).unwrap();
            assert_eq!(c.password.expose(), text);
            let c: Cfg = serde_json::from_str(&format!(r#"{{"password": {json_value}}}"#)).unwrap();
            assert_eq!(c.password.expose(), text);
        }
        let c: Cfg = serde_json::from_str(r#"{"password": 18446744073709551615}"#).unwrap();
        assert_eq!(c.password.expose(), "18446744073709551615");
    }

    #[test]
    fn redact_replaces_every_secret() {
        let user = Secret::new("alice");
        let pass = Secret::new("alice-pw");
        let empty = Secret::default();
        let text = "login alice with alice-pw failed; alice-pw rejected";
        assert_eq!(
            redact(text, &[&user, &pass, &empty]),
            "login *** with *** failed; *** rejected"
        );
        assert_eq!(redact(text, &[]), text);
    }

    #[test]
    fn redact_url_credentials_masks_passwords() {
        assert_eq!(
            redact_url_credentials("nats://user:pa:ss@host:4222/path?q=1"),
            "nats://user:***@host:4222/path?q=1"
        );
        assert_eq!(
            redact_url_credentials("https://u:p@ss@example.com"),
            "https://u:***@example.com"
        );
        assert_eq!(
            redact_url_credentials("https://token@host/x"),
            "https://***@host/x"
        );
        assert_eq!(
            redact_url_credentials("http://host:8086/write?u=a@b"),
            "http://host:8086/write?u=a@b"
        );
        assert_eq!(
            redact_url_credentials(
                "error sending request for url (http://admin:secret@db:8086/write): timeout; see https://docs.example"
            ),
            "error sending request for url (http://admin:***@db:8086/write): timeout; see https://docs.example"
        );
        assert_eq!(
            redact_url_credentials("nats://a:1@h1:4222,nats://b:2@h2:4222"),
            "nats://a:***@h1:4222,nats://b:***@h2:4222"
        );
        assert_eq!(redact_url_credentials("no urls here"), "no urls here");
        assert_eq!(redact_url_credentials("x://"), "x://");
    }
}
