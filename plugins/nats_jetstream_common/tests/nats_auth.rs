//! `NatsConnection::connect` against a real nats-server (started per test on a
//! free loopback port): each auth method and TLS mode accepted with the right
//! material and refused without it, with errors that never show a secret.

use async_nats::jetstream;
use iggy_connector_nats_jetstream_common::NatsConnection;
use iggy_harness_test_support::Workspace;
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::nats::auth::{
    Certificates, Operator, creds_seed, nkey_users_config,
};
use nkeys::KeyPair;
use std::path::Path;

const NAME: &str = "nats-auth-test";

/// Settings as a plugin reads them from its connector file, validated.
fn settings(server: &NatsServer, extra: &str) -> NatsConnection {
    let text = format!(
        "servers = [\"{}\"]\nconnect_timeout = \"2s\"\nrequest_timeout = \"5s\"\n{extra}",
        server.url()
    );
    let connection: NatsConnection =
        toml::from_str(&text).unwrap_or_else(|e| panic!("settings {text}: {e}"));
    connection
        .validate()
        .unwrap_or_else(|e| panic!("settings {text}: {e}"));
    connection
}

fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// Connects with the `accepted` settings and proves JetStream works over the
/// session, then returns the refusal of the `rejected` ones, checked to be
/// the connect error and free of `secrets`.
async fn accepts_then_refuses(
    server: &NatsServer,
    accepted: &str,
    rejected: &str,
    secrets: &[&str],
) -> String {
    let client = settings(server, accepted)
        .connect(NAME)
        .await
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log_tail()));
    jetstream_works(client).await;

    let error = settings(server, rejected)
        .connect(NAME)
        .await
        .expect_err("the server must refuse this connection");
    assert!(
        error.starts_with("cannot connect to NATS at nats://127.0.0.1:"),
        "{error}"
    );
    for secret in secrets {
        assert!(!error.contains(secret), "secret shown: {error}");
    }
    error
}

/// A stream created and a publish acknowledged: what the plugins need.
async fn jetstream_works(client: async_nats::Client) {
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "AUTH".into(),
        subjects: vec!["auth.>".into()],
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("create stream: {e}"));
    let ack = js
        .publish("auth.check", "hello".into())
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"))
        .await
        .unwrap_or_else(|e| panic!("publish ack: {e}"));
    assert_eq!(ack.stream, "AUTH");
    assert_eq!(ack.sequence, 1);
}

#[tokio::test]
async fn token_auth_takes_the_right_token_only() {
    let ws = Workspace::new();
    let server = NatsServer::start_with(ws.dir.path(), &["--auth", "right-token-7f3a"]);
    let error = accepts_then_refuses(
        &server,
        "[auth]\ntoken = \"right-token-7f3a\"",
        "[auth]\ntoken = \"wrong-token-91c2\"",
        &["wrong-token-91c2", "right-token-7f3a"],
    )
    .await;
    assert!(error.contains("authorization violation"), "{error}");
}

#[tokio::test]
async fn nkey_seed_from_the_environment_connects_and_another_seed_is_refused() {
    let ws = Workspace::new();
    let user = KeyPair::new_user();
    let seed = user.seed().unwrap();
    let stranger_seed = KeyPair::new_user().seed().unwrap();
    let server = NatsServer::start_with_config::<&str>(
        ws.dir.path(),
        &nkey_users_config(&[&user.public_key()]),
        &[],
    );
    // SAFETY: the other tests in this binary touch the environment only
    // through std (reads, process spawns), which serializes with this write.
    unsafe {
        std::env::set_var("NATS_AUTH_TEST_SEED", &seed);
        std::env::set_var("NATS_AUTH_TEST_OTHER_SEED", &stranger_seed);
    }
    let error = accepts_then_refuses(
        &server,
        "[auth]\nnkey_seed = { env = \"NATS_AUTH_TEST_SEED\" }",
        "[auth]\nnkey_seed = { env = \"NATS_AUTH_TEST_OTHER_SEED\" }",
        &[&seed, &stranger_seed],
    )
    .await;
    assert!(error.contains("authorization violation"), "{error}");
}

#[tokio::test]
async fn a_credentials_file_connects_with_jetstream_and_a_foreign_account_is_refused() {
    let ws = Workspace::new();
    let operator = Operator::new();
    let account = operator.account("iggy");
    // Signed by the same operator but never given to the server.
    let unknown_account = operator.account("unknown");
    let server = NatsServer::start_with_config::<&str>(
        ws.dir.path(),
        &operator.server_config(&[&account]),
        &[],
    );
    let creds = account.user_creds("sink");
    let foreign = unknown_account.user_creds("intruder");
    let creds_file = ws.path("user.creds");
    let foreign_file = ws.path("foreign.creds");
    std::fs::write(&creds_file, &creds).unwrap();
    std::fs::write(&foreign_file, &foreign).unwrap();
    let error = accepts_then_refuses(
        &server,
        &format!("[auth]\ncredentials_file = {}", toml_path(&creds_file)),
        &format!("[auth]\ncredentials_file = {}", toml_path(&foreign_file)),
        &[creds_seed(&foreign), creds_seed(&creds)],
    )
    .await;
    assert!(error.contains("authorization violation"), "{error}");
}

#[tokio::test]
async fn server_tls_is_verified_against_the_ca_file() {
    let ws = Workspace::new();
    let certs = Certificates::generate(ws.dir.path());
    let server = NatsServer::start_with(ws.dir.path(), &certs.server_args(false));
    let error = accepts_then_refuses(
        &server,
        &format!("[tls]\nrequired = true\nca_file = {}", toml_path(&certs.ca)),
        "",
        &[],
    )
    .await;
    assert!(error.contains("invalid peer certificate"), "{error}");
}

#[tokio::test]
async fn required_tls_against_a_plain_server_fails_clearly() {
    let ws = Workspace::new();
    let server = NatsServer::start(ws.dir.path());
    let error = accepts_then_refuses(&server, "", "[tls]\nrequired = true", &[]).await;
    assert!(
        error.contains("tls.required is set but the server did not answer in TLS"),
        "{error}"
    );
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let ws = Workspace::new();
    let certs = Certificates::generate(ws.dir.path());
    let server = NatsServer::start_with(ws.dir.path(), &certs.server_args(true));
    let ca = format!("[tls]\nca_file = {}\n", toml_path(&certs.ca));
    let error = accepts_then_refuses(
        &server,
        &format!(
            "{ca}cert_file = {}\nkey_file = {}",
            toml_path(&certs.client_cert),
            toml_path(&certs.client_key)
        ),
        &ca,
        &[],
    )
    .await;
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}
