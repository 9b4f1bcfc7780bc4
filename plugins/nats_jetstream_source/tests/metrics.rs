//! `metrics` on both NATS plugins against a real nats-server: Iggy topic →
//! NATS sink → JetStream → NATS source → Iggy topic in one run, each
//! plugin's endpoint scraped while the run moves data.

mod common;

use common::*;
use iggy_harness_test_support::metrics::scrape_while_running;
use iggy_harness_test_support::process::free_port;
use iggy_harness_test_support::{Workspace, connector, plugin};

const SINK: &str = "nats_jetstream_sink";
const SOURCE: &str = "nats_jetstream_source";

#[test]
fn both_plugins_serve_their_counters_while_messages_flow() {
    let ws = Workspace::new();
    let nats = Nats::start(&ws);
    nats.create_stream(&["orders.>"]);
    ws.produce("created", 400);
    let (sink_port, source_port) = (free_port(), free_port());
    ws.sink(
        "to_nats",
        &plugin("iggy_connector_nats_jetstream_sink"),
        "created",
        &format!(
            "servers = [\"{}\"]\nsubject = \"orders.created\"\nstream = \"{STREAM}\"\n\
             metrics = {{ address = {sink_port}, connector = \"to_nats\" }}",
            nats.server.url()
        ),
    );
    write_source(
        &ws,
        &plugin_config(&nats, &format!("metrics = \"127.0.0.1:{source_port}\"")),
    );

    let (scrapes, report) = scrape_while_running(&ws, &[sink_port, source_port], |s| {
        s[0].counter(SINK, "stored", "to_nats") == Some(400.0)
            && s[1].counter(SOURCE, "messages", "nats_jetstream_source-1") == Some(400.0)
    });
    let [sink, source] = scrapes.as_slice() else {
        panic!("no complete round of scrapes; report: {report}")
    };
    assert_eq!(
        sink.counter(SINK, "stored", "to_nats"),
        Some(400.0),
        "{}",
        sink.text
    );
    assert_eq!(sink.counter(SINK, "failed_batches", "to_nats"), Some(0.0));
    sink.assert_batches(SINK, "to_nats", 400, true);
    // Without a `connector` name the label is the plugin and the runtime's id.
    let label = "nats_jetstream_source-1";
    assert_eq!(
        source.counter(SOURCE, "messages", label),
        Some(400.0),
        "{}",
        source.text
    );
    source.assert_batches(SOURCE, label, 400, false);
    assert_eq!(connector(&report, KEY)["messages_out"], 400, "{report}");
    assert_eq!(ws.dump("orders").len(), 400);
}
