//! What both NATS JetStream plugins share: connection settings (servers,
//! auth, TLS, timeouts, reconnects) and subject wildcard logic.

mod connection;
pub mod subjects;

pub use connection::{NatsAuth, NatsConnection, NatsTls};
