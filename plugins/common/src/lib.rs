//! Plumbing shared by the connector plugins: retries with backoff, the
//! transient/permanent error split, secrets that never print, counters,
//! duration parsing for configs, opt-in Prometheus metrics, and the admission check that keeps a
//! message the runtime would refuse out of a source batch.

pub mod admission;
pub mod connector_debug;
pub mod counters;
pub mod duration;
pub mod error_class;
pub mod metrics;
pub mod payload_schema;
pub mod retry;
pub mod secret;
pub mod session_sink;
pub mod session_source;
pub mod template;

pub use admission::{Admission, InvalidMessages};
pub use counters::{Counter, Counters, RateLog};
pub use error_class::{Classify, ErrorClass, classify_http_status, parse_retry_after};
pub use payload_schema::PayloadSchema;
pub use retry::{RetryError, RetryErrorKind, RetryPolicy, retry};
pub use secret::{Secret, redact, redact_url_credentials};
