//! Building blocks of the Iggy messages both modes produce: ids that are the
//! same every time the same thing is read (so Iggy's deduplication drops a
//! redelivery) and string headers.

use iggy_common::{HeaderKey, HeaderValue};
use std::collections::BTreeMap;

/// FNV-1a over `parts`, 128 bits. The algorithm is fixed here (not std's
/// hasher, whose output may change between Rust releases) because ids must
/// stay the same across plugin versions and restarts.
pub fn stable_id(parts: &[&[u8]]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut hash = OFFSET;
    for (index, part) in parts.iter().enumerate() {
        // A separator keeps ("ab", "c") apart from ("a", "bc").
        if index > 0 {
            hash ^= 0xff;
            hash = hash.wrapping_mul(PRIME);
        }
        for byte in *part {
            hash ^= u128::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

/// Adds a string header; `Err` says why the value cannot be one (Iggy takes
/// 1 to 255 bytes).
pub fn add_header(
    headers: &mut BTreeMap<HeaderKey, HeaderValue>,
    key: &str,
    value: &str,
) -> Result<(), String> {
    let header_key = HeaderKey::try_from(key).map_err(|e| format!("header name {key:?}: {e}"))?;
    let header_value = HeaderValue::try_from(value)
        .map_err(|e| format!("header {key}: value of {} bytes: {e}", value.len()))?;
    headers.insert(header_key, header_value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_separate_parts() {
        // Pinned: a change here would break deduplication across upgrades.
        assert_eq!(stable_id(&[]), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        assert_eq!(
            stable_id(&[b"a"]),
            0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964
        );
        assert_ne!(stable_id(&[b"ab", b"c"]), stable_id(&[b"a", b"bc"]));
        assert_eq!(stable_id(&[b"job", b"3"]), stable_id(&[b"job", b"3"]));
    }

    #[test]
    fn headers_follow_iggy_length_rules() {
        let mut headers = BTreeMap::new();
        add_header(&mut headers, "row_kind", "INSERT").unwrap();
        assert_eq!(headers.len(), 1);
        assert!(add_header(&mut headers, "source", "").is_err());
        assert!(add_header(&mut headers, "source", &"x".repeat(256)).is_err());
    }
}
