//! Consumer-group offsets. Each group's offsets are rewritten atomically to
//! their own file on every commit, so a crash never loses or mixes commits.
//!
//! File format (little-endian): magic `IHSOFF2\n`, entry count u32, then per
//! entry: stream length u8 + bytes, topic length u8 + bytes, partition id u32,
//! offset u64; finally the XXH3-64 of everything before it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::checksum::hash;
use crate::error::StoreError;
use crate::fs_util::{create_dir_all, named_subdirs, sync_dir, write_atomically};
use crate::layout;
use crate::locks::lock;
use crate::names;

const MAGIC: &[u8; 8] = b"IHSOFF2\n";
/// The first format, checked with XXH64; refused by name.
const MAGIC_V1: &[u8; 8] = b"IHSOFF1\n";
// Name lengths are stored in one byte.
const _: () = assert!(names::MAX_LEN <= u8::MAX as usize);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct OffsetKey {
    stream: String,
    topic: String,
    partition_id: u32,
}

type GroupOffsets = BTreeMap<OffsetKey, u64>;

pub(crate) struct ConsumerOffsets {
    /// `None` in memory.
    dir: Option<PathBuf>,
    /// The per-group mutex is held across that group's file write, so commits
    /// of one group are written in order while other groups proceed.
    groups: Mutex<BTreeMap<String, Arc<Mutex<GroupOffsets>>>>,
}

impl ConsumerOffsets {
    pub(crate) fn in_memory() -> Self {
        Self {
            dir: None,
            groups: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn load(dir: PathBuf) -> Result<Self, StoreError> {
        create_dir_all(&dir)?;
        let mut groups = BTreeMap::new();
        for (group, group_dir) in named_subdirs(&dir)? {
            let path = layout::group_offsets(&group_dir);
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                // The group directory was created but its first commit never finished.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(StoreError::io("read", &path)(error)),
            };
            let offsets = decode(&bytes).map_err(|detail| StoreError::corrupt(&path, detail))?;
            groups.insert(group, Arc::new(Mutex::new(offsets)));
        }
        Ok(Self {
            dir: Some(dir),
            groups: Mutex::new(groups),
        })
    }

    pub(crate) fn get(
        &self,
        group: &str,
        stream: &str,
        topic: &str,
        partition_id: u32,
    ) -> Option<u64> {
        let group = lock(&self.groups).get(group).cloned()?;
        let key = OffsetKey {
            stream: stream.to_owned(),
            topic: topic.to_owned(),
            partition_id,
        };
        lock(&group).get(&key).copied()
    }

    /// The caller has validated the group name and the stream/topic/partition.
    pub(crate) fn commit(
        &self,
        group: &str,
        stream: &str,
        topic: &str,
        partition_id: u32,
        offset: u64,
    ) -> Result<(), StoreError> {
        let offsets = {
            let mut groups = lock(&self.groups);
            match groups.get(group) {
                Some(offsets) => Arc::clone(offsets),
                None => {
                    if let Some(dir) = &self.dir {
                        create_dir_all(&layout::group_dir(dir, group))?;
                    }
                    let offsets = Arc::new(Mutex::new(GroupOffsets::new()));
                    groups.insert(group.to_owned(), Arc::clone(&offsets));
                    offsets
                }
            }
        };
        let key = OffsetKey {
            stream: stream.to_owned(),
            topic: topic.to_owned(),
            partition_id,
        };
        let mut offsets = lock(&offsets);
        let previous = offsets.insert(key.clone(), offset);
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let written = write_atomically(
            &layout::group_offsets(&layout::group_dir(dir, group)),
            &encode(&offsets),
        );
        if written.is_err() {
            // Keep memory in line with what is on disk, as the caller is told the commit failed.
            match previous {
                Some(previous) => offsets.insert(key, previous),
                None => offsets.remove(&key),
            };
        }
        written
    }

    /// Makes the renames of offset files durable.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let groups: Vec<String> = lock(&self.groups).keys().cloned().collect();
        for group in groups {
            sync_dir(&layout::group_dir(dir, &group))?;
        }
        sync_dir(dir)
    }
}

