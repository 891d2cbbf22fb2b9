//! How a health answer is asked for and written: JSON by default, the
//! Kubernetes verbose text (`?verbose` or `Accept: text/plain`), or the IETF
//! health format (`Accept: application/health+json`); `?exclude=<check>`
//! leaves checks out of one answer.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, Query};
use petsage_core::{CheckStatus, HealthStatus, Problem};

use crate::model::{IetfCheck, IetfHealth};
use crate::{GIT_COMMIT, SERVICE_ID, SERVICE_NAME, VERSION};

/// The representations a health endpoint can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The endpoint's JSON model (the default).
    Json,
    /// Kubernetes' verbose text: `[+]<check> ok` lines, then `<endpoint> check passed`.
    Text,
    /// `application/health+json`, draft-inadarei-api-health-check.
    Ietf,
}

/// How one request asks to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct View {
    pub(crate) format: Format,
    /// Checks to leave out of this answer (`?exclude=`, repeatable).
    pub(crate) exclude: Vec<String>,
}

impl View {
    /// A plain JSON answer with every check: what an uptime checker asks for.
    const PLAIN: View = View {
        format: Format::Json,
        exclude: Vec::new(),
    };

    /// Reads `?verbose`, `?exclude` and `Accept`; `ietf` says whether the
    /// endpoint serves the IETF format. A bad `verbose` value is a 400.
    pub(crate) fn of(req: &HttpRequest, ietf: bool) -> Result<Self, Problem> {
        let accept = req.headers().get(header::ACCEPT).map(HeaderValue::as_bytes);
        let query = req.query_string();
        // The common poll: no query, and no Accept or a catch-all one.
        if query.is_empty() && matches!(accept, None | Some(b"*/*" | b"application/json")) {
            return Ok(Self::PLAIN);
        }
        let mut view = Self {
            format: accept
                .and_then(|a| std::str::from_utf8(a).ok())
                .map_or(Format::Json, |a| preferred(a, ietf)),
            exclude: Vec::new(),
        };
        if query.is_empty() {
            return Ok(view);
        }
        let pairs = Query::<Vec<(String, String)>>::from_query(query).map_err(|err| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!("the query string is not valid: {err}"),
            )
        })?;
        for (key, value) in pairs.into_inner() {
            match key.as_str() {
                "verbose" => match value.as_str() {
                    "" | "true" | "1" => view.format = Format::Text,
                    "false" | "0" => {}
                    other => {
                        return Err(Problem::new(
                            StatusCode::BAD_REQUEST,
                            format!(
                                "invalid verbose={other:?}: expected verbose, verbose=true or verbose=false"
                            ),
                        ));
                    }
                },
                "exclude" => view.exclude.push(value),
                // Unknown parameters are ignored, as Kubernetes does.
                _ => {}
            }
        }
        Ok(view)
    }

    /// Whether `check` is left out of this answer.
    pub(crate) fn excludes(&self, check: &CheckStatus) -> bool {
        self.exclude.contains(&check.name)
    }

    /// The checks of `checks` this answer includes.
    pub(crate) fn included<'a>(
        &'a self,
        checks: &'a [CheckStatus],
    ) -> impl Iterator<Item = &'a CheckStatus> + 'a {
        checks.iter().filter(|check| !self.excludes(check))
    }
}

/// The representation `accept` prefers among those the endpoint serves:
/// the highest `q`, the earliest listed on a tie; JSON when none is named.
fn preferred(accept: &str, ietf: bool) -> Format {
    let mut best: Option<(Format, f32)> = None;
    for range in accept.split(',') {
        let mut params = range.split(';');
        let media = params.next().unwrap_or_default().trim();
        let q = params
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = if media.eq_ignore_ascii_case("application/health+json") && ietf {
            Format::Ietf
        } else if media.eq_ignore_ascii_case("text/plain") {
            Format::Text
        } else if media.eq_ignore_ascii_case("application/json")
            || media.eq_ignore_ascii_case("application/*")
            || media == "*/*"
        {
            Format::Json
        } else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
            best = Some((format, q));
        }
    }
    best.map_or(Format::Json, |(format, _)| format)
}

