//! Request IDs: every request has one, the client's `X-Request-Id` when it
//! is safe to echo, else a new UUID v7. The app's layers send it back and
//! write it into problem bodies and access lines.

use std::fmt;

use actix_web::http::header::{HeaderName, HeaderValue};

/// The header that carries a request's ID, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest ID taken from a client.
pub const MAX_LEN: usize = 128;

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

    /// A new UUID v7 (the `uuid` crate's): milliseconds since the epoch, then
    /// bits that keep the IDs this process makes in the order it made them.
    pub fn generate() -> Self {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
        // Hex digits and dashes are always a valid header value.
        Self(HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-")))
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

    /// The header value it is sent back in, without a copy.
    pub fn into_header_value(self) -> HeaderValue {
        self.0
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

    #[test]
    fn generated_ids_are_uuid_v7s_that_sort_in_the_order_they_were_made() {
        use std::time::{SystemTime, UNIX_EPOCH};

        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        let ids: Vec<uuid::Uuid> = (0..1000)
            .map(|_| {
                let id = RequestId::generate();
                uuid::Uuid::parse_str(id.as_str()).expect("the uuid crate parses it")
            })
            .collect();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        for id in &ids {
            assert_eq!(id.get_version(), Some(uuid::Version::SortRand), "{id}");
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
            let (seconds, nanos) = id.get_timestamp().expect("a v7 timestamp").to_unix();
            let millis = seconds * 1000 + u64::from(nanos) / 1_000_000;
            assert!((before..=after).contains(&millis), "{id}: {millis}");
        }
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    }
}
