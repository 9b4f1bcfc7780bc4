//! The plugin's settings: what serde reads (`raw`), the proposed Iggy Flink
//! source's keys folded into ours (`proposal`), and the checked form the
//! rest of the plugin uses (`settings`).

mod proposal;
mod raw;
mod settings;

pub use raw::FlinkSourceConfig;
pub use settings::*;
