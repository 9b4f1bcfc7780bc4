//! Secrets through the path a plugin's config takes: the connector file's
//! `[plugin_config]` (TOML, or the runtime's environment override, which
//! turns digits into a number) as JSON into `iggy_sink_open`, parsed by the
//! SDK into a config shaped like the NATS sink's (the shared
//! `NatsConnection`, flattened). A secret given as a number or boolean is
//! read as its text, and a config error never shows a secret.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use iggy_connector_nats_jetstream_common::NatsConnection;
use iggy_connector_sdk::{ConsumedMessage, Error, MessagesMetadata, Sink, TopicMetadata};
use serde::Deserialize;

#[derive(Deserialize)]
struct SinkConfig {
    #[serde(flatten)]
    connection: NatsConnection,
}

/// What an opened sink was given: its id, password and token.
type Opened = (u32, Option<String>, Option<String>);

static OPENED: Mutex<Vec<Opened>> = Mutex::new(Vec::new());
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct SecretSink {
    id: u32,
    config: SinkConfig,
}

iggy_connector_common::connector_debug!(SecretSink);

impl SecretSink {
    fn new(id: u32, config: SinkConfig) -> Self {
        Self { id, config }
    }
}

#[async_trait]
impl Sink for SecretSink {
    async fn open(&mut self) -> Result<(), Error> {
        let auth = &self.config.connection.auth;
        let text = |secret: &Option<iggy_connector_common::Secret>| {
            secret.as_ref().map(|s| s.expose().to_owned())
        };
        OPENED
            .lock()
            .unwrap()
            .push((self.id, text(&auth.password), text(&auth.token)));
        Ok(())
    }

    async fn consume(
        &self,
        _topic: &TopicMetadata,
        _meta: MessagesMetadata,
        _messages: Vec<ConsumedMessage>,
    ) -> Result<(), Error> {
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

iggy_connector_sdk::sink_connector!(SecretSink);

extern "C" fn capture_log(_: u8, _: *const u8, _: usize, message: *const u8, len: usize) {
    // SAFETY: the SDK passes a valid slice for the call.
    let text = unsafe { std::slice::from_raw_parts(message, len) };
    // A panic here would abort the test process, not fail the test.
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(String::from_utf8_lossy(text).into_owned());
}

/// The runtime hands `[plugin_config]` over as JSON.
fn open(id: u32, plugin_config: &serde_json::Value) -> i32 {
    let json = plugin_config.to_string();
    // SAFETY: the buffer is valid for the call.
    let code = unsafe { iggy_sink_open(id, json.as_ptr(), json.len(), capture_log) };
    if code == 0 {
        assert_eq!(iggy_sink_close(id), 0);
    }
    code
}

fn from_toml(text: &str) -> serde_json::Value {
    let table: toml::Table = toml::from_str(text).unwrap();
    serde_json::to_value(table).unwrap()
}

fn opened(id: u32) -> (Option<String>, Option<String>) {
    let opened = OPENED.lock().unwrap();
    let (_, password, token) = opened
        .iter()
        .find(|(opened_id, ..)| *opened_id == id)
        .unwrap_or_else(|| panic!("sink {id} was not opened"));
    (password.clone(), token.clone())
}

fn errors_of(id: u32) -> Vec<String> {
    let needle = format!("sink connector {id} has an invalid configuration");
    LOG.lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(&needle))
        .cloned()
        .collect()
}

#[test]
fn a_secret_written_as_a_number_or_boolean_is_its_text() {
    let config = from_toml(
        "servers = [\"nats://127.0.0.1:4222\"]\n[auth]\nuser = \"app\"\npassword = 123456\n",
    );
    assert_eq!(open(1, &config), 0, "{:?}", errors_of(1));
    assert_eq!(opened(1), (Some("123456".into()), None));

    let config = from_toml("servers = [\"nats://127.0.0.1:4222\"]\nauth = { token = true }\n");
    assert_eq!(open(2, &config), 0, "{:?}", errors_of(2));
    assert_eq!(opened(2), (None, Some("true".into())));
}

/// The runtime's override `IGGY_CONNECTORS_SINK_<KEY>_PLUGIN_CONFIG_AUTH`
/// sets the top-level key to a JSON value parsed from the variable's text.
#[test]
fn a_secret_the_environment_override_turned_into_a_number_is_its_text() {
    let config = serde_json::json!({
        "servers": ["nats://127.0.0.1:4222"],
        "auth": { "password": 987654321, "user": "app" },
    });
    assert_eq!(open(3, &config), 0, "{:?}", errors_of(3));
    assert_eq!(opened(3).0.as_deref(), Some("987654321"));
}

#[test]
fn a_config_error_never_shows_a_secret() {
    // A secret written where a table belongs: the error names the field
    // and the kind of value, never the value.
    for (id, auth, secret) in [
        (4, serde_json::json!("se\"cret-tail"), "cret-tail"),
        (5, serde_json::json!(123456), "123456"),
        (6, serde_json::json!(12.75), "12.75"),
        (
            7,
            serde_json::json!({ "password": ["s3cr3t-in-a-list"] }),
            "s3cr3t",
        ),
    ] {
        let config = serde_json::json!({
            "servers": ["nats://127.0.0.1:4222"],
            "auth": auth,
        });
        assert_ne!(open(id, &config), 0, "config {config} is refused");
        let errors = errors_of(id);
        assert_eq!(errors.len(), 1, "{errors:?}");
        // serde loses the path inside a flattened struct, so the message
        // says what is wrong (`invalid type: an integer, expected struct
        // NatsAuth`) without naming `auth`.
        assert!(errors[0].contains("invalid type: "), "{errors:?}");
        assert!(!errors[0].contains(secret), "secret shown: {errors:?}");
    }
}
