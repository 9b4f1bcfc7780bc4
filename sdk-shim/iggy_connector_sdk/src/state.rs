//! Opaque connector state that the runtime persists for a source.

use serde::{Deserialize, Serialize};

/// Bytes the runtime stores as they are; by convention MessagePack of the
/// connector's own state struct (`rmp_serde`, structs as arrays).
#[derive(Debug, Serialize, Deserialize)]
pub struct ConnectorState(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl ConnectorState {
    /// Reads the state as `T`; `None` (with a warning) when the bytes do not fit.
    pub fn deserialize<T: serde::de::DeserializeOwned>(
        self,
        connector_name: &str,
        connector_id: u32,
    ) -> Option<T> {
        rmp_serde::from_slice(&self.0)
            .inspect_err(|error| {
                tracing::warn!(
                    "saved state of {connector_name} connector {connector_id} is unreadable and was ignored: {error}"
                )
            })
            .ok()
    }

    /// Encodes `state` as MessagePack; `None` (with an error log) if it cannot be encoded.
    pub fn serialize<T: Serialize>(
        state: &T,
        connector_name: &str,
        connector_id: u32,
    ) -> Option<Self> {
        rmp_serde::to_vec(state)
            .inspect_err(|error| {
                tracing::error!(
                    "state of {connector_name} connector {connector_id} cannot be encoded: {error}"
                )
            })
            .ok()
            .map(ConnectorState)
    }
}
