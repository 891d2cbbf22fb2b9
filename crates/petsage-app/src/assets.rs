//! Fixed documents served the way browsers and caches want them: gzip or
//! brotli when the client accepts it, an `ETag`, `304 Not Modified` on a
//! matching `If-None-Match`, and a cache lifetime. The docs routes use it
//! (Swagger UI's bundle is 1.5 MB); the health routes never do.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use actix_web::http::StatusCode;
use actix_web::http::header::{
    self, AcceptEncoding, Encoding, HeaderValue, IfNoneMatch, Preference, Quality,
};
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

/// Bodies below this size go out as they are: compressing them gains nothing.
const MIN_COMPRESSED: usize = 1024;
/// Brotli's quality: 9 of 11 keeps the one-off cost of compressing the bundle
/// small while landing close to the best ratio.
const BROTLI_QUALITY: u32 = 9;

/// A content coding the client accepts and we can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    /// The `Content-Encoding` value, and the suffix that tells this
    /// representation's `ETag` from the others'.
    fn token(self) -> Option<&'static str> {
        match self {
            Self::Brotli => Some("br"),
            Self::Gzip => Some("gzip"),
            Self::Identity => None,
        }
    }
}

/// One fixed document: its bytes, type, cache policy and validator, with its
/// compressed forms made once, on first request.
pub(crate) struct Asset {
    content_type: HeaderValue,
    cache_control: HeaderValue,
    /// The validator of the identity representation, without quotes.
    tag: String,
    /// Each representation's `ETag`, made once, in `Coding`'s declaration order
    /// (so `coding as usize` indexes it).
    etags: [HeaderValue; 3],
    identity: Bytes,
    compressed: OnceLock<Option<(Bytes, Bytes)>>,
}

impl Asset {
    /// An asset of `content_type`, cached by clients as `cache_control` says.
    pub(crate) fn new(
        body: impl Into<Bytes>,
        content_type: HeaderValue,
        cache_control: &'static str,
    ) -> Self {
        let identity: Bytes = body.into();
        let mut hasher = std::hash::DefaultHasher::new();
        identity.hash(&mut hasher);
        let tag = format!("{:016x}-{:x}", hasher.finish(), identity.len());
        let etag = |coding: Coding| {
            let quoted = match coding.token() {
                Some(token) => format!("\"{tag}-{token}\""),
                None => format!("\"{tag}\""),
            };
            // Hex digits and dashes: always a valid header value.
            HeaderValue::from_str(&quoted).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
        };
        Self {
            content_type,
            cache_control: HeaderValue::from_static(cache_control),
            etags: [Coding::Brotli, Coding::Gzip, Coding::Identity].map(etag),
            tag,
            identity,
            compressed: OnceLock::new(),
        }
    }

    fn compressible(&self) -> bool {
        self.identity.len() >= MIN_COMPRESSED
    }

    /// Brotli and gzip forms, made on the first call; `None` when they would not be smaller.
    fn compressed(&self) -> Option<&(Bytes, Bytes)> {
        self.compressed
            .get_or_init(|| {
                let brotli = brotli(&self.identity)?;
                let gzip = gzip(&self.identity)?;
                (gzip.len() < self.identity.len()).then_some((brotli, gzip))
            })
            .as_ref()
    }

    /// The `ETag` of the representation in `coding`.
    fn etag(&self, coding: Coding) -> HeaderValue {
        self.etags[coding as usize].clone()
    }

