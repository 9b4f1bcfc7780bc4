//! The message header types of Apache Iggy's `iggy_common` crate, and only
//! those: what connector plugins import from it. Same names and methods, and
//! wire-compatible: serde sees a struct `{ kind, value }` whose value is the
//! standard Base64 text of the bytes, and maps order by `(kind code, bytes)`,
//! so a header map encodes to the same bytes as upstream. A plugin that uses
//! the registry's `iggy_common` instead only changes its `Cargo.toml`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

mod field_bytes;

use field_bytes::FieldBytes;

/// The longest key or value, in bytes, that Iggy accepts.
pub const MAX_HEADER_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header value is not of kind {expected} (it is {actual})")]
    WrongKind {
        expected: HeaderKind,
        actual: HeaderKind,
    },
    #[error("header value of kind {0} has the wrong length")]
    Malformed(HeaderKind),
    #[error("header text is not valid UTF-8")]
    InvalidUtf8,
    #[error("header is {0} bytes; it must be 1 to 255")]
    InvalidLength(usize),
    #[error("unknown header kind `{0}`")]
    UnknownKind(String),
}

/// What the bytes of a header field hold. Serialized by declaration index
/// (postcard) or snake_case name (JSON), exactly as upstream.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum HeaderKind {
    Raw,
    String,
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Int128,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Uint128,
    Float32,
    Float64,
}

const KINDS: [(HeaderKind, &str, Option<usize>); 15] = [
    (HeaderKind::Raw, "raw", None),
    (HeaderKind::String, "string", None),
    (HeaderKind::Bool, "bool", Some(1)),
    (HeaderKind::Int8, "int8", Some(1)),
    (HeaderKind::Int16, "int16", Some(2)),
    (HeaderKind::Int32, "int32", Some(4)),
    (HeaderKind::Int64, "int64", Some(8)),
    (HeaderKind::Int128, "int128", Some(16)),
    (HeaderKind::Uint8, "uint8", Some(1)),
    (HeaderKind::Uint16, "uint16", Some(2)),
    (HeaderKind::Uint32, "uint32", Some(4)),
    (HeaderKind::Uint64, "uint64", Some(8)),
    (HeaderKind::Uint128, "uint128", Some(16)),
    (HeaderKind::Float32, "float32", Some(4)),
    (HeaderKind::Float64, "float64", Some(8)),
];

impl HeaderKind {
    /// Iggy's binary protocol code (1-based; not the serde index).
    pub fn as_code(&self) -> u8 {
        *self as u8 + 1
    }

    pub fn from_code(code: u8) -> Result<Self, HeaderError> {
        KINDS
            .get(usize::from(code).wrapping_sub(1))
            .map(|(kind, _, _)| *kind)
            .ok_or_else(|| HeaderError::UnknownKind(code.to_string()))
    }

    /// The fixed byte length of numeric and boolean kinds.
    pub fn expected_size(&self) -> Option<usize> {
        KINDS[*self as usize].2
    }

    fn name(&self) -> &'static str {
        KINDS[*self as usize].1
    }
}

impl Ord for HeaderKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_code().cmp(&other.as_code())
    }
}

