//! Request IDs: every request has one, the client's `X-Request-Id` when it
//! is safe to echo, else one made here in the UUID v7 layout. The app sets
//! it around each request; problem bodies and log lines read it.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The header that carries a request's ID, both ways.
pub const HEADER: &str = "x-request-id";

/// The longest ID taken from a client.
pub const MAX_LEN: usize = 128;

tokio::task_local! {
    static CURRENT: RequestId;
}

thread_local! {
    /// A splitmix64 state per thread, seeded from the OS's randomness once.
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()));
}

/// The ID of one request: 1–128 characters of `[A-Za-z0-9._:-]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The client's ID, if it is 1–128 characters of `[A-Za-z0-9._:-]`;
    /// anything else (control characters, spaces, quotes, over-long) is refused.
    pub fn from_client(value: &[u8]) -> Option<Self> {
        let safe = !value.is_empty()
            && value.len() <= MAX_LEN
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        // Every byte was checked to be ASCII.
        safe.then(|| Self(String::from_utf8_lossy(value).into()))
    }

    /// A new ID in the UUID v7 layout: milliseconds since the epoch, then random bits.
    pub fn generate() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (a, b) = (next_random(), next_random());
        let hi = (millis << 16) | 0x7000 | (a & 0x0fff);
        let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        // 8-4-4-4-12 hex digits, written by hand: `format!` costs a health poll
        // several hundred instructions more.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bits = (u128::from(hi) << 64) | u128::from(lo);
        let mut text = [b'-'; 36];
        let mut digit = 0;
        for (i, slot) in text.iter_mut().enumerate() {
            if !matches!(i, 8 | 13 | 18 | 23) {
                *slot = HEX[((bits >> (124 - 4 * digit)) & 0xf) as usize];
                digit += 1;
            }
        }
        Self(String::from_utf8_lossy(&text).into())
    }

    /// The client's ID when it is safe, else a new one.
    pub fn from_client_or_new(value: Option<&[u8]>) -> Self {
        value
            .and_then(Self::from_client)
            .unwrap_or_else(Self::generate)
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ID of the request being handled on this task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `handling` as the handling of the request with this ID.
    pub fn scope<F: Future>(self, handling: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, handling)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
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
            assert_eq!(
                RequestId::from_client(ok.as_bytes()).map(|id| id.to_string()),
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
            assert!(RequestId::from_client(bad).is_none(), "{bad:?}");
        }
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
        assert!(
            RequestId::from_client(text.as_bytes()).is_some(),
            "safe to echo"
        );
    }

    #[actix_web::test]
    async fn the_current_id_is_set_only_inside_its_scope() {
        assert!(RequestId::current().is_none());
        let id = RequestId::generate();
        let inside = id.clone().scope(async { RequestId::current() }).await;
        assert_eq!(inside, Some(id));
        assert!(RequestId::current().is_none());
    }
}