    /// Answers `req` with this asset: `304` when its `If-None-Match` holds
    /// our validator, else the best encoding the client accepts.
    pub(crate) async fn respond(self: Arc<Self>, req: &HttpRequest) -> HttpResponse {
        let mut coding = if self.compressible() {
            accepted(req.get_header::<AcceptEncoding>().as_ref())
        } else {
            Coding::Identity
        };
        if coding != Coding::Identity && self.compressed.get().is_none() {
            // The first request compresses, off the worker thread.
            let asset = Arc::clone(&self);
            let ready = web::block(move || asset.compressed().is_some()).await;
            if !ready.unwrap_or(false) {
                coding = Coding::Identity;
            }
        }
        let compressed = match coding {
            Coding::Identity => None,
            Coding::Brotli | Coding::Gzip => self.compressed(),
        };
        let body = match (coding, compressed) {
            (Coding::Brotli, Some((brotli, _))) => brotli.clone(),
            (Coding::Gzip, Some((_, gzip))) => gzip.clone(),
            _ => {
                coding = Coding::Identity;
                self.identity.clone()
            }
        };
        let not_modified = req
            .get_header::<IfNoneMatch>()
            .is_some_and(|tags| self.matches(&tags));
        let mut res = if not_modified {
            HttpResponse::new(StatusCode::NOT_MODIFIED)
        } else {
            HttpResponse::with_body(StatusCode::OK, body).map_into_boxed_body()
        };
        let headers = res.headers_mut();
        if !not_modified {
            headers.insert(header::CONTENT_TYPE, self.content_type.clone());
            if let Some(token) = coding.token() {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
            }
        }
        headers.insert(header::ETAG, self.etag(coding));
        headers.insert(header::CACHE_CONTROL, self.cache_control.clone());
        if self.compressible() {
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        res
    }

    /// Whether an `If-None-Match` names any representation of this asset
    /// (weak comparison, as RFC 9110 asks for this header).
    fn matches(&self, if_none_match: &IfNoneMatch) -> bool {
        match if_none_match {
            IfNoneMatch::Any => true,
            IfNoneMatch::Items(tags) => tags.iter().any(|tag| {
                let tag = tag.tag();
                let base = tag
                    .strip_suffix("-br")
                    .or_else(|| tag.strip_suffix("-gzip"))
                    .unwrap_or(tag);
                base == self.tag
            }),
        }
    }
}

/// The best coding an `Accept-Encoding` allows: brotli, then gzip, each at
/// its own weight or else the weight of `*`. Brotli wins a tie, whatever the
/// order the client listed them in (browsers list gzip first).
fn accepted(accept: Option<&AcceptEncoding>) -> Coding {
    let Some(accept) = accept else {
        return Coding::Identity;
    };
    let weight = |names: &[Encoding]| {
        let named = accept.iter().find(|item| match &item.item {
            Preference::Specific(encoding) => names.contains(encoding),
            Preference::Any => false,
        });
        let any = || accept.iter().find(|item| item.item == Preference::Any);
        named
            .or_else(any)
            .map_or(Quality::ZERO, |item| item.quality)
    };
    let brotli = weight(&[Encoding::brotli()]);
    let gzip = weight(&[Encoding::gzip(), Encoding::Unknown("x-gzip".to_owned())]);
    if brotli > Quality::ZERO && brotli >= gzip {
        Coding::Brotli
    } else if gzip > Quality::ZERO {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

fn brotli(input: &[u8]) -> Option<Bytes> {
    let mut out = Vec::with_capacity(input.len() / 4);
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, BROTLI_QUALITY, 22);
        writer.write_all(input).ok()?;
        writer.flush().ok()?;
    }
    Some(out.into())
}

fn gzip(input: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(input.len() / 3),
        flate2::Compression::best(),
    );
    encoder.write_all(input).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Coding {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::ACCEPT_ENCODING, value))
            .to_http_request();
        accepted(req.get_header::<AcceptEncoding>().as_ref())
    }

    fn if_none_match(value: &str) -> IfNoneMatch {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, value))
            .to_http_request();
        req.get_header::<IfNoneMatch>()
            .expect("a valid If-None-Match")
    }

    #[test]
    fn picks_the_best_coding_the_client_accepts() {
        assert_eq!(accepted(None), Coding::Identity);
        assert_eq!(accept("gzip, deflate, br"), Coding::Brotli);
        assert_eq!(accept("gzip"), Coding::Gzip);
        assert_eq!(accept("br;q=0, gzip"), Coding::Gzip);
        assert_eq!(accept("br;q=0.5, gzip;q=0.9"), Coding::Gzip);
        assert_eq!(accept("*"), Coding::Brotli);
        assert_eq!(accept("gzip;q=0, *;q=0"), Coding::Identity);
        assert_eq!(accept("identity, deflate"), Coding::Identity);
    }

    #[test]
    fn compressed_forms_decode_to_the_original() {
        let text = "swagger ".repeat(4096);
        let asset = Asset::new(
            text.clone(),
            HeaderValue::from_static("text/plain"),
            "no-cache",
        );
        let (br, gz) = asset.compressed().expect("repetitive text compresses");
        let mut unzipped = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped)
            .expect("gunzips");
        assert_eq!(unzipped, text);
        let mut unbrotlied = String::new();
        std::io::Read::read_to_string(
            &mut brotli::Decompressor::new(&br[..], 4096),
            &mut unbrotlied,
        )
        .expect("decodes brotli");
        assert_eq!(unbrotlied, text);
    }

    #[test]
    fn if_none_match_matches_any_representation_of_the_same_bytes() {
        let asset = Asset::new(
            "x".repeat(2048),
            HeaderValue::from_static("text/plain"),
            "no-cache",
        );
        let tag = asset.tag.clone();
        assert!(asset.matches(&if_none_match(&format!("\"{tag}\""))));
        assert!(asset.matches(&if_none_match(&format!("W/\"{tag}-gzip\""))));
        assert!(asset.matches(&if_none_match(&format!("\"other\", \"{tag}-br\""))));
        assert!(asset.matches(&if_none_match("*")));
        assert!(!asset.matches(&if_none_match("\"other\"")));
        assert!(
            !Asset::new(
                "y".repeat(2048),
                HeaderValue::from_static("text/plain"),
                "no-cache"
            )
            .matches(&if_none_match(&format!("\"{tag}\"")))
        );
    }
}
