//! An embedded stream store that stands in for an Iggy server inside the
//! test harness: streams → topics → partitions → messages, plus
//! consumer-group offsets.
//!
//! [`StreamStore::open`] keeps everything under a data directory so a
//! restarted harness resumes where it stopped; [`StreamStore::in_memory`]
//! keeps it in memory for benchmarks. A [`StreamStore`] is a cheap `Clone`
//! handle usable from many threads; appends and reads lock per partition.
//!
//! On disk, each partition is an append-only log of checksummed records
//! written through to the OS on every append (fsync only in
//! [`StreamStore::sync`]); a record torn by a killed process is cut away on
//! the next open. The directory layout:
//!
//! ```text
//! <dir>/store.lock                              held while a StreamStore has the dir open
//! <dir>/streams/<stream>/<topic>/topic.meta     "partitions=<n>"
//! <dir>/streams/<stream>/<topic>/partition-<id>.log
//! <dir>/groups/<group>/offsets                  that group's committed offsets
//! ```

mod checksum;
mod error;
mod fs_util;
mod ids;
mod layout;
mod limits;
mod locks;
mod log_file;
mod log_record;
mod memory_log;
mod message;
mod names;
mod offsets;
mod partition;
mod store;
mod topic;

pub use error::StoreError;
pub use limits::MAX_PARTITIONS;
pub use message::{NewMessage, StoredMessage, TopicInfo};
pub use store::StreamStore;
