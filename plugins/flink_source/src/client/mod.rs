//! Flink's two HTTP APIs: the REST API of the JobManager and the SQL
//! Gateway, over one client with auth, TLS and timeouts.

mod flink_error;
pub mod gateway;
pub mod http;
pub mod rest;
mod tls;
