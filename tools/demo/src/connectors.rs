//! The pipeline's connector files are the shipped ones in `configs/connectors`,
//! changed only where a local run must differ: server addresses (free ports),
//! library paths (the freshly built folder), S2 discovery every second, and
//! Flink's datagen made a bounded sequence of order ids so its rows can be
//! counted. The Flink file runs twice: as shipped (records mode) and turned
//! into monitor mode, watching the records query's own job.

use crate::servers::Servers;
use iggy_harness_test_support::process::free_port;
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

/// Where the monitor-mode copy of the Flink file puts job events.
pub const FLINK_TOPIC: &str = "flink_jobs";
pub const FLINK_MONITOR_KEY: &str = "flink_source_monitor";
/// The records query's job name, which the monitor watches.
pub const FLINK_JOB_NAME: &str = "iggy-demo-orders";

/// What `write` wrote: the connector keys, and each one's metrics port.
pub struct Written {
    pub keys: Vec<String>,
    pub metrics: Vec<(String, u16)>,
}

/// Writes the pipeline's files into `out`.
pub fn write(
    configs: &Path,
    plugins: &Path,
    servers: &Servers,
    flink_rows: u64,
    out: &Path,
) -> Result<Written, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut entries: Vec<_> = std::fs::read_dir(configs)
        .map_err(|e| format!("{}: {e}", configs.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    entries.sort();
    let mut written = Written {
        keys: Vec::new(),
        metrics: Vec::new(),
    };
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
        if key == "flink_source" {
            let mut monitor = file.clone();
            into_monitor(&mut monitor)?;
            written.save(&mut monitor, FLINK_MONITOR_KEY, out)?;
            bounded_orders(&mut file, flink_rows)?;
        }
        written.save(&mut file, &key, out)?;
    }
    Ok(written)
}

impl Written {
    /// Saves a connector file, serving its metrics on a free port.
    fn save(&mut self, file: &mut Table, key: &str, out: &Path) -> Result<(), String> {
        let port = free_port();
        let mut metrics = Table::new();
        metrics.insert("address".into(), format!("127.0.0.1:{port}").into());
        metrics.insert("connector".into(), key.into());
        plugin_config(file)?.insert("metrics".into(), metrics.into());
        self.metrics.push((key.to_string(), port));
        save(file, key, out)?;
        self.keys.push(key.to_string());
        Ok(())
    }
}

fn save(file: &Table, key: &str, out: &Path) -> Result<(), String> {
    let target = out.join(format!("{key}.toml"));
    std::fs::write(&target, toml::to_string(file).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", target.display()))
}

fn plugin_config(file: &mut Table) -> Result<&mut Table, String> {
    file.get_mut("plugin_config")
        .and_then(Value::as_table_mut)
        .ok_or_else(|| "a connector file without [plugin_config]".to_string())
}

fn localize(file: &mut Table, plugins: &Path, servers: &Servers) -> Result<(), String> {
    let library = file
        .get("path")
        .and_then(Value::as_str)
        .ok_or("a connector file without `path`")?;
    let library = plugins.join(format!("{library}.{}", std::env::consts::DLL_EXTENSION));
    file.insert("path".into(), library.display().to_string().into());
    let config = plugin_config(file)?;
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
        config.insert("sql_gateway_url".into(), flink.gateway.url().into());
    }
    Ok(())
}

/// Order ids 1..=rows, each once, instead of the shipped endless random ones.
fn bounded_orders(file: &mut Table, rows: u64) -> Result<(), String> {
    let records = plugin_config(file)?
        .get_mut("records")
        .and_then(Value::as_table_mut)
        .ok_or("the shipped Flink file has no [plugin_config.records]")?;
    records.insert("job_name".into(), FLINK_JOB_NAME.into());
    let mut properties = Table::new();
    for (name, value) in [
        ("rows-per-second", "5000".to_string()),
        ("fields.order_id.kind", "sequence".to_string()),
        ("fields.order_id.start", "1".to_string()),
        ("fields.order_id.end", rows.to_string()),
        ("fields.customer.length", "8".to_string()),
    ] {
        properties.insert(name.into(), value.into());
    }
    records.insert("properties".into(), properties.into());
    Ok(())
}

/// The same file in monitor mode: the records query's job events, status
/// changes only, so the run can end once everything is idle.
fn into_monitor(file: &mut Table) -> Result<(), String> {
    file.insert("key".into(), FLINK_MONITOR_KEY.into());
    file.insert("name".into(), "Apache Flink source (monitor)".into());
    let config = plugin_config(file)?;
    config.remove("sql_gateway_url");
    config.remove("records");
    let mut monitor = Table::new();
    monitor.insert(
        "job_name_pattern".into(),
        format!("^{FLINK_JOB_NAME}$").into(),
    );
    monitor.insert("metrics_interval".into(), "0s".into());
    config.insert("monitor".into(), monitor.into());
    if let Some(Value::Array(streams)) = file.get_mut("streams") {
        for stream in streams.iter_mut().filter_map(Value::as_table_mut) {
            stream.insert("topic".into(), FLINK_TOPIC.into());
        }
    }
    Ok(())
}
