//! Loads Iggy connector plugins exactly as the connectors runtime does and
//! drives them against an embedded stream store. The `iggy-harness` binary
//! is the command line over this library; connector benchmarks use it to
//! drive a plugin in the same process as the raw client they compare with.

pub mod bench;
pub mod conformance;
pub mod connector_file;
pub mod faults;
pub mod inspect;
pub mod library;
pub mod pipeline;
pub mod plugin_log;
pub mod produced_batch;
pub mod runtime_config;
pub mod sink_runner;
pub mod source_messages;
pub mod source_runner;
pub mod state_file;
pub mod stats;
pub mod topic_io;
