use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use iggy_harness_store::{NewMessage, StoreError, StreamStore, TopicInfo};

fn payloads(prefix: &str, count: usize) -> Vec<NewMessage<'static>> {
    (0..count)
        .map(|n| NewMessage::new(format!("{prefix}-{n}").into_bytes()))
        .collect()
}

fn payload_strings(store: &StreamStore, stream: &str, topic: &str, partition: u32) -> Vec<String> {
    store
        .read(stream, topic, partition, 0, usize::MAX)
        .expect("read")
        .into_iter()
        .map(|message| String::from_utf8(message.payload).expect("utf-8 payload"))
        .collect()
}

/// Runs `check` against an in-memory store and an on-disk one.
fn in_both_modes(check: impl Fn(&StreamStore)) {
    check(&StreamStore::in_memory());
    let dir = tempfile::tempdir().expect("tempdir");
    check(&StreamStore::open(dir.path()).expect("open"));
}

fn log_path(root: &Path, stream: &str, topic: &str, partition: u32) -> PathBuf {
    root.join("streams")
        .join(stream)
        .join(topic)
        .join(format!("partition-{partition}.log"))
}

/// A one-partition topic `s/t` on disk holding `count` messages; its log's path.
fn written_log(root: &Path, prefix: &str, count: usize) -> PathBuf {
    let store = StreamStore::open(root).expect("open");
    store.ensure_topic("s", "t", 1).expect("ensure");
    store
        .append("s", "t", 1, payloads(prefix, count))
        .expect("append");
    log_path(root, "s", "t", 1)
}

/// What opening the store at `root` reports as corrupt, which must be `log`.
fn corruption_in(root: &Path, log: &Path) -> String {
    match StreamStore::open(root) {
        Err(StoreError::Corrupt { file, detail }) => {
            assert_eq!(file, log);
            detail
        }
        other => panic!(
            "expected a corruption error in {}, got {other:?}",
            log.display()
        ),
    }
}

#[test]
fn append_and_read_keep_order_and_dense_offsets() {
    in_both_modes(|store| {
        store.ensure_topic("s", "t", 1).expect("ensure");
        assert_eq!(
            store.append("s", "t", 1, payloads("a", 3)).expect("append"),
            0..=2
        );
        assert_eq!(
            store.append("s", "t", 1, payloads("b", 2)).expect("append"),
            3..=4
        );

        let all = store.read("s", "t", 1, 0, 100).expect("read");
        let offsets: Vec<u64> = all.iter().map(|message| message.offset).collect();
        assert_eq!(offsets, [0, 1, 2, 3, 4]);
        assert_eq!(
            payload_strings(store, "s", "t", 1),
            ["a-0", "a-1", "a-2", "b-0", "b-1"]
        );

        let middle = store.read("s", "t", 1, 2, 2).expect("read");
        assert_eq!(middle, all[2..4]);
        assert!(store.read("s", "t", 1, 5, 10).expect("read").is_empty());
        assert!(
            store
                .read("s", "t", 1, u64::MAX, 10)
                .expect("read")
                .is_empty()
        );
        assert!(store.read("s", "t", 1, 0, 0).expect("read").is_empty());
    });
}

#[test]
fn stored_messages_carry_ids_timestamps_and_checksums() {
    in_both_modes(|store| {
        store.ensure_topic("s", "t", 1).expect("ensure");
        let explicit = NewMessage {
            id: 77,
            timestamp: Some(5),
            origin_timestamp: 9,
            headers: Cow::Borrowed(b"h"),
            payload: Cow::Borrowed(b"p"),
        };
        let mut batch = payloads("auto", 50);
        batch.push(explicit);
        batch.extend(payloads("later", 50));
        store.append("s", "t", 1, batch).expect("append");
        let stored = store.read("s", "t", 1, 0, usize::MAX).expect("read");

        let kept = &stored[50];
        assert_eq!((kept.id, kept.timestamp, kept.origin_timestamp), (77, 5, 9));
        assert_eq!(
            (kept.headers.as_slice(), kept.payload.as_slice()),
            (&b"h"[..], &b"p"[..])
        );

        let assigned: Vec<_> = stored
            .iter()
            .filter(|message| message.offset != 50)
            .collect();
        let ids: HashSet<u128> = assigned.iter().map(|message| message.id).collect();
        assert_eq!(ids.len(), assigned.len());
        assert!(!ids.contains(&0));
        assert!(
            assigned
                .windows(2)
                .all(|pair| pair[0].timestamp <= pair[1].timestamp)
        );
        assert!(
            assigned[0].timestamp > 1_577_836_800_000_000,
            "microseconds since the epoch"
        );

        // Same content gives the same checksum; different content a different one.
        store
            .append("s", "t", 1, payloads("auto", 1))
            .expect("append");
        let again = store.read("s", "t", 1, 101, 1).expect("read");
        assert_eq!(again[0].checksum, stored[0].checksum);
        assert_ne!(stored[0].checksum, stored[1].checksum);
    });
}

