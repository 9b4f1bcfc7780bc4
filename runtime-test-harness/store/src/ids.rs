//! Message ids and timestamps assigned by the store.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch; 0 if the clock is before it.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
        })
}

/// A random-looking, non-zero id that is unique within this process.
///
/// The low half is `splitmix64` of a per-run seed plus a counter; `splitmix64`
/// is a bijection, so distinct counter values can never collide. The seed mixes
/// the start time and the process id so different runs get different ids.
pub(crate) fn random_message_id() -> u128 {
    static RUN_SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let seed = *RUN_SEED.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        // Truncating the nanoseconds keeps the fast-changing low bits, which is all a seed needs.
        splitmix64(nanos as u64 ^ (u64::from(std::process::id()) << 32))
    });
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let low = splitmix64(seed.wrapping_add(count));
    // The top bit makes the id non-zero whatever `low` is.
    let high = splitmix64(low ^ seed.rotate_left(29)) | 1 << 63;
    (u128::from(high) << 64) | u128::from(low)
}

fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_non_zero_and_unique() {
        let ids: HashSet<u128> = (0..100_000).map(|_| random_message_id()).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(!ids.contains(&0));
    }

    #[test]
    fn clock_is_after_2020() {
        assert!(now_micros() > 1_577_836_800_000_000);
    }
}
