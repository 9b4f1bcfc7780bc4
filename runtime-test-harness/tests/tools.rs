//! The inspection and checking commands, and moving data in and out of topics.

use iggy_harness_test_support::*;

#[test]
fn inspect_reports_kind_generations_and_version() {
    let ws = Workspace::new();
    let source = testkit_source();
    let legacy = legacy_v1_source();
    let output = ws.harness(&[
        "--json",
        "inspect",
        source.to_str().unwrap(),
        legacy.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports[0]["kind"], "source");
    assert_eq!(reports[0]["generations"], serde_json::json!(["v1", "v2"]));
    assert_eq!(reports[0]["version"]["Ok"], "0.1.0");
    assert_eq!(reports[1]["generations"], serde_json::json!(["v1"]));
    assert_eq!(
        reports[1]["missing"],
        serde_json::json!(["iggy_source_handle_v2", "iggy_source_batch_result"])
    );
}

#[test]
fn conformance_passes_sdk_plugins_and_flags_a_v1_only_library() {
    let ws = Workspace::new();
    let libs = [testkit_sink(), testkit_source(), legacy_v1_source()];
    let mut args = vec!["--json", "conformance"];
    args.extend(libs.iter().map(|p| p.to_str().unwrap()));
    let output = ws.harness(&args);
    assert_eq!(output.status.code(), Some(1), "one library fails");
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for report in &reports.as_array().unwrap()[..2] {
        assert_eq!(report["ok"], true, "{report}");
        assert!(report["checks"].as_array().unwrap().len() >= 10);
    }
    let failed: Vec<&str> = reports[2]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        vec![
            "exports every symbol of its kind (sources: v1 and v2)",
            "config that is not JSON refused",
            "config of the wrong shape refused",
        ]
    );
}

#[test]
fn conformance_reports_a_library_that_is_not_a_plugin() {
    let ws = Workspace::new();
    let not_plugin = ws.path("libnothing.so");
    std::fs::write(&not_plugin, b"not an ELF file").unwrap();
    let output = ws.harness(&["--json", "conformance", not_plugin.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let reports: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reports[0]["checks"][0]["name"], "loads");
    assert_eq!(reports[0]["checks"][0]["ok"], false);
}

#[test]
fn check_names_the_bad_field_of_a_config() {
    let ws = Workspace::new();
    ws.sink(
        "audit",
        &testkit_sink(),
        "created",
        "fail_every = \"often\"",
    );
    let output = ws.check("audit");
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let errors: Vec<&str> = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["level"] == "ERROR")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("field `fail_every`")),
        "{errors:?}"
    );
    assert!(
        !errors.iter().any(|e| e.contains("often")),
        "string values are not echoed: {errors:?}"
    );
}

#[test]
fn check_opens_and_closes_a_good_connector() {
    let ws = Workspace::new();
    ws.source("gen", &testkit_source(), "created", "total = 5");
    let output = ws.check("gen");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(output.status.success(), "{report}");
    assert_eq!(
        (report["open_code"].as_i64(), report["close_code"].as_i64()),
        (Some(0), Some(0))
    );
}

#[test]
fn produce_and_dump_round_trip_envelopes_with_headers() {
    let ws = Workspace::new();
    ws.produce_lines(
        "t",
        "{\"id\":\"42\",\"headers\":{\"region\":\"eu\"},\"payload\":{\"order\":1}}\n\n{\"payload\":\"plain text\"}\n",
        true,
    );
    let dumped = ws.dump("t");
    assert_eq!(dumped.len(), 2);
    assert_eq!(dumped[0]["id"], "42");
    assert_eq!(dumped[0]["headers"]["region"], "string: eu");
    assert_eq!(dumped[0]["payload"], serde_json::json!({"order": 1}));
    assert_eq!(dumped[1]["payload"], "plain text");
    assert_eq!(dumped[1]["offset"], 1);
}

#[test]
fn bad_envelopes_and_connector_files_are_explained() {
    let ws = Workspace::new();
    let output = ws.try_produce_lines("t", "{\"payload\":1}\n{\"payld\":2}\n", true);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("line 2"));
    std::fs::write(
        ws.connectors().join("bad.toml"),
        "type = \"sink\"\nkey = \"x\"\n",
    )
    .unwrap();
    let (output, _) = (
        ws.harness(&["run", "--connectors-dir", ws.connectors().to_str().unwrap()]),
        (),
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr(&output);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("missing field"),
        "{stderr}"
    );
}

