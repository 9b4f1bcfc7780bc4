//! The bytes of a header field. Short ones (every number kind, most names and
//! ids) are held inline, so making, cloning and dropping the headers of each
//! message does not touch the allocator; longer ones share one buffer.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// Fits every numeric kind (16 bytes at most) and typical keys and subjects,
/// and leaves room beside `Bytes`'s non-null pointer, where the compiler puts
/// the variant tag: the enum is no larger than `Bytes` alone.
pub(crate) const INLINE: usize = 22;

#[derive(Clone)]
pub(crate) enum FieldBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Bytes),
}

impl FieldBytes {
    pub(crate) fn copy_from_slice(value: &[u8]) -> Self {
        if value.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..value.len()].copy_from_slice(value);
            // Cannot truncate: `value.len() <= INLINE`, which is below 256.
            Self::Inline {
                len: value.len() as u8,
                bytes,
            }
        } else {
            Self::Shared(Bytes::copy_from_slice(value))
        }
    }

    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            Self::Inline { .. } => Bytes::copy_from_slice(self),
            Self::Shared(bytes) => bytes.clone(),
        }
    }
}

impl Deref for FieldBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Shared(bytes) => bytes,
        }
    }
}

/// By content: where the bytes are held is not part of the value.
impl PartialEq for FieldBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for FieldBytes {}

/// As `Bytes` prints (`b"..."`), which the field's derived `Debug` showed before.
impl fmt::Debug for FieldBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_bytes(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_inline_and_long_ones_shared() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 255] {
            let value: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let field = FieldBytes::copy_from_slice(&value);
            assert_eq!(&*field, value.as_slice(), "length {len}");
            assert_eq!(field.to_bytes(), value, "length {len}");
            assert_eq!(
                matches!(field, FieldBytes::Inline { .. }),
                len <= INLINE,
                "length {len}"
            );
        }
        let shared = FieldBytes::Shared(Bytes::from_static(b"same"));
        assert_eq!(shared, FieldBytes::copy_from_slice(b"same"));
        assert_eq!(
            format!("{shared:?}"),
            format!("{:?}", Bytes::from_static(b"same"))
        );
    }

    #[test]
    fn is_no_larger_than_bytes() {
        assert_eq!(size_of::<FieldBytes>(), size_of::<Bytes>());
    }
}
