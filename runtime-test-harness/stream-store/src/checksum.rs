//! XXH64, written out here so the crate needs no hash dependency.
//!
//! XXH64 rather than FNV-1a: the store hashes every payload on append and
//! FNV's byte-at-a-time multiply chain costs over a microsecond per KiB, too
//! much for the 500k msg/s benchmark. XXH64 is standard, so a checksum can be
//! checked with any xxhash tool.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

/// The checksum stored with every message. Without headers it is the plain
/// XXH64 of the payload; headers, when present, seed the payload hash so that
/// both are covered.
pub(crate) fn message_checksum(headers: &[u8], payload: &[u8]) -> u64 {
    let seed = if headers.is_empty() {
        0
    } else {
        xxh64(headers, 0)
    };
    xxh64(payload, seed)
}

pub(crate) fn xxh64(input: &[u8], seed: u64) -> u64 {
    let mut stripes = input.chunks_exact(32);
    let mut hash = if input.len() >= 32 {
        let mut lanes = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        for stripe in &mut stripes {
            for (lane, word) in lanes.iter_mut().zip(stripe.chunks_exact(8)) {
                *lane = round(*lane, read_u64(word));
            }
        }
        let mut hash = lanes[0]
            .rotate_left(1)
            .wrapping_add(lanes[1].rotate_left(7))
            .wrapping_add(lanes[2].rotate_left(12))
            .wrapping_add(lanes[3].rotate_left(18));
        for lane in lanes {
            hash = merge_lane(hash, lane);
        }
        hash
    } else {
        seed.wrapping_add(P5)
    };
    hash = hash.wrapping_add(input.len() as u64);

    let mut words = stripes.remainder().chunks_exact(8);
    for word in &mut words {
        hash ^= round(0, read_u64(word));
        hash = hash.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
    }
    let mut tail = words.remainder();
    if tail.len() >= 4 {
        let (half, rest) = tail.split_at(4);
        hash ^= u64::from(read_u32(half)).wrapping_mul(P1);
        hash = hash.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        tail = rest;
    }
    for byte in tail {
        hash ^= u64::from(*byte).wrapping_mul(P5);
        hash = hash.rotate_left(11).wrapping_mul(P1);
    }

    hash ^= hash >> 33;
    hash = hash.wrapping_mul(P2);
    hash ^= hash >> 29;
    hash = hash.wrapping_mul(P3);
    hash ^ (hash >> 32)
}

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge_lane(hash: u64, lane: u64) -> u64 {
    (hash ^ round(0, lane)).wrapping_mul(P1).wrapping_add(P4)
}

/// Callers pass exactly 8 bytes (from `chunks_exact(8)`).
fn read_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// Callers pass exactly 4 bytes.
fn read_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_matches_reference_vectors() {
        let cases: &[(&[u8], u64)] = &[
            (b"", 0xEF46_DB37_51D8_E999),
            (b"a", 0xD24E_C4F1_A98C_6E5B),
            (b"abc", 0x44BC_2CF5_AD77_0999),
            (b"message digest", 0x066E_D728_FCEE_B3BE),
            (b"abcdefghijklmnopqrstuvwxyz", 0xCFE1_F278_FA89_835C),
            (
                b"Nobody inspects the spammish repetition",
                0xFBCE_A83C_8A37_8BF1,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                xxh64(input, 0),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn checksum_without_headers_is_plain_payload_hash() {
        assert_eq!(message_checksum(b"", b"abc"), xxh64(b"abc", 0));
    }

    #[test]
    fn checksum_covers_headers() {
        assert_ne!(
            message_checksum(b"h1", b"payload"),
            message_checksum(b"h2", b"payload")
        );
        assert_ne!(
            message_checksum(b"h1", b"payload"),
            message_checksum(b"", b"payload")
        );
    }
}
