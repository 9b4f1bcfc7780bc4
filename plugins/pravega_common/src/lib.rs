//! What both Pravega plugins share: connection settings, the thin client
//! interface the connector logic is written against, its implementation on
//! pravega-client, the sink's position marker and (feature `fake`,
//! tests only) an in-process fake.

pub mod client;
mod connection;
#[cfg(feature = "fake")]
pub mod fake;
pub mod position;
mod real;

pub use connection::{
    CreateStream, Credentials, PravegaConnection, ScalingKind, TlsSettings, check_name,
};
pub use real::{MAX_EVENT_BYTES, RealClient};