#[test]
fn append_balanced_rotates_round_robin() {
    in_both_modes(|store| {
        store.ensure_topic("s", "t", 3).expect("ensure");
        let picks: Vec<(u32, std::ops::RangeInclusive<u64>)> = (0..7)
            .map(|n| {
                store
                    .append_balanced("s", "t", payloads(&format!("b{n}"), 2))
                    .expect("append")
            })
            .collect();
        let partitions: Vec<u32> = picks.iter().map(|(partition, _)| *partition).collect();
        assert_eq!(partitions, [1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(picks[0].1, 0..=1);
        assert_eq!(picks[3].1, 2..=3);
        assert_eq!(picks[6].1, 4..=5);
        assert_eq!(
            payload_strings(store, "s", "t", 2),
            ["b1-0", "b1-1", "b4-0", "b4-1"]
        );
        assert_eq!(
            store
                .topic_info("s", "t")
                .expect("info")
                .messages_per_partition,
            [6, 4, 4]
        );
    });
}

#[test]
fn partition_ids_are_one_based_and_bounded() {
    in_both_modes(|store| {
        store.ensure_topic("s", "t", 2).expect("ensure");
        for bad in [0, 3, u32::MAX] {
            assert!(matches!(
                store.append("s", "t", bad, payloads("x", 1)),
                Err(StoreError::InvalidPartition { partition_id, partitions: 2, .. }) if partition_id == bad
            ));
            assert!(matches!(
                store.read("s", "t", bad, 0, 1),
                Err(StoreError::InvalidPartition { .. })
            ));
        }
        assert!(store.append("s", "t", 2, payloads("x", 1)).is_ok());
        assert!(matches!(
            store.ensure_topic("s", "zero", 0),
            Err(StoreError::InvalidPartitionCount { partitions: 0, .. })
        ));
        assert!(store.topic_info("s", "zero").is_none());
    });
}

#[test]
fn ensure_topic_keeps_the_existing_partition_count() {
    in_both_modes(|store| {
        store.ensure_topic("s", "t", 3).expect("ensure");
        store
            .ensure_topic("s", "t", 1)
            .expect("ensure again, fewer");
        store.ensure_topic("s", "t", 5).expect("ensure again, more");
        assert_eq!(store.topic_info("s", "t").expect("info").partitions, 3);
    });
}

#[test]
fn unknown_topics_and_empty_batches_are_errors() {
    in_both_modes(|store| {
        assert!(matches!(
            store.append("nope", "t", 1, payloads("x", 1)),
            Err(StoreError::UnknownTopic { .. })
        ));
        assert!(matches!(
            store.read("nope", "t", 1, 0, 1),
            Err(StoreError::UnknownTopic { .. })
        ));
        assert!(store.topic_info("nope", "t").is_none());
        store.ensure_topic("s", "t", 2).expect("ensure");
        assert!(matches!(
            store.append("s", "t", 1, Vec::new()),
            Err(StoreError::EmptyBatch { .. })
        ));
        assert!(matches!(
            store.append_balanced("s", "t", Vec::new()),
            Err(StoreError::EmptyBatch { .. })
        ));
        // The rejected batch did not use up partition 1's turn.
        assert_eq!(
            store
                .append_balanced("s", "t", payloads("x", 1))
                .expect("append")
                .0,
            1
        );
    });
}

#[test]
fn invalid_names_are_rejected() {
    in_both_modes(|store| {
        let too_long = "n".repeat(256);
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", too_long.as_str()] {
            assert!(matches!(
                store.ensure_topic(bad, "t", 1),
                Err(StoreError::InvalidName { kind: "stream", .. })
            ));
            assert!(matches!(
                store.ensure_topic("s", bad, 1),
                Err(StoreError::InvalidName { kind: "topic", .. })
            ));
        }
        store.ensure_topic("s", "t", 1).expect("ensure");
        store.append("s", "t", 1, payloads("x", 1)).expect("append");
        assert!(matches!(
            store.commit_offset("../escape", "s", "t", 1, 0),
            Err(StoreError::InvalidName {
                kind: "consumer group",
                ..
            })
        ));
        store
            .ensure_topic(&"n".repeat(255), "with space ü", 1)
            .expect("long and unusual names");
        assert_eq!(store.topics().len(), 2);
    });
}

#[test]
fn commit_and_read_committed_offsets() {
    in_both_modes(|store| {
        store.ensure_topic("s", "t", 2).expect("ensure");
        store
            .append("s", "t", 1, payloads("x", 10))
            .expect("append");
        assert_eq!(store.committed_offset("g", "s", "t", 1), None);

        store.commit_offset("g", "s", "t", 1, 4).expect("commit");
        assert_eq!(store.committed_offset("g", "s", "t", 1), Some(4));
        assert_eq!(store.committed_offset("g", "s", "t", 2), None);
        assert_eq!(store.committed_offset("other", "s", "t", 1), None);

        store
            .commit_offset("g", "s", "t", 1, 9)
            .expect("commit last");
        assert_eq!(store.committed_offset("g", "s", "t", 1), Some(9));
        assert!(matches!(
            store.commit_offset("g", "s", "t", 1, 10),
            Err(StoreError::OffsetOutOfRange {
                offset: 10,
                next_offset: 10,
                ..
            })
        ));
        assert!(matches!(
            store.commit_offset("g", "s", "t", 2, 0),
            Err(StoreError::OffsetOutOfRange { next_offset: 0, .. })
        ));
        assert!(matches!(
            store.commit_offset("g", "s", "t", 3, 0),
            Err(StoreError::InvalidPartition { .. })
        ));
        assert!(matches!(
            store.commit_offset("g", "s", "missing", 1, 0),
            Err(StoreError::UnknownTopic { .. })
        ));
        assert_eq!(store.committed_offset("g", "s", "t", 1), Some(9));
    });
}

#[test]
fn topics_are_listed_sorted() {
    in_both_modes(|store| {
        store.ensure_topic("b", "z", 1).expect("ensure");
        store.ensure_topic("a", "y", 2).expect("ensure");
        store.ensure_topic("b", "a", 1).expect("ensure");
        store.append("a", "y", 2, payloads("x", 3)).expect("append");
        let listed: Vec<(String, String)> = store
            .topics()
            .into_iter()
            .map(|info| (info.stream, info.topic))
            .collect();
        let expected =
            [("a", "y"), ("b", "a"), ("b", "z")].map(|(s, t)| (s.to_owned(), t.to_owned()));
        assert_eq!(listed, expected);
        assert_eq!(
            store.topic_info("a", "y"),
            Some(TopicInfo {
                stream: "a".into(),
                topic: "y".into(),
                partitions: 2,
                messages_per_partition: vec![0, 3],
            })
        );
    });
}

#[test]
fn reopen_restores_messages_partitions_and_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = {
        let store = StreamStore::open(dir.path()).expect("open");
        store.ensure_topic("s", "t", 3).expect("ensure");
        store.ensure_topic("other", "u", 1).expect("ensure");
        store
            .append("s", "t", 1, payloads("one", 4))
            .expect("append");
        store
            .append("s", "t", 3, payloads("three", 2))
            .expect("append");
        store
            .append("other", "u", 1, payloads("u", 1))
            .expect("append");
        store.commit_offset("g", "s", "t", 1, 2).expect("commit");
        store
            .commit_offset("g", "other", "u", 1, 0)
            .expect("commit");
        store.commit_offset("h", "s", "t", 3, 1).expect("commit");
        store.sync().expect("sync");
        store.read("s", "t", 1, 0, usize::MAX).expect("read")
    };

    let store = StreamStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store.read("s", "t", 1, 0, usize::MAX).expect("read"),
        written
    );
    assert_eq!(payload_strings(&store, "s", "t", 3), ["three-0", "three-1"]);
    let info = store.topic_info("s", "t").expect("info");
    assert_eq!(
        (info.partitions, info.messages_per_partition),
        (3, vec![4, 0, 2])
    );
    assert_eq!(store.topics().len(), 2);
    assert_eq!(store.committed_offset("g", "s", "t", 1), Some(2));
    assert_eq!(store.committed_offset("g", "other", "u", 1), Some(0));
    assert_eq!(store.committed_offset("h", "s", "t", 3), Some(1));
    assert_eq!(store.committed_offset("h", "s", "t", 1), None);

    // Appends continue the offsets, and timestamps never go backwards.
    assert_eq!(
        store
            .append("s", "t", 1, payloads("more", 2))
            .expect("append"),
        4..=5
    );
    let all = store.read("s", "t", 1, 0, usize::MAX).expect("read");
    assert!(
        all.windows(2)
            .all(|pair| pair[0].timestamp <= pair[1].timestamp)
    );
}

