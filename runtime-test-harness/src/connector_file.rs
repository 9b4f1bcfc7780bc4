//! The runtime's connector file format: one TOML file per connector in the
//! connectors directory. The same files serve the runtime and the harness.
//! Required keys are those the runtime's config types require
//! (runtime/src/configs/connectors.rs: `SinkConfig`, `SourceConfig`,
//! `StreamConsumerConfig`, `StreamProducerConfig`, read with no defaults by
//! configs/connectors/local_provider.rs): `type`, `key`, `enabled`,
//! `version`, `name`, `path`, `[[streams]]` and, in each, `stream`, `schema`
//! and `topics` (sinks) or `topic` (sources). A missing one fails the whole
//! run, as it stops the runtime from starting.

use iggy_connector_sdk::Schema;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    Sink,
    Source,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigFormat {
    #[default]
    Toml,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamSettings {
    pub stream: String,
    /// Sinks: the topics to consume.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Sources: the topic to produce to.
    pub topic: Option<String>,
    pub schema: Schema,
    pub batch_length: Option<u32>,
    pub poll_interval: Option<String>,
    pub consumer_group: Option<String>,
    pub linger_time: Option<String>,
}

impl StreamSettings {
    pub fn batch_length(&self) -> usize {
        self.batch_length.unwrap_or(1000).max(1) as usize
    }

    pub fn poll_interval(&self) -> Result<Duration, String> {
        let text = self.poll_interval.as_deref().unwrap_or("5ms");
        humantime::parse_duration(text)
            .map_err(|error| format!("streams.poll_interval `{text}`: {error}"))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConnectorFile {
    #[serde(rename = "type")]
    pub kind: ConnectorKind,
    pub key: String,
    pub enabled: bool,
    /// Several files may hold versions of one key: the highest is used
    /// unless `.active_versions.toml` names another.
    pub version: u64,
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub plugin_config_format: Option<ConfigFormat>,
    #[serde(default)]
    pub streams: Vec<StreamSettings>,
    pub plugin_config: Option<toml::Value>,
    #[serde(skip)]
    pub file: PathBuf,
}

/// `<connectors dir>/.active_versions.toml`, where the runtime records which
/// version of each key is active (configs/connectors/local_provider.rs,
/// `load_active_versions`).
#[derive(Debug, Default, Deserialize)]
struct ActiveVersions {
    #[serde(default)]
    sinks: HashMap<String, u64>,
    #[serde(default)]
    sources: HashMap<String, u64>,
}

impl ConnectorFile {
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let mut file: ConnectorFile =
            toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        file.file = path.to_path_buf();
        file.validate()
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(file)
    }

    fn validate(&self) -> Result<(), String> {
        if self.streams.is_empty() {
            return Err("no [[streams]] section".into());
        }
        for stream in &self.streams {
            match self.kind {
                ConnectorKind::Sink if stream.topics.is_empty() => {
                    return Err(format!(
                        "streams `{}`: a sink needs `topics`",
                        stream.stream
                    ));
                }
                ConnectorKind::Source if stream.topic.is_none() => {
                    return Err(format!(
                        "streams `{}`: a source needs `topic`",
                        stream.stream
                    ));
                }
                _ => {}
            }
            stream.poll_interval()?;
            if let Some(linger) = &stream.linger_time {
                humantime::parse_duration(linger)
                    .map_err(|error| format!("streams.linger_time `{linger}`: {error}"))?;
            }
        }
        Ok(())
    }

    /// The stream a source produces to: the runtime builds a producer for each
    /// `[[streams]]` entry and keeps the last (runtime/src/source.rs,
    /// `setup_source_producer`), so the last entry is the one used.
    pub fn producer_stream(&self) -> Result<&StreamSettings, String> {
        if self.streams.len() > 1 {
            eprintln!(
                "connector {}: {} [[streams]] entries; a source produces to the last one, as the runtime does",
                self.key,
                self.streams.len()
            );
        }
        self.streams
            .last()
            .ok_or_else(|| "no [[streams]] section".to_string())
    }

    /// The schema the plugin says it produces, when its `plugin_config` has
    /// a `schema` key (the convention of this repository's sources): the
    /// plugin never sees `[[streams]]`, so nothing else can compare the two.
    pub fn declared_schema(&self) -> Option<Result<Schema, String>> {
        let text = self.plugin_config.as_ref()?.get("schema")?.as_str()?;
        Some(
            text.parse::<Schema>()
                .map_err(|_| format!("plugin_config.schema `{text}` is not a schema")),
        )
    }

    /// The `plugin_config` as the JSON text the runtime passes to `open`.
    pub fn plugin_config_json(&self) -> Result<String, String> {
        let value = match (
            &self.plugin_config,
            self.plugin_config_format.unwrap_or_default(),
        ) {
            (None, _) => serde_json::Value::Null,
            // A JSON document given as a string, as the runtime's API stores it.
            (Some(toml::Value::String(text)), ConfigFormat::Json) => serde_json::from_str(text)
                .map_err(|error| format!("plugin_config is not valid JSON: {error}"))?,
            (Some(_), ConfigFormat::Yaml) => {
                return Err("plugin_config_format = \"yaml\" is not supported by the harness; use toml or json".into());
            }
            (Some(table), _) => serde_json::to_value(table)
                .map_err(|error| format!("plugin_config cannot become JSON: {error}"))?,
        };
        Ok(value.to_string())
    }
}

/// Reads the connector files of `dir` as the runtime's local provider does
/// (configs/connectors/local_provider.rs): `*.toml` except hidden files and
/// `Cargo.toml`; per key the version `.active_versions.toml` names, else the
/// highest; then only enabled ones. A bad file is an error naming it.
/// Sorted by file name.
pub fn read_dir(dir: &Path) -> Result<Vec<ConnectorFile>, String> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        format!(
            "cannot read connectors directory {}: {error}",
            dir.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    !name.starts_with('.') && !name.eq_ignore_ascii_case("cargo.toml")
                })
        })
        .collect();
    paths.sort();
    let active = active_versions(dir)?;
    let mut by_key: HashMap<(ConnectorKind, String), Vec<ConnectorFile>> = HashMap::new();
    for path in paths {
        let file = ConnectorFile::read(&path)?;
        by_key
            .entry((file.kind, file.key.clone()))
            .or_default()
            .push(file);
    }
    let mut files = Vec::new();
    for ((kind, key), versions) in by_key {
        let wanted = match kind {
            ConnectorKind::Sink => active.sinks.get(&key),
            ConnectorKind::Source => active.sources.get(&key),
        };
        let chosen = match wanted {
            Some(version) => versions.into_iter().find(|f| f.version == *version),
            None => {
                let highest = versions.iter().map(|f| f.version).max();
                let mut top: Vec<ConnectorFile> = versions
                    .into_iter()
                    .filter(|f| Some(f.version) == highest)
                    .collect();
                if top.len() > 1 {
                    return Err(format!(
                        "{} and {} both hold version {} of connector `{key}`",
                        top[0].file.display(),
                        top[1].file.display(),
                        top[0].version
                    ));
                }
                top.pop()
            }
        };
        let Some(file) = chosen else {
            eprintln!(
                "connector {key}: the active version named in .active_versions.toml has no file"
            );
            continue;
        };
        if file.enabled {
            files.push(file);
        } else {
            eprintln!(
                "connector {} ({}) is disabled",
                file.key,
                file.file.display()
            );
        }
    }
    files.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(files)
}

fn active_versions(dir: &Path) -> Result<ActiveVersions, String> {
    let path = dir.join(".active_versions.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(_) => Ok(ActiveVersions::default()),
    }
}

impl ConnectorFile {
    /// A source whose `plugin_config.schema` the `[[streams]]` schema's encoder
    /// cannot take. The runtime opens such a source and then refuses every batch
    /// it hands over (the plugin never sees `[[streams]]`), and so does `run`;
    /// `check` says so up front.
    pub fn schema_mismatch(&self) -> Option<String> {
        if self.kind != ConnectorKind::Source {
            return None;
        }
        let stream = self.producer_stream().ok()?.schema;
        match self.declared_schema()? {
            Err(error) => Some(error),
            Ok(declared) => (crate::source_messages::stream_accepts(stream, declared) == Some(false))
                .then(|| {
                    format!(
                        "plugin_config.schema is {declared} but [[streams]] schema is {stream}: the {stream} encoder refuses {declared} payloads, so the runtime would refuse every batch of this source"
                    )
                }),
        }
    }
}
