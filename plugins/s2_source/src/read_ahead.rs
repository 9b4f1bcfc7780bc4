//! The next read, started as a poll hands over a full batch, so that S2
//! answers while the runtime stores that batch and saves its state. The next
//! poll uses it only if it reads that stream from that very position with the
//! same limits (the batch was acknowledged); otherwise it is cancelled unread.

use crate::cursor::Position;
use crate::reader::{self, Limits};
use s2_sdk::S2Stream;
use s2_sdk::error::ReadError;
use s2_sdk::types::ReadBatch;
use tokio::task::JoinHandle;

pub type ReadResult = Result<Option<ReadBatch>, ReadError>;

pub struct ReadAhead {
    stream: String,
    from: Position,
    limits: Limits,
    read: JoinHandle<ReadResult>,
}

impl ReadAhead {
    /// Starts the read on the current tokio runtime.
    pub fn start(name: &str, stream: &S2Stream, from: Position, limits: Limits) -> Self {
        let stream = stream.clone();
        let read =
            tokio::spawn(async move { reader::read(&stream, from.read_from(), limits).await });
        Self {
            stream: name.to_string(),
            from,
            limits,
            read,
        }
    }

    /// The read's outcome when it is the one wanted; `None` when it is not,
    /// or when its task ended without one (the caller reads again).
    pub async fn take(mut self, name: &str, from: Position, limits: Limits) -> Option<ReadResult> {
        if self.stream != name || self.from != from || self.limits != limits {
            return None;
        }
        (&mut self.read).await.ok()
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.read.abort();
    }
}