#[test]
fn torn_tail_record_is_truncated_on_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = StreamStore::open(dir.path()).expect("open");
        store.ensure_topic("s", "t", 1).expect("ensure");
        store
            .append("s", "t", 1, payloads("kept", 3))
            .expect("append");
        store
            .append("s", "t", 1, payloads("torn", 1))
            .expect("append");
    }
    let log = log_path(dir.path(), "s", "t", 1);
    let full_len = fs::metadata(&log).expect("metadata").len();
    let file = OpenOptions::new().write(true).open(&log).expect("open log");
    file.set_len(full_len - 3)
        .expect("cut the last record short");
    drop(file);

    let store = StreamStore::open(dir.path()).expect("reopen after torn write");
    assert_eq!(
        payload_strings(&store, "s", "t", 1),
        ["kept-0", "kept-1", "kept-2"]
    );
    assert_eq!(
        store
            .append("s", "t", 1, payloads("next", 1))
            .expect("append"),
        3..=3
    );
    assert_eq!(
        payload_strings(&store, "s", "t", 1),
        ["kept-0", "kept-1", "kept-2", "next-0"]
    );
    drop(store);

    // The repaired file reopens cleanly with the new record in place.
    let store = StreamStore::open(dir.path()).expect("reopen after repair");
    assert_eq!(
        store
            .topic_info("s", "t")
            .expect("info")
            .messages_per_partition,
        [4]
    );
}

