//! Source state files, as the runtime keeps them: `<dir>/source_<key>.state`
//! holding the raw `ConnectorState` bytes, replaced atomically (temp file,
//! fdatasync, rename, directory sync). An empty file means no state.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(dir: &Path, key: &str) -> Self {
        Self {
            path: dir.join(format!("source_{key}.state")),
        }
    }

    pub fn load(&self) -> Result<Option<Vec<u8>>, String> {
        match fs::read(&self.path) {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!(
                "cannot read state {}: {error}",
                self.path.display()
            )),
        }
    }

    pub fn save(&self, bytes: &[u8]) -> Result<(), String> {
        let fail = |what: &str, error: std::io::Error| {
            format!("cannot {what} state {}: {error}", self.path.display())
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = self.path.with_extension("state.tmp");
        let mut file = File::create(&tmp).map_err(|e| fail("create temp file for", e))?;
        file.write_all(bytes).map_err(|e| fail("write", e))?;
        file.sync_data().map_err(|e| fail("sync", e))?;
        fs::rename(&tmp, &self.path).map_err(|e| fail("replace", e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("sync the directory of", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_replaces_and_load_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::new(dir.path(), "k");
        assert_eq!(state.load().unwrap(), None);
        state.save(b"one").unwrap();
        state.save(b"two").unwrap();
        assert_eq!(state.load().unwrap().as_deref(), Some(&b"two"[..]));
        assert!(dir.path().join("source_k.state").is_file());
        assert!(!dir.path().join("source_k.state.tmp").exists());
        state.save(b"").unwrap();
        assert_eq!(state.load().unwrap(), None, "an empty file means no state");
    }
}