fn encode(offsets: &GroupOffsets) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + offsets.len() * 64);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for (key, offset) in offsets {
        for name in [&key.stream, &key.topic] {
            // Validated names are at most 255 bytes.
            bytes.push(name.len() as u8);
            bytes.extend_from_slice(name.as_bytes());
        }
        bytes.extend_from_slice(&key.partition_id.to_le_bytes());
        bytes.extend_from_slice(&offset.to_le_bytes());
    }
    let check = hash(&bytes);
    bytes.extend_from_slice(&check.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Result<GroupOffsets, String> {
    if bytes.starts_with(MAGIC_V1) {
        return Err(
            "offsets of an older harness (format IHSOFF1, XXH64 check); start with a fresh data directory"
                .into(),
        );
    }
    let (content, check) = bytes.split_last_chunk::<8>().ok_or("file too short")?;
    if u64::from_le_bytes(*check) != hash(content) {
        return Err("checksum mismatch".into());
    }
    let mut reader = Reader { bytes: content };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err("not an offsets file (bad magic)".into());
    }
    let count = u32::from_le_bytes(reader.array()?);
    let mut offsets = GroupOffsets::new();
    for _ in 0..count {
        let stream = reader.name()?;
        let topic = reader.name()?;
        let partition_id = u32::from_le_bytes(reader.array()?);
        let offset = u64::from_le_bytes(reader.array()?);
        offsets.insert(
            OffsetKey {
                stream,
                topic,
                partition_id,
            },
            offset,
        );
    }
    if !reader.bytes.is_empty() {
        return Err(format!("{} unexpected trailing bytes", reader.bytes.len()));
    }
    Ok(offsets)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < len {
            return Err("entry cut short".into());
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn name(&mut self) -> Result<String, String> {
        let [len] = self.array::<1>()?;
        let raw = self.take(usize::from(len))?;
        let name = std::str::from_utf8(raw).map_err(|_| "name is not UTF-8".to_owned())?;
        if !names::is_valid(name) {
            return Err(format!("invalid name {name:?}"));
        }
        Ok(name.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(stream: &str, topic: &str, partition_id: u32) -> OffsetKey {
        OffsetKey {
            stream: stream.into(),
            topic: topic.into(),
            partition_id,
        }
    }

    #[test]
    fn encoding_round_trips() {
        let mut offsets = GroupOffsets::new();
        offsets.insert(key("s", "t", 1), 5);
        offsets.insert(key("stream two", "topic ü", 3), u64::MAX);
        assert_eq!(decode(&encode(&offsets)), Ok(offsets));
        assert_eq!(
            decode(&encode(&GroupOffsets::new())),
            Ok(GroupOffsets::new())
        );
    }

    #[test]
    fn the_first_format_is_refused_by_name() {
        let mut bytes = encode(&GroupOffsets::new());
        bytes[..MAGIC_V1.len()].copy_from_slice(MAGIC_V1);
        let error = decode(&bytes).unwrap_err();
        assert!(error.contains("older harness"), "{error}");
    }

    #[test]
    fn damage_is_detected() {
        let mut offsets = GroupOffsets::new();
        offsets.insert(key("s", "t", 1), 5);
        let bytes = encode(&offsets);
        for cut in [0, 7, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes;
        flipped[12] ^= 1;
        assert!(decode(&flipped).is_err());
    }

    #[test]
    fn corrupt_file_fails_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let offsets = ConsumerOffsets::load(layout::groups_dir(root)).expect("load");
        offsets.commit("g", "s", "t", 1, 3).expect("commit");
        drop(offsets);
        let path = layout::group_offsets(&layout::group_dir(&layout::groups_dir(root), "g"));
        fs::write(path, b"garbage").expect("overwrite");
        assert!(matches!(
            ConsumerOffsets::load(layout::groups_dir(root)),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
