//! The deployment files, checked by structure since no Docker engine runs
//! here: docker-compose.yml parses, every service it needs is there with a
//! health check, every path it mounts exists (or is what the main job
//! builds), and every address a shipped connector file names is published by
//! one of its services, so the files work in the stack unchanged.

use iggy_harness::connector_file::read_dir;
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    serde_yaml::from_str(&text).expect("docker-compose.yml is valid YAML")
}

fn services(compose: &Value) -> &serde_yaml::Mapping {
    compose["services"].as_mapping().expect("a services map")
}

fn name(key: &Value) -> &str {
    key.as_str().expect("service names are strings")
}

#[test]
fn the_stack_has_every_system_a_connector_talks_to() {
    let compose = compose();
    let names: BTreeSet<&str> = services(&compose).keys().map(name).collect();
    for wanted in [
        "iggy",
        "connectors",
        "nats",
        "opengemini",
        "s2",
        "flink-jobmanager",
        "flink-taskmanager",
        "flink-sql-gateway",
        "pravega",
    ] {
        assert!(names.contains(wanted), "no `{wanted}` service in {names:?}");
    }
    for (key, service) in services(&compose) {
        assert!(
            service["image"].as_str().is_some_and(|i| i.contains(':')),
            "{}: an image with a tag",
            name(key)
        );
        for dependency in service["depends_on"].as_mapping().into_iter().flatten() {
            assert!(
                names.contains(name(dependency.0)),
                "{} depends on unknown {:?}",
                name(key),
                dependency.0
            );
        }
    }
}

#[test]
fn servers_the_runtime_waits_for_have_health_checks() {
    let compose = compose();
    let services = services(&compose);
    let depends = services["connectors"]["depends_on"]
        .as_mapping()
        .expect("connectors depends on the servers");
    assert!(depends.len() >= 6, "{depends:?}");
    for (dependency, condition) in depends {
        let healthy = condition["condition"] == "service_healthy";
        let has_check = services[dependency]["healthcheck"]["test"].is_sequence();
        // s2-lite's image has no shell to probe with: started is all it can say.
        if name(dependency) == "s2" {
            assert_eq!(condition["condition"], "service_started");
            continue;
        }
        assert!(
            healthy && has_check,
            "{}: waited for as healthy with a health check",
            name(dependency)
        );
    }
}

#[test]
fn every_mounted_path_exists_or_is_built_by_the_main_job() {
    let compose = compose();
    let main_job = std::fs::read_to_string(repo().join("scripts/main-job")).unwrap();
    let mut mounts = 0;
    for (key, service) in services(&compose) {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let spec = volume.as_str().expect("short volume syntax");
            let Some(host) = spec.split(':').next().filter(|h| h.starts_with("./")) else {
                continue; // a named volume
            };
            mounts += 1;
            let relative = host.trim_start_matches("./");
            if relative == "dist/plugins" {
                assert!(
                    main_job.contains("dist/plugins"),
                    "scripts/main-job fills dist/plugins"
                );
                continue;
            }
            assert!(
                repo().join(relative).exists(),
                "{}: mounts {host}, which does not exist",
                name(key)
            );
        }
    }
    assert!(
        mounts >= 3,
        "configs, plugins and the s2-lite init file are mounted"
    );
}

/// `127.0.0.1:PORT` addresses in a text.
fn loopback_ports(text: &str) -> Vec<u16> {
    text.match_indices("127.0.0.1:")
        .filter_map(|(at, prefix)| {
            let digits: String = text[at + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn connector_files_parse_and_their_addresses_are_published_by_the_stack() {
    let compose = compose();
    let mut published = BTreeSet::new();
    for (_, service) in services(&compose) {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            published.extend(loopback_ports(port.as_str().expect("port strings")));
        }
    }
    let configs = repo().join("configs/connectors");
    let files = read_dir(&configs).expect("every connector file parses");
    assert!(files.len() >= 7, "{} connector files", files.len());
    for file in &files {
        let crate_dir = file
            .path
            .strip_prefix("libiggy_connector_")
            .map(|name| repo().join("plugins").join(name))
            .unwrap_or_else(|| panic!("{}: path names a plugin library", file.key));
        assert!(
            crate_dir.join("Cargo.toml").is_file(),
            "{}: no plugin crate at {}",
            file.key,
            crate_dir.display()
        );
        let text = std::fs::read_to_string(configs.join(format!("{}.toml", file.key)))
            .unwrap_or_else(|e| panic!("{}: the file is named after its key: {e}", file.key));
        for port in loopback_ports(&text) {
            assert!(
                published.contains(&port),
                "{}: 127.0.0.1:{port} is published by no service",
                file.key
            );
        }
    }
    let runtime = std::fs::read_to_string(repo().join("configs/config.toml")).unwrap();
    let runtime_ports = loopback_ports(&runtime);
    assert!(
        runtime_ports.iter().all(|port| !published.contains(port)),
        "the runtime's own HTTP port clashes with a service: {runtime_ports:?}"
    );
}

/// The runtime commits a sink's offsets before `consume` and ignores its
/// result, so a shipped sink that stops retrying after a few attempts loses
/// every batch sent while its target restarts: seen in the real runtime with
/// `retry.max_attempts = 5` in the openGemini file (InfluxDB down 15 s, the
/// points of that time gone). Shipped sinks keep the unlimited default.
#[test]
fn shipped_sinks_never_bound_their_retry_attempts() {
    let files = read_dir(&repo().join("configs/connectors")).expect("connector files parse");
    for file in files.iter().filter(|f| f.path.ends_with("_sink")) {
        let attempts = file
            .plugin_config
            .as_ref()
            .and_then(|config| config.get("retry"))
            .and_then(|retry| retry.get("max_attempts"));
        assert!(
            attempts.is_none(),
            "{}: retry.max_attempts = {} gives batches up during an outage",
            file.key,
            attempts.unwrap()
        );
    }
}