impl PartialOrd for HeaderKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Display for HeaderKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HeaderKind {
    type Err = HeaderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KINDS
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|(kind, _, _)| *kind)
            .ok_or_else(|| HeaderError::UnknownKind(s.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyMarker;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueMarker;

/// A typed header field; the marker only separates keys from values at the type level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField<T> {
    kind: HeaderKind,
    value: FieldBytes,
    _marker: PhantomData<T>,
}

pub type HeaderKey = HeaderField<KeyMarker>;
pub type HeaderValue = HeaderField<ValueMarker>;
pub type UserHeaders = BTreeMap<HeaderKey, HeaderValue>;

impl<T> HeaderField<T> {
    fn new_unchecked(kind: HeaderKind, value: &[u8]) -> Self {
        Self {
            kind,
            value: FieldBytes::copy_from_slice(value),
            _marker: PhantomData,
        }
    }

    /// Wraps raw bytes as a field of `kind`, checking the length rules.
    pub fn from_raw(kind: HeaderKind, value: &[u8]) -> Result<Self, HeaderError> {
        if value.is_empty() || value.len() > MAX_HEADER_LEN {
            return Err(HeaderError::InvalidLength(value.len()));
        }
        match kind.expected_size() {
            Some(size) if size != value.len() => Err(HeaderError::Malformed(kind)),
            _ => Ok(Self::new_unchecked(kind, value)),
        }
    }

    pub fn kind(&self) -> HeaderKind {
        self.kind
    }

    pub fn value(&self) -> Bytes {
        self.value.to_bytes()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.value
    }

    fn expect_kind(&self, expected: HeaderKind) -> Result<&[u8], HeaderError> {
        if self.kind == expected {
            Ok(self.as_bytes())
        } else {
            Err(HeaderError::WrongKind {
                expected,
                actual: self.kind,
            })
        }
    }

    fn fixed<const N: usize>(&self, expected: HeaderKind) -> Result<[u8; N], HeaderError> {
        self.expect_kind(expected)?
            .try_into()
            .map_err(|_| HeaderError::Malformed(expected))
    }

    pub fn as_raw(&self) -> Result<&[u8], HeaderError> {
        self.expect_kind(HeaderKind::Raw)
    }

    pub fn as_str(&self) -> Result<&str, HeaderError> {
        std::str::from_utf8(self.expect_kind(HeaderKind::String)?)
            .map_err(|_| HeaderError::InvalidUtf8)
    }

    pub fn as_bool(&self) -> Result<bool, HeaderError> {
        match self.fixed::<1>(HeaderKind::Bool)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(HeaderError::Malformed(HeaderKind::Bool)),
        }
    }

    /// The value as readable text whatever its kind (for logs and JSON dumps).
    pub fn to_string_value(&self) -> String {
        match self.kind {
            HeaderKind::Raw => format!("{:?}", self.as_bytes()),
            HeaderKind::String => String::from_utf8_lossy(&self.value).into_owned(),
            HeaderKind::Bool => match self.as_bool() {
                Ok(value) => value.to_string(),
                Err(_) => "<malformed bool>".to_string(),
            },
            kind => self
                .number_text()
                .unwrap_or_else(|| format!("<malformed {kind}>")),
        }
    }
}

/// Numeric conversions in both directions, one line per kind.
macro_rules! numeric_kinds {
    ($(($ty:ty, $kind:ident, $as_fn:ident)),* $(,)?) => {
        impl<T> HeaderField<T> {
            $(
                pub fn $as_fn(&self) -> Result<$ty, HeaderError> {
                    self.fixed(HeaderKind::$kind).map(<$ty>::from_le_bytes)
                }
            )*

            fn number_text(&self) -> Option<String> {
                match self.kind {
                    $(HeaderKind::$kind => self.$as_fn().ok().map(|v| v.to_string()),)*
                    _ => None,
                }
            }
        }
        $(
            impl<T> From<$ty> for HeaderField<T> {
                fn from(value: $ty) -> Self {
                    Self::new_unchecked(HeaderKind::$kind, &value.to_le_bytes())
                }
            }
            impl<T> TryFrom<HeaderField<T>> for $ty {
                type Error = HeaderError;
                fn try_from(field: HeaderField<T>) -> Result<Self, Self::Error> {
                    field.$as_fn()
                }
            }
            impl<T> TryFrom<&HeaderField<T>> for $ty {
                type Error = HeaderError;
                fn try_from(field: &HeaderField<T>) -> Result<Self, Self::Error> {
                    field.$as_fn()
                }
            }
        )*
    };
}