#[test]
fn torn_header_and_zero_filled_tail_are_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = written_log(dir.path(), "kept", 2);
    let mut bytes = fs::read(&log).expect("read log");
    let valid_len = bytes.len();

    bytes.extend_from_slice(b"IHR2 partial");
    fs::write(&log, &bytes).expect("append a torn header");
    assert_eq!(
        payload_strings(&StreamStore::open(dir.path()).expect("reopen"), "s", "t", 1),
        ["kept-0", "kept-1"]
    );
    assert_eq!(
        fs::metadata(&log).expect("metadata").len(),
        valid_len as u64
    );

    bytes.truncate(valid_len);
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&log, &bytes).expect("append zeros");
    let store = StreamStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store
            .append("s", "t", 1, payloads("next", 1))
            .expect("append"),
        2..=2
    );
}

#[test]
fn corruption_before_the_tail_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = written_log(dir.path(), "message", 3);
    let mut bytes = fs::read(&log).expect("read log");
    // The first record's payload ends right before the second record's magic.
    let second = bytes
        .windows(4)
        .skip(1)
        .position(|window| window == b"IHR2")
        .expect("second record")
        + 1;
    bytes[second - 1] ^= 0xFF;
    fs::write(&log, &bytes).expect("write damaged log");

    let detail = corruption_in(dir.path(), &log);
    assert!(detail.contains("checksum"), "{detail}");
}