#[test]
fn bare_library_names_resolve_beside_the_harness_like_the_runtime() {
    let ws = Workspace::new();
    ws.produce("created", 20);
    let record = ws.path("out.jsonl");
    // No directory, no extension: found beside the binary, as the runtime does.
    ws.connector_file(
        "sink",
        "bare",
        std::path::Path::new("libiggy_connector_testkit_sink"),
        "[[streams]]\nstream = \"orders\"\ntopics = [\"created\"]\nschema = \"json\"\n",
        &format!("record_path = \"{}\"", record.display()),
    );
    ws.run_ok(&[]);
    assert_eq!(recorded(&record).len(), 20);
}

#[test]
fn the_runtime_config_file_points_at_connectors_and_state() {
    let ws = Workspace::new();
    ws.source(
        "gen",
        &testkit_source(),
        "created",
        "total = 30\nbatch_size = 10",
    );
    let config = ws.path("config.toml");
    std::fs::write(
        &config,
        format!(
            "[iggy]\naddress = \"localhost:8090\"\n[state]\npath = \"{}\"\n[connectors]\nconfig_type = \"local\"\nconfig_dir = \"{}\"\n",
            ws.path("runtime-state").display(),
            ws.connectors().display()
        ),
    )
    .unwrap();
    let data = ws.path("data");
    let output = ws.harness(&[
        "--json",
        "run",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--exit-when-idle",
        "500ms",
        "--duration",
        "30s",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(ws.path("runtime-state").join("source_gen.state").is_file());
    assert_eq!(ws.dump("created").len(), 30);
}

#[test]
fn ctrl_c_closes_every_connector_and_prints_the_summary() {
    let ws = Workspace::new();
    ws.source(
        "endless",
        &testkit_source(),
        "created",
        "total = 0\nbatch_size = 50",
    );
    let record = ws.recording_sink("audit", "created", "");
    let child = std::process::Command::new(harness_binary())
        .args([
            "--json",
            "run",
            "--connectors-dir",
            ws.connectors().to_str().unwrap(),
        ])
        .args([
            "--state-dir",
            ws.path("state").to_str().unwrap(),
            "--duration",
            "60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait until messages flow, then an interrupt like Ctrl-C.
    for _ in 0..200 {
        if recorded_so_far(&record) >= 500 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        connector(&report, "endless")["messages_out"]
            .as_u64()
            .unwrap()
            >= 500
    );
    let stderr = stderr(&output);
    assert!(
        stderr.contains("closed source connector") && stderr.contains("closed sink connector"),
        "{stderr}"
    );
}

/// `--wait-for`: idle time does not end the run before the named connector
/// has put out that many messages; a goal never met runs to `--duration`.
#[test]
fn exit_when_idle_waits_for_the_named_connectors_output() {
    let run = |goal: &str| -> serde_json::Value {
        let ws = Workspace::new();
        ws.source(
            "gen",
            &testkit_source(),
            "created",
            "total = 30\nbatch_size = 10",
        );
        let wait_for = format!("gen={goal}");
        let end = [
            "--exit-when-idle",
            "300ms",
            "--wait-for",
            &wait_for,
            "--duration",
            "4s",
        ];
        let (output, report) = ws.run_ending(&end);
        assert!(output.status.success(), "{}", stderr(&output));
        report
    };
    let met = run("30");
    let unmet = run("31");
    let elapsed = |report: &serde_json::Value| report["elapsed_secs"].as_f64().unwrap();
    assert!(elapsed(&met) < 3.5, "ended when idle: {met}");
    assert!(elapsed(&unmet) >= 3.9, "ran to --duration: {unmet}");

    let ws = Workspace::new();
    let bad = ws.harness(&[
        "run",
        "--connectors-dir",
        ws.connectors().to_str().unwrap(),
        "--exit-when-idle",
        "300ms",
        "--wait-for",
        "gen=lots",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("`lots` in `gen=lots` is not a message count"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
