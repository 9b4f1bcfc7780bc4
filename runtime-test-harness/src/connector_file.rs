//! The runtime's connector file format: one TOML file per connector in the
//! connectors directory. The same files serve the runtime and the harness.

use iggy_connector_sdk::Schema;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
    #[serde(default)]
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

/// Reads every enabled connector file in `dir` (`*.toml`, skipping
/// `Cargo.toml`), sorted by file name; a bad file is an error naming it.
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
            !path
                .file_name()
                .is_some_and(|name| name.eq_ignore_ascii_case("cargo.toml"))
        })
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let file = ConnectorFile::read(&path)?;
        if file.enabled {
            files.push(file);
        } else {
            eprintln!("connector {} ({}) is disabled", file.key, path.display());
        }
    }
    let mut keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
    keys.sort_unstable();
    if let Some(pair) = keys.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("two connector files share the key `{}`", pair[0]));
    }
    Ok(files)
}
