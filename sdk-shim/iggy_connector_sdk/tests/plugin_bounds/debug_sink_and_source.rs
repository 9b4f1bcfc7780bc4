//! A sink and a source as upstream's macros accept them: `Debug`, in a crate
//! that depends on `dashmap` and `tracing`.

mod sink {
    #[derive(Debug)]
    pub struct Connector;
    include!("sink.rs");
}

mod source {
    #[derive(Debug)]
    pub struct Connector;
    include!("source.rs");
}

fn main() {}
