//! A sink upstream's macro refuses: its type is not `Debug`.

pub struct Connector;
include!("sink.rs");

fn main() {}
