//! The parts of the runtime's own `config.toml` the harness uses: where the
//! connector files are and where source state is kept.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
struct RuntimeConfig {
    #[serde(default)]
    state: StateSection,
    #[serde(default)]
    connectors: ConnectorsSection,
}

#[derive(Debug, Default, Deserialize)]
struct StateSection {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct ConnectorsSection {
    config_type: Option<String>,
    config_dir: Option<PathBuf>,
}

pub struct Locations {
    pub connectors_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

/// Reads the runtime config; relative paths stay relative to the working
/// directory, as the runtime resolves them.
pub fn read(path: &Path) -> Result<Locations, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let config: RuntimeConfig =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(kind) = config
        .connectors
        .config_type
        .as_deref()
        .filter(|k| *k != "local")
    {
        return Err(format!(
            "{}: connectors.config_type `{kind}` is not supported by the harness (only local)",
            path.display()
        ));
    }
    Ok(Locations {
        connectors_dir: config.connectors.config_dir,
        state_dir: config.state.path,
    })
}
