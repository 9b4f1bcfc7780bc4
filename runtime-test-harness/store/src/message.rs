use std::borrow::Cow;

/// A message to append. `Default` gives "store assigns id and timestamp, no headers".
/// Headers and payload may be borrowed, so a batch can be stored straight from
/// the buffer it arrived in; the store copies them once, into its log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMessage<'a> {
    /// 0 = the store assigns a random non-zero id.
    pub id: u128,
    /// Microseconds since the Unix epoch; `None` = now (never earlier than the
    /// partition's latest timestamp).
    pub timestamp: Option<u64>,
    pub origin_timestamp: u64,
    /// Opaque header bytes; empty = none.
    pub headers: Cow<'a, [u8]>,
    pub payload: Cow<'a, [u8]>,
}

impl<'a> NewMessage<'a> {
    /// A message with only a payload; everything else is left to the store.
    pub fn new(payload: impl Into<Cow<'a, [u8]>>) -> Self {
        Self {
            payload: payload.into(),
            ..Self::default()
        }
    }
}

/// A message as stored in (and read back from) a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: u128,
    pub offset: u64,
    /// XXH3-64 of the payload, seeded with the XXH3-64 of the headers when there are any.
    pub checksum: u64,
    /// Microseconds since the Unix epoch.
    pub timestamp: u64,
    pub origin_timestamp: u64,
    pub headers: Vec<u8>,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub stream: String,
    pub topic: String,
    pub partitions: u32,
    /// The next offset of each partition; index 0 is partition 1.
    pub messages_per_partition: Vec<u64>,
}