#[test]
fn concurrent_appends_to_one_partition_keep_offsets_dense() {
    const THREADS: usize = 4;
    const BATCHES: usize = 50;
    const BATCH: usize = 20;
    in_both_modes(|store| {
        store.ensure_topic("s", "t", 1).expect("ensure");
        let store = Arc::new(store.clone());
        let ranges: Vec<std::ops::RangeInclusive<u64>> = thread::scope(|scope| {
            let writers: Vec<_> = (0..THREADS)
                .map(|writer| {
                    let store = Arc::clone(&store);
                    scope.spawn(move || {
                        (0..BATCHES)
                            .map(|batch| {
                                store
                                    .append(
                                        "s",
                                        "t",
                                        1,
                                        payloads(&format!("w{writer}-b{batch}"), BATCH),
                                    )
                                    .expect("append")
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            // A reader runs alongside and must only ever see a dense prefix.
            scope.spawn(|| {
                for _ in 0..100 {
                    let seen = store.read("s", "t", 1, 0, usize::MAX).expect("read");
                    assert!(
                        seen.iter()
                            .enumerate()
                            .all(|(n, message)| message.offset == n as u64)
                    );
                }
            });
            writers
                .into_iter()
                .flat_map(|writer| writer.join().expect("writer thread"))
                .collect()
        });

        let total = THREADS * BATCHES * BATCH;
        let mut offsets: Vec<u64> = ranges.iter().flat_map(|range| range.clone()).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, (0..total as u64).collect::<Vec<_>>());
        assert!(
            ranges
                .iter()
                .all(|range| range.end() - range.start() == BATCH as u64 - 1)
        );

        let stored = store.read("s", "t", 1, 0, usize::MAX).expect("read");
        assert_eq!(stored.len(), total);
        // Each batch is contiguous and in order.
        for range in &ranges {
            let batch = &stored[*range.start() as usize..=*range.end() as usize];
            let first = String::from_utf8_lossy(&batch[0].payload).into_owned();
            let prefix = first
                .strip_suffix("-0")
                .expect("batch starts with message 0");
            for (n, message) in batch.iter().enumerate() {
                assert_eq!(message.payload, format!("{prefix}-{n}").into_bytes());
            }
        }
    });
}

#[test]
fn a_directory_can_only_be_open_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StreamStore::open(dir.path()).expect("open");
    let clone = store.clone();
    assert!(matches!(
        StreamStore::open(dir.path()),
        Err(StoreError::AlreadyOpen { .. })
    ));
    drop(store);
    assert!(matches!(
        StreamStore::open(dir.path()),
        Err(StoreError::AlreadyOpen { .. })
    ));
    drop(clone);
    StreamStore::open(dir.path()).expect("open after every handle is gone");
}

#[test]
fn in_memory_store_works_without_touching_disk() {
    let cwd = std::env::current_dir().expect("cwd");
    let listing = |dir: &Path| -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .expect("list")
            .map(|entry| entry.expect("entry").path())
            .collect();
        entries.sort();
        entries
    };
    let before = listing(&cwd);

    let store = StreamStore::in_memory();
    store.ensure_topic("s", "t", 2).expect("ensure");
    let (partition, range) = store
        .append_balanced("s", "t", payloads("m", 1000))
        .expect("append");
    assert_eq!((partition, range), (1, 0..=999));
    store.commit_offset("g", "s", "t", 1, 999).expect("commit");
    store.sync().expect("sync is a no-op");
    assert_eq!(store.read("s", "t", 1, 990, 100).expect("read").len(), 10);
    assert_eq!(store.committed_offset("g", "s", "t", 1), Some(999));
    assert_eq!(format!("{store:?}"), "StreamStore { dir: \"<in memory>\" }");

    // A second in-memory store is independent.
    assert!(StreamStore::in_memory().topics().is_empty());
    assert_eq!(listing(&cwd), before);
}

#[test]
fn errors_name_the_file_involved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, b"file").expect("write");
    let error = StreamStore::open(&blocker).expect_err("a file is not a data directory");
    assert!(matches!(error, StoreError::Io { .. }));
    assert!(error.to_string().contains("not-a-dir"), "{error}");
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn a_log_of_the_first_record_format_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = written_log(dir.path(), "message", 1);
    let mut bytes = fs::read(&log).expect("read log");
    bytes[..4].copy_from_slice(b"IHR1");
    fs::write(&log, &bytes).expect("write old-format log");

    let detail = corruption_in(dir.path(), &log);
    assert!(detail.contains("older harness"), "{detail}");
}
