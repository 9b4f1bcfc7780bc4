//! The `schema` setting of sources that pass payloads through as received.

use iggy_connector_sdk::Schema;
use serde::Deserialize;

/// How payloads are declared to the runtime, which drops those that do not
/// decode under it: `raw` (the default) never drops anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadSchema {
    Json,
    #[default]
    Raw,
    Text,
}

impl From<PayloadSchema> for Schema {
    fn from(schema: PayloadSchema) -> Self {
        match schema {
            PayloadSchema::Json => Schema::Json,
            PayloadSchema::Raw => Schema::Raw,
            PayloadSchema::Text => Schema::Text,
        }
    }
}
