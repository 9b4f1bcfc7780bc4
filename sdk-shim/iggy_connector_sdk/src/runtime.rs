//! The library's own tokio runtime: a plugin is loaded into a runtime process
//! that is not async from the plugin's side, so every connector call is
//! driven here.

use std::sync::OnceLock;
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The library's own tokio runtime, on which every connector call runs.
pub fn get_runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("iggy-connector")
            .build()
            .unwrap_or_else(|error| panic!("cannot start the connector's tokio runtime: {error}"))
    })
}
