//! The S2 side of the source: which streams exist (a fixed list, or a prefix
//! listed again every `discovery_interval`) and their tails.

use iggy_connector_s2_common::stream_name;
use s2_sdk::types::{ListStreamsInput, StreamNamePrefix, StreamNameStartAfter};
use s2_sdk::{S2Basin, S2Stream};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

pub enum Streams {
    Fixed(Vec<String>),
    Prefix(String),
}

pub struct Reader {
    basin: S2Basin,
    wanted: Streams,
    interval: Duration,
    next_discovery: Option<Instant>,
    /// The streams being read: admitted once their start was settled.
    streams: BTreeMap<String, S2Stream>,
}

impl Reader {
    pub fn new(basin: S2Basin, wanted: Streams, interval: Duration) -> Self {
        Self {
            basin,
            wanted,
            interval,
            next_discovery: None,
            streams: BTreeMap::new(),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.streams.keys()
    }

    pub fn stream(&self, name: &str) -> Option<&S2Stream> {
        self.streams.get(name)
    }

    /// Streams found but not admitted yet, once `discovery_interval` has
    /// passed. A stream stays "found" until `admit`: one whose start could
    /// not be settled (its tail check failed) is offered again by the next
    /// discovery instead of being forgotten until a restart.
    pub async fn discover(&mut self) -> Result<Vec<String>, String> {
        if self.next_discovery.is_some_and(|at| Instant::now() < at) {
            return Ok(Vec::new());
        }
        let names = match &self.wanted {
            Streams::Fixed(names) => names.clone(),
            Streams::Prefix(prefix) => self.list(prefix).await?,
        };
        self.next_discovery = Some(Instant::now() + self.interval);
        Ok(names
            .into_iter()
            .filter(|name| !self.streams.contains_key(name))
            .collect())
    }

    /// Starts reading a found stream.
    pub fn admit(&mut self, name: &str) -> Result<(), String> {
        let stream = self.basin.stream(stream_name(name)?);
        self.streams.insert(name.to_string(), stream);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let prefix: StreamNamePrefix = prefix
            .parse()
            .map_err(|e| format!("stream_prefix `{prefix}`: {e}"))?;
        let mut input = ListStreamsInput::new().with_prefix(prefix);
        let mut names = Vec::new();
        loop {
            let page = self
                .basin
                .list_streams(input.clone())
                .await
                .map_err(|e| format!("cannot list streams: {e}"))?;
            names.extend(
                page.values
                    .iter()
                    .filter(|info| info.deleted_at.is_none())
                    .map(|info| info.name.to_string()),
            );
            match page.values.last() {
                Some(last) if page.has_more => {
                    let after: StreamNameStartAfter = last
                        .name
                        .to_string()
                        .parse()
                        .map_err(|e| format!("stream listing: {e}"))?;
                    input = input.with_start_after(after);
                }
                _ => return Ok(names),
            }
        }
    }

    /// The next sequence number a stream assigns (for `start = "latest"`,
    /// and to check that a stream exists).
    pub async fn tail(&self, name: &str) -> Result<u64, String> {
        let stream = self.basin.stream(stream_name(name)?);
        stream
            .check_tail()
            .await
            .map(|p| p.seq_num)
            .map_err(|e| format!("cannot read the tail of `{name}`: {e}"))
    }
}