numeric_kinds!(
    (i8, Int8, as_int8),
    (i16, Int16, as_int16),
    (i32, Int32, as_int32),
    (i64, Int64, as_int64),
    (i128, Int128, as_int128),
    (u8, Uint8, as_uint8),
    (u16, Uint16, as_uint16),
    (u32, Uint32, as_uint32),
    (u64, Uint64, as_uint64),
    (u128, Uint128, as_uint128),
    (f32, Float32, as_float32),
    (f64, Float64, as_float64),
);

impl<T> From<bool> for HeaderField<T> {
    fn from(value: bool) -> Self {
        Self::new_unchecked(HeaderKind::Bool, &[u8::from(value)])
    }
}

impl<T> TryFrom<&str> for HeaderField<T> {
    type Error = HeaderError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::from_raw(HeaderKind::String, value.as_bytes())
    }
}

impl<T> TryFrom<String> for HeaderField<T> {
    type Error = HeaderError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::try_from(value.as_str())
    }
}

impl<T> TryFrom<&[u8]> for HeaderField<T> {
    type Error = HeaderError;
    fn try_from(value: &[u8]) -> Result<Self, Self::Error> {
        Self::from_raw(HeaderKind::Raw, value)
    }
}

impl<T> TryFrom<Vec<u8>> for HeaderField<T> {
    type Error = HeaderError;
    fn try_from(value: Vec<u8>) -> Result<Self, Self::Error> {
        Self::try_from(value.as_slice())
    }
}

impl<T> TryFrom<HeaderField<T>> for bool {
    type Error = HeaderError;
    fn try_from(field: HeaderField<T>) -> Result<Self, Self::Error> {
        field.as_bool()
    }
}

impl<T> TryFrom<&HeaderField<T>> for bool {
    type Error = HeaderError;
    fn try_from(field: &HeaderField<T>) -> Result<Self, Self::Error> {
        field.as_bool()
    }
}

impl<T> TryFrom<HeaderField<T>> for String {
    type Error = HeaderError;
    fn try_from(field: HeaderField<T>) -> Result<Self, Self::Error> {
        field.as_str().map(str::to_string)
    }
}

impl<T> TryFrom<&HeaderField<T>> for String {
    type Error = HeaderError;
    fn try_from(field: &HeaderField<T>) -> Result<Self, Self::Error> {
        field.as_str().map(str::to_string)
    }
}

impl<T> TryFrom<HeaderField<T>> for Vec<u8> {
    type Error = HeaderError;
    fn try_from(field: HeaderField<T>) -> Result<Self, Self::Error> {
        field.as_raw().map(<[u8]>::to_vec)
    }
}

impl<T> TryFrom<&HeaderField<T>> for Vec<u8> {
    type Error = HeaderError;
    fn try_from(field: &HeaderField<T>) -> Result<Self, Self::Error> {
        field.as_raw().map(<[u8]>::to_vec)
    }
}

impl<T> FromStr for HeaderField<T> {
    type Err = HeaderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s)
    }
}

impl<T> Display for HeaderField<T> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.to_string_value())
    }
}

impl<T> Hash for HeaderField<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.as_bytes().hash(state);
    }
}

impl<T: Eq> Ord for HeaderField<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.kind.as_code(), self.as_bytes()).cmp(&(other.kind.as_code(), other.as_bytes()))
    }
}

impl<T: Eq> PartialOrd for HeaderField<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Base64 of the longest valid field (255 bytes) fits in 340 characters.
const ENCODED_MAX: usize = 340;
/// Base64 of fields up to 48 bytes, which most are.
const ENCODED_SHORT: usize = 64;

impl<T> Serialize for HeaderField<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("HeaderField", 2)?;
        fields.serialize_field("kind", &self.kind)?;
        // Encoded on the stack, as headers are on every message's hot path,
        // and short fields in a small buffer, as zeroing the large one for
        // each field costs about as much as encoding it.
        let (mut short, mut long) = ([0u8; ENCODED_SHORT], None);
        let buffer: &mut [u8] = if self.value.len() <= ENCODED_SHORT / 4 * 3 {
            &mut short
        } else {
            long.insert([0u8; ENCODED_MAX])
        };
        match STANDARD.encode_slice(self.as_bytes(), buffer) {
            Ok(len) => {
                // SAFETY: standard Base64 output is ASCII, which is UTF-8.
                let text = unsafe { std::str::from_utf8_unchecked(&buffer[..len]) };
                fields.serialize_field("value", text)?;
            }
            // Only a field built from an over-long wire value gets here.
            Err(_) => fields.serialize_field("value", &STANDARD.encode(self.as_bytes()))?,
        }
        fields.end()
    }
}

