//! The error type connectors return from their trait methods.

use crate::schema::Schema;

#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration")]
    InvalidConfig,
    #[error("invalid configuration value: {0}")]
    InvalidConfigValue(String),
    #[error("invalid record")]
    InvalidRecord,
    #[error("invalid record value: {0}")]
    InvalidRecordValue(String),
    #[error("invalid transformer")]
    InvalidTransformer,
    #[error("HTTP request failed: {0}")]
    HttpRequestFailed(String),
    #[error("initialization failed: {0}")]
    InitError(String),
    #[error("invalid payload type")]
    InvalidPayloadType,
    #[error("payload is not valid JSON")]
    InvalidJsonPayload,
    #[error("payload is not valid UTF-8 text")]
    InvalidTextPayload,
    #[error("cannot decode payload as {0}")]
    CannotDecode(Schema),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("serialization error: {0}")]
    Serialization(String),
    #[error("payload is not valid protobuf")]
    InvalidProtobufPayload,
    #[error("cannot open the state file")]
    CannotOpenStateFile,
    #[error("cannot read the state file")]
    CannotReadStateFile,
    #[error("cannot write the state file")]
    CannotWriteStateFile,
    #[error("invalid state")]
    InvalidState,
    #[error("connection error: {0}")]
    Connection(String),
    #[error("cannot store data: {0}")]
    CannotStoreData(String),
    /// An HTTP error that retrying will not fix (bad data, bad schema).
    #[error("permanent HTTP error: {0}")]
    PermanentHttpError(String),
    #[error("schema mismatch: {0}")]
    SchemaMismatch(String),
    #[error("write failure: {0}")]
    WriteFailure(String),
    #[error("transaction apply error: {0}")]
    TransactionApplyError(String),
    #[error("catalog commit error: {0}")]
    CatalogCommitError(String),
}
