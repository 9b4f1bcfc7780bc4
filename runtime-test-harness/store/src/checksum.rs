//! XXH3-64, the hash Iggy itself uses for message checksums. The store hashes
//! every payload on append, and on 1 KiB payloads XXH3 costs about a third of
//! what the XXH64 of earlier record formats did.

use twox_hash::XxHash3_64;

/// The checksum stored with every message. Without headers it is the plain
/// XXH3-64 of the payload; headers, when present, seed the payload hash so
/// that both are covered.
pub(crate) fn message_checksum(headers: &[u8], payload: &[u8]) -> u64 {
    let seed = if headers.is_empty() { 0 } else { hash(headers) };
    XxHash3_64::oneshot_with_seed(seed, payload)
}

/// XXH3-64 with the default seed and secret.
pub(crate) fn hash(input: &[u8]) -> u64 {
    XxHash3_64::oneshot(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_standard_xxh3() {
        // The reference implementation's hash of the empty input.
        assert_eq!(hash(b""), 0x2D06_8005_38D3_94C2);
    }

    #[test]
    fn checksum_without_headers_is_plain_payload_hash() {
        assert_eq!(message_checksum(b"", b"abc"), hash(b"abc"));
        let long = vec![7u8; 1024];
        assert_eq!(message_checksum(b"", &long), hash(&long));
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
