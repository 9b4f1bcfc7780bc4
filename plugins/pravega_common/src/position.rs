//! The position marker: the event the sink's `exactly_once` mode adds to
//! every transaction, naming the Iggy offsets the transaction holds.
//! Pravega events carry no headers, so the position travels as an event of
//! its own, committed atomically with the batch it describes; the sink
//! reads the markers back when it opens and skips what they cover, and the
//! Pravega source recognises them and passes them over.
//!
//! Encoding (version 1), for any reader of the stream: the 21 bytes
//! `\0\0iggy-sink-position\0`, then UTF-8 text `1 FIRST LAST PARTITION`:
//! the version, the first and last Iggy offset of the batch (decimal) and
//! the Iggy partition as `stream/topic/partition id` (the rest of the
//! event, spaces included). The routing key is
//! `iggy-sink-position/PARTITION`, so one partition's markers stay in order.

/// What every marker starts with: no JSON or text event does (two NUL bytes).
pub const MARKER_PREFIX: &[u8] = b"\0\0iggy-sink-position\0";
const VERSION: &str = "1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionMarker {
    /// `stream/topic/partition id` of the Iggy side.
    pub partition: String,
    pub first: u64,
    pub last: u64,
}

/// Whether an event is a position marker (of any version).
pub fn is_marker(payload: &[u8]) -> bool {
    payload.starts_with(MARKER_PREFIX)
}

impl PositionMarker {
    pub fn routing_key(&self) -> String {
        format!("iggy-sink-position/{}", self.partition)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut payload = MARKER_PREFIX.to_vec();
        payload.extend_from_slice(
            format!("{VERSION} {} {} {}", self.first, self.last, self.partition).as_bytes(),
        );
        payload
    }

    /// `None` for an event that is no marker; an error for a marker this
    /// version cannot read (a later version, or damaged).
    pub fn decode(payload: &[u8]) -> Option<Result<Self, String>> {
        let body = payload.strip_prefix(MARKER_PREFIX)?;
        Some(Self::parse(body).ok_or_else(|| {
            format!(
                "unreadable position marker `{}`",
                String::from_utf8_lossy(body)
            )
        }))
    }

    fn parse(body: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        let (version, rest) = text.split_once(' ')?;
        let (first, rest) = rest.split_once(' ')?;
        let (last, partition) = rest.split_once(' ')?;
        (version == VERSION && !partition.is_empty()).then_some(())?;
        Some(Self {
            partition: partition.to_string(),
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_and_tells_markers_from_events() {
        let marker = PositionMarker {
            partition: "my stream/orders/3".into(),
            first: 100,
            last: 199,
        };
        let payload = marker.encode();
        assert_eq!(
            payload,
            b"\0\0iggy-sink-position\x001 100 199 my stream/orders/3"
        );
        assert!(is_marker(&payload));
        assert_eq!(PositionMarker::decode(&payload), Some(Ok(marker.clone())));
        assert_eq!(
            marker.routing_key(),
            "iggy-sink-position/my stream/orders/3"
        );
        for event in [&b"{\"n\":1}"[..], b"", b"\0\0iggy", b"iggy-sink-position"] {
            assert!(!is_marker(event));
            assert_eq!(PositionMarker::decode(event), None);
        }
        let later = b"\0\0iggy-sink-position\x002 1 2 s/t/1";
        assert!(is_marker(later));
        let error = PositionMarker::decode(later).unwrap().unwrap_err();
        assert!(error.contains("2 1 2 s/t/1"), "{error}");
    }
}
