//! Small file-system helpers shared by the log, topic and offset files.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Positional I/O lets readers and the appender share one handle without a
/// shared cursor.
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], position: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, position)
}

#[cfg(unix)]
pub(crate) fn write_all_at(file: &File, buf: &[u8], position: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, position)
}

#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut position: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, position)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            read => {
                buf = &mut buf[read..];
                position += read as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
pub(crate) fn write_all_at(file: &File, mut buf: &[u8], mut position: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, position)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            written => {
                buf = &buf[written..];
                position += written as u64;
            }
        }
    }
    Ok(())
}

/// Makes the entries of a directory (created files, renames) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    // Only Unix lets a directory be opened and fsynced; elsewhere the file
    // system takes care of directory entries itself.
    if cfg!(unix) {
        File::open(dir)
            .and_then(|handle| handle.sync_all())
            .map_err(StoreError::io("fsync directory", dir))?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` so a crash leaves either the old or the new
/// content, never a mix: write a temporary file beside it, fsync, rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let temp = temp_path(path);
    let mut file = File::create(&temp).map_err(StoreError::io("create", &temp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io("write", &temp))?;
    drop(file);
    fs::rename(&temp, path).map_err(StoreError::io("rename into place", path))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

pub(crate) fn create_dir_all(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(StoreError::io("create directory", dir))
}

/// The subdirectories of `dir` whose names are valid store names, sorted.
/// Anything else (stray files, editor backups, foreign encodings) is ignored.
pub(crate) fn named_subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let entries = fs::read_dir(dir).map_err(StoreError::io("list directory", dir))?;
    let mut subdirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StoreError::io("list directory", dir))?;
        let is_dir = entry
            .file_type()
            .map_err(StoreError::io("inspect", &entry.path()))?
            .is_dir();
        if let (true, Ok(name)) = (is_dir, entry.file_name().into_string())
            && crate::names::is_valid(&name)
        {
            subdirs.push((name, entry.path()));
        }
    }
    subdirs.sort();
    Ok(subdirs)
}
