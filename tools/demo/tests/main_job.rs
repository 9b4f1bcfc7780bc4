//! The main job's pipeline end to end: real nats-server, InfluxDB, s2-lite,
//! Flink and Pravega, the debug plugin libraries, the shipped connector
//! files, and faults injected into every connector (a redelivered sink batch
//! and a Nacked source batch every second batch). The demo's own checks must
//! pass for every connector, Flink and Pravega included: CI has Java and
//! installs Pravega's standalone, so a missing one fails.

use iggy_harness_test_support::build_dir;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

/// One pipeline at a time: each starts its own JVMs (Flink, Pravega), too
/// many for the two cores of the build machines at once.
static ONE_PIPELINE: Mutex<()> = Mutex::new(());

#[test]
fn every_order_arrives_exactly_once_across_all_connectors_despite_faults() {
    let output = demo(&["--fault", "redeliver-every=2", "--fault", "nack-every=2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = || format!("stdout:\n{stdout}\nstderr (end):\n{}", tail(&stderr));
    assert!(output.status.success(), "the demo failed: {}", context());
    assert!(stdout.contains("end-to-end check passed"), "{}", context());
    for path in [
        "NATS source",
        "S2 sink → S2 stream",
        "S2 sink (upsert)",
        "OpenGemini sink",
        "Flink source (records)",
        "Flink source (monitor)",
        "Pravega source",
    ] {
        let row = stdout
            .lines()
            .find(|line| line.contains(path))
            .unwrap_or_else(|| panic!("no check row for {path}: {}", context()));
        assert!(row.contains(" ok "), "{row}");
    }
    for key in [
        "nats_jetstream_source",
        "s2_source",
        "pravega_source",
        "flink_source",
    ] {
        let nacks: u64 = stdout
            .lines()
            .find(|line| line.starts_with(key))
            .and_then(|line| line.split_whitespace().nth(7))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no figures for {key}: {}", context()));
        assert!(nacks > 0, "the Nack fault reached {key}: {}", context());
    }
    // One scrape of each connector's metrics endpoint is printed.
    for key in [
        "nats_jetstream_sink",
        "nats_jetstream_source",
        "s2_sink",
        "s2_sink_upsert",
        "s2_source",
        "opengemini_sink",
        "pravega_sink",
        "pravega_source",
        "flink_source",
        "flink_source_monitor",
    ] {
        let label = format!("_batch_messages_count{{connector=\"{key}\"}}");
        assert!(stdout.contains(&label), "no scrape of {key}: {}", context());
    }
}

/// Runs the demo from the repository root on the debug plugins with 3000
/// orders and the given extra arguments.
fn demo(extra: &[&str]) -> Output {
    let _alone = ONE_PIPELINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Command::new(env!("CARGO_BIN_EXE_iggy-demo"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .arg("--plugins-dir")
        .arg(build_dir())
        .args(["--orders", "3000", "--timeout", "3m"])
        .args(extra)
        .output()
        .expect("iggy-demo runs")
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The same pipeline with the sources spoken to as runtime 0.4.x does (v1:
/// no Ack/Nack), sink batches redelivered: still every order exactly once,
/// Pravega's round trip included.
#[test]
fn the_pipeline_holds_under_the_v1_source_protocol_of_runtime_0_4() {
    let output = demo(&[
        "--no-flink",
        "--source-protocol",
        "v1",
        "--fault",
        "redeliver-every=2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("end-to-end check passed"),
        "stdout:\n{stdout}\nstderr (end):\n{}",
        tail(&stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("Pravega source") && line.contains(" ok ")),
        "the Pravega round trip was checked: {stdout}"
    );
    for key in ["nats_jetstream_source", "s2_source", "pravega_source"] {
        let under_v1 = stderr.lines().any(|line| {
            line.starts_with(&format!("source {key} (")) && line.ends_with("runs the v1 protocol")
        });
        assert!(under_v1, "{key} ran under v1: {}", tail(&stderr));
    }
}