#[derive(Deserialize)]
#[serde(rename = "HeaderField")]
struct WireField<'a> {
    kind: HeaderKind,
    /// Borrowed where the format allows (postcard does), so no text copy is made.
    #[serde(borrow)]
    value: Cow<'a, str>,
}

impl<'de, T> Deserialize<'de> for HeaderField<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireField::deserialize(deserializer)?;
        let text = wire.value.as_bytes();
        let not_base64 = |error: base64::DecodeSliceError| {
            D::Error::custom(format!("header value is not Base64: {error}"))
        };
        // Short text (up to 48 bytes) is decoded on the stack, not into a fresh
        // vector; what fits is then held inline.
        let mut short = [0u8; ENCODED_SHORT];
        let value = if text.len() <= ENCODED_SHORT {
            let len = STANDARD
                .decode_slice(text, &mut short)
                .map_err(not_base64)?;
            FieldBytes::copy_from_slice(&short[..len])
        } else {
            let bytes = STANDARD
                .decode(text)
                .map_err(|error| not_base64(error.into()))?;
            FieldBytes::Shared(Bytes::from(bytes))
        };
        Ok(Self {
            kind: wire.kind,
            value,
            _marker: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_little_endian() {
        let value = HeaderValue::from(-7i32);
        assert_eq!(value.as_bytes(), &(-7i32).to_le_bytes());
        assert_eq!(value.as_int32(), Ok(-7));
        assert_eq!(i32::try_from(&value), Ok(-7));
        assert!(matches!(
            value.as_uint64(),
            Err(HeaderError::WrongKind { .. })
        ));
        assert_eq!(value.to_string(), "int32: -7");
    }

    #[test]
    fn length_rules_are_enforced() {
        assert_eq!(HeaderKey::try_from(""), Err(HeaderError::InvalidLength(0)));
        assert!(HeaderKey::try_from("x".repeat(255).as_str()).is_ok());
        assert_eq!(
            HeaderKey::try_from("x".repeat(256)),
            Err(HeaderError::InvalidLength(256))
        );
        assert_eq!(
            HeaderValue::from_raw(HeaderKind::Uint64, &[1, 2]),
            Err(HeaderError::Malformed(HeaderKind::Uint64))
        );
    }

    #[test]
    fn kinds_order_by_code_then_bytes() {
        let a = HeaderKey::try_from("b").unwrap();
        let b = HeaderKey::from(1u8);
        let c = HeaderKey::try_from("a").unwrap();
        let mut keys = vec![b.clone(), a.clone(), c.clone()];
        keys.sort();
        assert_eq!(keys, vec![c, a, b]);
    }

    #[test]
    fn kind_names_and_codes_round_trip() {
        for (kind, name, _) in KINDS {
            assert_eq!(name.parse::<HeaderKind>(), Ok(kind));
            assert_eq!(HeaderKind::from_code(kind.as_code()), Ok(kind));
        }
        assert!(HeaderKind::from_code(0).is_err());
        assert!(HeaderKind::from_code(16).is_err());
    }

    #[test]
    fn json_form_is_kind_name_and_base64() {
        let value = HeaderValue::try_from("hi").unwrap();
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, r#"{"kind":"string","value":"aGk="}"#);
        assert_eq!(serde_json::from_str::<HeaderValue>(&json).unwrap(), value);
        assert!(serde_json::from_str::<HeaderValue>(r#"{"kind":"raw","value":"@@"}"#).is_err());
    }
}
