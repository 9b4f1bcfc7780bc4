//! What both S2 plugins share: connection settings (token, endpoints, basin,
//! timeouts, the SDK's retry policy) and the basin client built from them.

mod connection;

pub use connection::{S2Connection, S2RetryPolicy, stream_name};
