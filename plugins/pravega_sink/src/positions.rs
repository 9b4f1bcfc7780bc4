//! `exactly_once` across restarts: what the stream already holds. Every
//! transaction the sink commits ends with a position marker (see
//! `iggy_connector_pravega_common::position`); at `open` the stream is read
//! from its head to the tail it had then, and the highest committed Iggy
//! offset of each partition is taken from the markers. A batch at or below
//! it is skipped, whichever process committed it.
//!
//! Pravega readers cannot start from the end and go backwards, nor read one
//! routing key alone, so this costs one read of the whole stream per open
//! (the Pravega source reads at tens of thousands of 1 KiB events a second
//! on two cores).

use iggy_connector_pravega_common::client::{
    ClientError, EventReader, PravegaClient, StartAt, StreamCut,
};
use iggy_connector_pravega_common::position::PositionMarker;
use std::collections::HashMap;
use std::time::Duration;

/// The reader group's name starts so (the client makes it unique).
const GROUP: &str = "iggy-sink-positions";
const READ_BATCH: usize = 1000;
/// A reader group takes a few seconds to be handed its segments.
const READ_WAIT: Duration = Duration::from_secs(2);
/// Reads in a row that return nothing before the tail is reached: then the
/// read back has failed (`open` fails: skipping needs all of it).
const MAX_EMPTY_READS: usize = 5;

/// Per Iggy partition, the highest offset in a committed transaction.
pub type Committed = HashMap<String, u64>;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadBack {
    pub committed: Committed,
    pub events: u64,
    pub markers: u64,
}

/// Reads the markers of the whole stream (up to its tail at the call).
pub async fn read_back(client: &dyn PravegaClient) -> Result<ReadBack, ClientError> {
    let tail = client.resolve(&StartAt::Tail).await?;
    let mut positions = client.resolve(&StartAt::Head).await?;
    // Every open segment empty while older ones are not (the stream has
    // scaled since): no tail offset tells the end, an empty read does.
    let until_empty = tail.values().all(|offset| *offset == 0) && positions != tail;
    let mut found = ReadBack::default();
    if !until_empty && reached(&positions, &tail) {
        return Ok(found);
    }
    let mut reader = client.reader(GROUP, &positions).await?;
    let outcome = read_markers(
        client,
        &mut reader,
        &mut positions,
        &tail,
        until_empty,
        &mut found,
    )
    .await;
    if let Err(e) = reader.close().await {
        tracing::warn!("Pravega sink: the position reader was not released cleanly: {e}");
    }
    outcome.map(|()| found)
}

async fn read_markers(
    client: &dyn PravegaClient,
    reader: &mut Box<dyn EventReader>,
    positions: &mut StreamCut,
    tail: &StreamCut,
    until_empty: bool,
    found: &mut ReadBack,
) -> Result<(), ClientError> {
    let mut empty_reads = 0;
    // Each pass reads at least one event or counts an empty read, so the
    // loop ends within the events up to the tail (new ones come after it).
    loop {
        let events = reader.read(READ_BATCH, READ_WAIT).await?;
        if events.is_empty() {
            if until_empty {
                return Ok(());
            }
            empty_reads += 1;
            if empty_reads == MAX_EMPTY_READS {
                return Err(ClientError::Failed(format!(
                    "reading the position markers back: nothing more to read at {positions:?}, \
                     before the tail {tail:?}"
                )));
            }
            continue;
        }
        empty_reads = 0;
        found.events += events.len() as u64;
        for event in &events {
            positions.insert(event.segment, event.next_offset);
            if let Some(marker) = PositionMarker::decode(&event.payload) {
                let marker = marker.map_err(ClientError::Failed)?;
                found.markers += 1;
                let last = found.committed.entry(marker.partition).or_insert(0);
                *last = (*last).max(marker.last);
            }
        }
        if !until_empty && reached(positions, tail) {
            return Ok(());
        }
        if reader.stalled() {
            // At an event the client cannot read past: a new group after it.
            reader.close().await?;
            *reader = client.reader(GROUP, positions).await?;
        }
    }
}

/// Whether every segment of `tail` has been read up to its offset there.
fn reached(positions: &StreamCut, tail: &StreamCut) -> bool {
    tail.iter().all(|(segment, offset)| {
        *offset == 0 || positions.get(segment).is_some_and(|at| at >= offset)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_connector_pravega_common::fake::FakePravega;

    fn marker(partition: &str, first: u64, last: u64) -> (String, Vec<u8>) {
        let marker = PositionMarker {
            partition: partition.into(),
            first,
            last,
        };
        (marker.routing_key(), marker.encode())
    }

    #[tokio::test(start_paused = true)]
    async fn finds_the_highest_committed_offset_per_partition() {
        let fake = FakePravega::with_stream(2);
        assert_eq!(read_back(&fake).await.unwrap(), ReadBack::default());
        for (partition, first, last) in [("s/t/1", 0, 9), ("s/t/2", 0, 4), ("s/t/1", 10, 19)] {
            fake.append(Some("k"), b"{\"n\":1}");
            let (key, payload) = marker(partition, first, last);
            fake.append(Some(&key), &payload);
        }
        let found = read_back(&fake).await.unwrap();
        assert_eq!(
            found.committed,
            HashMap::from([("s/t/1".to_string(), 19), ("s/t/2".to_string(), 4)])
        );
        assert_eq!((found.events, found.markers), (6, 3));
        assert!(fake.open_groups().is_empty(), "the reader group is removed");
    }

    #[tokio::test(start_paused = true)]
    async fn reads_past_a_scale_and_fails_on_an_unreadable_marker() {
        let fake = FakePravega::with_stream(1);
        let (key, payload) = marker("s/t/1", 0, 7);
        fake.append(Some(&key), &payload);
        // The old segment holds the marker, the new ones are empty.
        fake.scale(&[0], 2);
        let found = read_back(&fake).await.unwrap();
        assert_eq!(found.committed, HashMap::from([("s/t/1".to_string(), 7)]));

        fake.append(Some("k"), b"\0\0iggy-sink-position\x009 damaged");
        let error = read_back(&fake).await.unwrap_err();
        assert!(
            error.to_string().contains("unreadable position marker"),
            "{error}"
        );
    }
}
