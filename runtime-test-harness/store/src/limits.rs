//! Bounds the store enforces.

/// Upper bound on partitions per topic, so a typo cannot create a million log files.
pub const MAX_PARTITIONS: u32 = 10_000;
