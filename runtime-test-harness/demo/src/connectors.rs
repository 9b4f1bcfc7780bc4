//! The pipeline's connector files are the shipped ones in `configs/connectors`,
//! changed only where a local run must differ: server addresses (free ports),
//! library paths (the freshly built folder), S2 discovery every second, and
//! the Flink source in monitor mode (no SQL Gateway runs here).

use crate::servers::{FLINK_JOB_NAME, Servers};
use std::path::Path;
use toml::{Table, Value};

/// The connector files the demo runs, by key; others (e.g. those whose
/// system has no local server) are left out and named.
const PIPELINE: &[&str] = &[
    "nats_jetstream_sink",
    "nats_jetstream_source",
    "s2_sink",
    "s2_sink_upsert",
    "opengemini_sink",
    "s2_source",
    "flink_source",
    "pravega_sink",
    "pravega_source",
];

pub const FLINK_TOPIC: &str = "flink_jobs";

/// Writes the pipeline's files into `out`; returns the keys written.
pub fn write(
    configs: &Path,
    plugins: &Path,
    servers: &Servers,
    out: &Path,
) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut entries: Vec<_> = std::fs::read_dir(configs)
        .map_err(|e| format!("{}: {e}", configs.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    entries.sort();
    let mut written = Vec::new();
    for path in entries {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut file: Table =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let key = file
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{}: no `key`", path.display()))?
            .to_string();
        if !PIPELINE.contains(&key.as_str()) {
            eprintln!("   {key}: left out (no local server for it in this demo)");
            continue;
        }
        if key == "flink_source" && servers.flink.is_none() {
            eprintln!("   {key}: left out (no Flink cluster)");
            continue;
        }
        if key.starts_with("pravega_") && servers.pravega.is_none() {
            eprintln!("   {key}: left out (no Pravega server)");
            continue;
        }
        localize(&mut file, plugins, servers)?;
        let target = out.join(format!("{key}.toml"));
        std::fs::write(&target, toml::to_string(&file).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", target.display()))?;
        written.push(key);
    }
    Ok(written)
}

fn localize(file: &mut Table, plugins: &Path, servers: &Servers) -> Result<(), String> {
    let library = file
        .get("path")
        .and_then(Value::as_str)
        .ok_or("a connector file without `path`")?;
    let library = plugins.join(format!("{library}.{}", std::env::consts::DLL_EXTENSION));
    file.insert("path".into(), library.display().to_string().into());
    let config = file
        .get_mut("plugin_config")
        .and_then(Value::as_table_mut)
        .ok_or("a connector file without [plugin_config]")?;
    if config.contains_key("servers") {
        config.insert("servers".into(), vec![servers.nats.url()].into());
    }
    if config.contains_key("endpoint") {
        config.insert("endpoint".into(), servers.s2.endpoint().into());
        // s2-lite accepts any token; the shipped files read S2's from the environment.
        config.insert("access_token".into(), "s2-lite-takes-any-token".into());
    }
    if config.contains_key("discovery_interval") {
        config.insert("discovery_interval".into(), "1s".into());
    }
    if config.contains_key("controller_uri") {
        let pravega = servers.pravega.as_ref().ok_or("no Pravega server")?;
        config.insert("controller_uri".into(), pravega.controller_uri().into());
    }
    if config.contains_key("urls") {
        config.insert("urls".into(), vec![servers.influxdb.url()].into());
    }
    if config.contains_key("flink_cluster_url") {
        let flink = servers.flink.as_ref().ok_or("no Flink cluster")?;
        config.insert("flink_cluster_url".into(), flink.cluster.rest_url().into());
        config.remove("sql_gateway_url");
        config.remove("records");
        let mut monitor = Table::new();
        monitor.insert(
            "job_name_pattern".into(),
            format!("^{FLINK_JOB_NAME}$").into(),
        );
        // Status changes only, so the run can end once everything is idle.
        monitor.insert("metrics_interval".into(), "0s".into());
        config.insert("monitor".into(), monitor.into());
        if let Some(Value::Array(streams)) = file.get_mut("streams") {
            for stream in streams.iter_mut().filter_map(Value::as_table_mut) {
                stream.insert("topic".into(), FLINK_TOPIC.into());
            }
        }
    }
    Ok(())
}