/// The Kubernetes verbose answer: one line per check, the `extra` lines
/// (such as readiness's phase), a warning for each unknown excluded name,
/// then `<endpoint> check passed` or `… failed`.
pub(crate) fn verbose(
    endpoint: &str,
    view: &View,
    checks: &[CheckStatus],
    extra: &[(&str, Result<(), &str>)],
    passed: bool,
    details: bool,
) -> String {
    let mut text = String::new();
    for (name, outcome) in extra {
        line(&mut text, name, false, *outcome, details);
    }
    for check in checks {
        let outcome = if check.passing() {
            Ok(())
        } else {
            Err(check.error.as_deref().unwrap_or("reason withheld"))
        };
        line(
            &mut text,
            &check.name,
            view.excludes(check),
            outcome,
            details,
        );
    }
    for name in &view.exclude {
        if !checks.iter().any(|check| check.name == *name) {
            let _ = writeln!(
                text,
                "warn: some health checks cannot be excluded: no matches for {name:?}"
            );
        }
    }
    let verdict = if passed { "passed" } else { "failed" };
    let _ = writeln!(text, "{endpoint} check {verdict}");
    text
}

fn line(text: &mut String, name: &str, excluded: bool, outcome: Result<(), &str>, details: bool) {
    let _ = match (excluded, outcome) {
        (true, _) => writeln!(text, "[+]{name} excluded: ok"),
        (false, Ok(())) => writeln!(text, "[+]{name} ok"),
        (false, Err(reason)) if details => writeln!(text, "[-]{name} failed: {reason}"),
        (false, Err(_)) => writeln!(text, "[-]{name} failed: reason withheld"),
    };
}

/// The IETF health answer for `status`, with every included check.
pub(crate) fn ietf<'a>(
    status: HealthStatus,
    checks: impl Iterator<Item = &'a CheckStatus>,
    output: Option<String>,
    details: bool,
) -> IetfHealth {
    IetfHealth {
        status: status.into(),
        version: VERSION.to_owned(),
        release_id: GIT_COMMIT.to_owned(),
        service_id: SERVICE_ID.to_owned(),
        description: SERVICE_NAME.to_owned(),
        output,
        checks: checks
            .map(|check| {
                (
                    format!("{}:responseTime", check.name),
                    vec![IetfCheck::new(check, details)],
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

/// `value` serialized; the models always serialize.
pub(crate) fn json_bytes<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn view(uri: &str, accept: Option<&str>, ietf: bool) -> Result<View, Problem> {
        let mut req = TestRequest::get().uri(uri);
        if let Some(accept) = accept {
            req = req.insert_header((header::ACCEPT, accept));
        }
        View::of(&req.to_http_request(), ietf)
    }

    fn format(uri: &str, accept: Option<&str>, ietf: bool) -> Format {
        view(uri, accept, ietf).expect("valid").format
    }

    #[test]
    fn accept_picks_the_format_and_json_stays_the_default() {
        assert_eq!(format("/", None, true), Format::Json);
        assert_eq!(format("/", Some("*/*"), true), Format::Json);
        assert_eq!(
            format("/", Some("text/html,application/xml;q=0.9,*/*;q=0.8"), true),
            Format::Json
        );
        assert_eq!(format("/", Some("text/plain"), true), Format::Text);
        assert_eq!(
            format("/", Some("application/health+json"), true),
            Format::Ietf
        );
        assert_eq!(
            format("/", Some("application/health+json"), false),
            Format::Json,
            "liveness has no IETF form"
        );
        assert_eq!(
            format("/", Some("application/json, text/plain, */*"), true),
            Format::Json,
            "a tie goes to the earliest listed"
        );
        assert_eq!(
            format("/", Some("application/json;q=0.5, text/plain"), true),
            Format::Text
        );
        assert_eq!(format("/", Some("text/plain;q=0"), true), Format::Json);
    }

    #[test]
    fn query_asks_for_verbose_and_exclusions() {
        for uri in ["/?verbose", "/?verbose=", "/?verbose=true", "/?verbose=1"] {
            assert_eq!(format(uri, None, true), Format::Text, "{uri}");
        }
        assert_eq!(format("/?verbose=false", None, true), Format::Json);
        assert_eq!(
            format("/?verbose", Some("application/health+json"), true),
            Format::Text,
            "the query wins over Accept"
        );
        let view = view("/?exclude=db&exclude=cache%20x&other=1", None, true).expect("valid");
        assert_eq!(view.exclude, ["db", "cache x"]);
        let err = super::tests::view("/?verbose=maybe", None, true).expect_err("invalid");
        assert_eq!(err.status, 400);
    }
}
