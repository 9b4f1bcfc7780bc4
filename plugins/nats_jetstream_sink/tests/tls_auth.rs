//! The sink through the real harness against a nats-server that demands
//! mutual TLS and an NKey user, so the connection settings are proven where
//! a deployment uses them, not only in the shared crate's tests.

mod common;

use async_nats::jetstream::{self, stream};
use common::{runtime, sink_library};
use iggy_harness_test_support::nats::NatsServer;
use iggy_harness_test_support::nats::auth::{Certificates, nkey_users_config};
use iggy_harness_test_support::*;
use nkeys::KeyPair;
use std::path::Path;

fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// The test's own client, with the same user and client certificate.
async fn context(server: &NatsServer, seed: &str, certs: &Certificates) -> jetstream::Context {
    let client = async_nats::ConnectOptions::with_nkey(seed.to_string())
        .add_root_certificates(certs.ca.clone())
        .add_client_certificate(certs.client_cert.clone(), certs.client_key.clone())
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("test client connects: {e}\n{}", server.log_tail()));
    jetstream::new(client)
}

/// The `seq` of every message in the stream, in stream order, fetched one by
/// one by stream sequence (few messages, and no consumer to set up).
async fn stored_seqs(js: &jetstream::Context, name: &str) -> Vec<u64> {
    let mut stream = js.get_stream(name).await.unwrap();
    let total = stream.info().await.unwrap().state.messages;
    let mut seqs = Vec::new();
    for sequence in 1..=total {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let payload: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        seqs.push(payload["seq"].as_u64().expect("seq"));
    }
    seqs
}

#[test]
fn publishes_over_mutual_tls_with_an_nkey_seed_from_a_file() {
    let ws = Workspace::new();
    let certs = Certificates::generate(ws.dir.path());
    let user = KeyPair::new_user();
    let seed = user.seed().unwrap();
    let server = NatsServer::start_with_config(
        ws.dir.path(),
        &nkey_users_config(&[&user.public_key()]),
        &certs.server_args(true),
    );
    let rt = runtime();
    let js = rt.block_on(context(&server, &seed, &certs));
    // Proof the flags and the config file both took: the same user without
    // a client certificate is turned away.
    let without_certificate = rt.block_on(
        async_nats::ConnectOptions::with_nkey(seed.clone())
            .add_root_certificates(certs.ca.clone())
            .connect(server.url()),
    );
    assert!(without_certificate.is_err(), "mutual TLS is not enforced");
    rt.block_on(js.create_stream(stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        ..Default::default()
    }))
    .expect("stream created");
    ws.produce("created", 200);
    let seed_file = ws.path("user.nk");
    std::fs::write(&seed_file, format!("{seed}\n")).unwrap();
    let tls = format!(
        "[plugin_config.tls]\nca_file = {}\ncert_file = {}\nkey_file = {}\n",
        toml_path(&certs.ca),
        toml_path(&certs.client_cert),
        toml_path(&certs.client_key)
    );
    let config = |seed_file: &Path| {
        format!(
            "servers = [\"{}\"]\nsubject = \"orders.{{topic}}\"\nstream = \"ORDERS\"\n\
             request_timeout = \"5s\"\n[plugin_config.auth]\nnkey_seed = {{ file = {} }}\n{tls}",
            server.url(),
            toml_path(seed_file)
        )
    };
    ws.sink("to_nats", &sink_library(), "created", &config(&seed_file));
    let (output, report) = ws.run(&[]);
    let everything = format!("{report}{}", stderr(&output));
    assert!(output.status.success(), "{everything}");
    assert!(!everything.contains(&seed), "seed shown: {everything}");
    assert_eq!(connector(&report, "to_nats")["messages_out"], 200);
    assert_eq!(
        rt.block_on(stored_seqs(&js, "ORDERS")),
        (0..200).collect::<Vec<_>>()
    );

    // The same TLS settings with a user the server does not know.
    let stranger_seed = KeyPair::new_user().seed().unwrap();
    let stranger_file = ws.path("stranger.nk");
    std::fs::write(&stranger_file, &stranger_seed).unwrap();
    std::fs::remove_file(ws.connectors().join("to_nats.toml")).unwrap();
    ws.sink(
        "stranger",
        &sink_library(),
        "created",
        &config(&stranger_file),
    );
    let output = ws.check("stranger");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("authorization violation"), "{text}");
    assert!(!text.contains(&stranger_seed), "seed shown: {text}");
}
