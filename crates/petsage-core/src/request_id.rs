//! Request IDs: every request has one, the client's `X-Request-Id` when it
//! is safe to echo, else one made here in the UUID v7 layout. The app's guard
//! layer sends it back, writes it into problem bodies and access lines.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::{HeaderName, HeaderValue};

/// The header that carries a request's ID, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest ID taken from a client.
pub const MAX_LEN: usize = 128;

thread_local! {
    /// A splitmix64 state per thread, seeded from the OS's randomness once.
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()));
}

/// The ID of one request: 1–128 characters of `[A-Za-z0-9._:-]`, held as
/// the header value it is sent back in (a client's is reused without a copy).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

/// Whether `value` may be echoed and logged as a request ID.
fn is_safe(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LEN
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl RequestId {
    /// The client's `X-Request-Id`, kept without a copy, if it is 1–128
    /// characters of `[A-Za-z0-9._:-]`; anything else (control characters,
    /// spaces, quotes, over-long) is refused.
    pub fn from_header(value: &HeaderValue) -> Option<Self> {
        is_safe(value.as_bytes()).then(|| Self(value.clone()))
    }

    /// A new ID in the UUID v7 layout: milliseconds since the epoch, then random bits.
    pub fn generate() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (a, b) = (next_random(), next_random());
        let hi = (millis << 16) | 0x7000 | (a & 0x0fff);
        let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        // 8-4-4-4-12 hex digits, two per byte, written by hand: `format!`
        // costs every request several hundred instructions more.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in hi
            .to_be_bytes()
            .into_iter()
            .chain(lo.to_be_bytes())
            .enumerate()
        {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0xf)];
            at += 2;
        }
        // Hex digits and dashes are always a valid header value.
        Self(HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("-")))
    }

    /// The client's ID when it is safe, else a new one.
    pub fn from_header_or_new(value: Option<&HeaderValue>) -> Self {
        value
            .and_then(Self::from_header)
            .unwrap_or_else(Self::generate)
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        // Only safe ASCII is ever stored.
        self.0.to_str().unwrap_or("-")
    }

    /// The ID as the header value it is sent back in.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

/// splitmix64: a fast, well-mixed sequence; IDs need uniqueness, not secrecy.
fn next_random() -> u64 {
    RNG.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_client_ids_are_kept_and_anything_else_is_refused() {
        for ok in ["a", "req-42", "2f1c:node.7_x", &"x".repeat(128)] {
            let value = HeaderValue::from_str(ok).expect("a header value");
            assert_eq!(
                RequestId::from_header(&value).map(|id| id.to_string()),
                Some(ok.to_owned())
            );
        }
        for bad in [
            &b""[..],
            &[b'x'; 129][..],
            b"two words",
            b"line\nbreak",
            b"quote\"",
            b"tab\t",
            b"\xff\xfe",
            b"caf\xc3\xa9",
        ] {
            assert!(!is_safe(bad), "{bad:?}");
            // Those a header can carry at all are refused as IDs.
            if let Ok(value) = HeaderValue::from_bytes(bad) {
                assert!(RequestId::from_header(&value).is_none(), "{bad:?}");
            }
        }
    }

    #[test]
    fn a_safe_header_is_kept_as_is() {
        let value = HeaderValue::from_static("abc-1");
        assert_eq!(
            RequestId::from_header(&value).map(|id| id.to_string()),
            Some("abc-1".to_owned())
        );
        let value = HeaderValue::from_static("a b");
        assert!(RequestId::from_header(&value).is_none());
        let new = RequestId::from_header_or_new(Some(&value));
        assert_eq!(new.as_str().len(), 36);
    }

    #[test]
    fn generated_ids_have_the_uuid_v7_layout_and_differ() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        let text = a.as_str();
        assert_eq!(text.len(), 36, "{text}");
        let groups: Vec<&str> = text.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('7'), "version 7: {text}");
        assert!(
            matches!(&groups[3][..1], "8" | "9" | "a" | "b"),
            "variant: {text}"
        );
        assert!(is_safe(text.as_bytes()), "safe to echo");
    }
}
