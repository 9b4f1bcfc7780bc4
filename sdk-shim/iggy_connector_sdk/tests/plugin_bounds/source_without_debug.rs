//! A source upstream's macro refuses: its type is not `Debug`.

pub struct Connector;
include!("source.rs");

fn main() {}
