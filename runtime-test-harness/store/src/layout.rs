//! Paths under the data directory; the layout is described in the crate docs.

use std::path::{Path, PathBuf};

pub(crate) fn lock_file(root: &Path) -> PathBuf {
    root.join("store.lock")
}

pub(crate) fn streams_dir(root: &Path) -> PathBuf {
    root.join("streams")
}

pub(crate) fn topic_dir(root: &Path, stream: &str, topic: &str) -> PathBuf {
    streams_dir(root).join(stream).join(topic)
}

pub(crate) fn topic_meta(topic_dir: &Path) -> PathBuf {
    topic_dir.join("topic.meta")
}

pub(crate) fn partition_log(topic_dir: &Path, partition_id: u32) -> PathBuf {
    topic_dir.join(format!("partition-{partition_id}.log"))
}

pub(crate) fn groups_dir(root: &Path) -> PathBuf {
    root.join("groups")
}

pub(crate) fn group_dir(groups_dir: &Path, group: &str) -> PathBuf {
    groups_dir.join(group)
}

pub(crate) fn group_offsets(group_dir: &Path) -> PathBuf {
    group_dir.join("offsets")
}
