//! Request IDs: every request has one, the client's `X-Request-Id` when it
//! is safe to echo, else one made here in the UUID v7 layout. The app's
//! layers send it back and write it into problem bodies and access lines.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{Bytes, BytesMut};

/// The header that carries a request's ID, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest ID taken from a client.
pub const MAX_LEN: usize = 128;

thread_local! {
    /// A splitmix64 state per thread, seeded from the OS's randomness once.
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()));
    /// This thread's ID generator.
    static GENERATOR: RefCell<Generator> = RefCell::new(Generator::default());
}

/// How many generated IDs share one allocation.
const IDS_PER_BLOCK: usize = 128;

/// Where each of a generated ID's 32 hex digits goes, around the dashes of 8-4-4-4-12.
const DIGITS: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29,
    30, 31, 32, 33, 34, 35,
];

/// Where the 12-bit counter's three hex digits go: the 14th to 16th of
/// [`DIGITS`], after the version's `7`.
const COUNTER_DIGITS: [u8; 3] = [DIGITS[13], DIGITS[14], DIGITS[15]];

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One thread's UUID v7 IDs. Within a millisecond, IDs share the thread's
/// random bits and differ by the counter, so only its three digits are
/// rewritten; a new millisecond, or a spent counter, draws new random bits.
/// Threads differ by their 62 random bits.
struct Generator {
    millis: u64,
    counter: u16,
    /// The last ID's text.
    text: [u8; 36],
    /// The unused rest of the block IDs are cut from: sending an ID back and
    /// logging it clone a reference count, and no request pays for an
    /// allocation of its own.
    block: BytesMut,
}

impl Default for Generator {
    fn default() -> Self {
        Self {
            // No real millisecond: the first ID draws its bits.
            millis: u64::MAX,
            counter: 0,
            text: [b'-'; 36],
            block: BytesMut::new(),
        }
    }
}

impl Generator {
    /// The text of the next ID at `millis`, cut from the block.
    fn next(&mut self, millis: u64) -> Bytes {
        if millis == self.millis && self.counter < 0x0fff {
            self.counter += 1;
            for (i, at) in COUNTER_DIGITS.into_iter().enumerate() {
                self.text[usize::from(at)] = HEX[usize::from((self.counter >> (8 - 4 * i)) & 0xf)];
            }
        } else {
            self.millis = millis;
            // A random start with its top bit clear leaves room to count.
            let (a, b) = (next_random(), next_random());
            self.counter = (a & 0x07ff) as u16;
            let hi = (millis << 16) | 0x7000 | u64::from(self.counter);
            let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
            let bits = (u128::from(hi) << 64) | u128::from(lo);
            self.text = [b'-'; 36];
            for (nibble, at) in DIGITS.iter().enumerate() {
                self.text[usize::from(*at)] = HEX[((bits >> (124 - 4 * nibble)) & 0xf) as usize];
            }
        }
        if self.block.capacity() < self.text.len() {
            self.block = BytesMut::with_capacity(IDS_PER_BLOCK * self.text.len());
        }
        self.block.extend_from_slice(&self.text);
        self.block.split().freeze()
    }
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

    /// A new ID in the UUID v7 layout: milliseconds since the epoch, a
    /// counter within the millisecond (RFC 9562's method 1), then random bits.
    pub fn generate() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let bytes = GENERATOR.with_borrow_mut(|generator| generator.next(millis));
        // Hex digits and dashes are always a valid header value.
        Self(
            HeaderValue::from_maybe_shared(bytes).unwrap_or_else(|_| HeaderValue::from_static("-")),
        )
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

    #[test]
    fn generated_ids_are_uuid_v7s_by_the_uuid_crate() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        let ids: Vec<uuid::Uuid> = (0..2 * IDS_PER_BLOCK)
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
        // Made on one thread, they sort in the order they were made.
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    }

    #[test]
    fn ids_cut_from_shared_blocks_stay_whole_and_distinct() {
        // Three blocks' worth: earlier IDs must not change as later ones are cut.
        let ids: Vec<RequestId> = (0..3 * IDS_PER_BLOCK)
            .map(|_| RequestId::generate())
            .collect();
        let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let unique: std::collections::HashSet<&String> = texts.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for text in &texts {
            assert_eq!(text.len(), 36, "{text}");
            assert!(is_safe(text.as_bytes()), "{text}");
        }
        let more: Vec<RequestId> = (0..IDS_PER_BLOCK).map(|_| RequestId::generate()).collect();
        assert!(more.iter().all(|id| !unique.contains(&id.to_string())));
        assert_eq!(
            ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            texts
        );
    }

    #[test]
    fn ids_within_a_millisecond_count_up_and_a_spent_counter_draws_new_bits() {
        let mut generator = Generator::default();
        let text = |bytes: Bytes| String::from_utf8(bytes.to_vec()).expect("ascii");
        let first = text(generator.next(1_700_000_000_000));
        let second = text(generator.next(1_700_000_000_000));
        assert_eq!(first[..14], second[..14], "same millisecond");
        assert_eq!(first[18..], second[18..], "same random bits");
        let count = |t: &str| u16::from_str_radix(&t[15..18], 16).expect("hex");
        assert_eq!(count(&second), count(&first) + 1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5_000 {
            let id = text(generator.next(1_700_000_000_000));
            assert!(is_safe(id.as_bytes()) && id.len() == 36, "{id}");
            assert!(seen.insert(id), "an ID repeated within one millisecond");
        }
        let later = text(generator.next(1_700_000_000_001));
        assert_ne!(later[..14], first[..14], "a new millisecond");
    }
}
