//! The auth series, read at each scrape: `petsage_auth_failures_total` by a
//! bounded `reason`, and `petsage_auth_key_refreshes_total` by `result`.

use std::fmt::Error as FmtError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use crate::verify::Invalid;

/// Why a request to a protected route was refused: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No `Authorization` header: 401.
    MissingToken,
    /// A malformed `Authorization` header, or two: 400.
    InvalidRequest,
    /// No key set was ever fetched: 503.
    NoKeys,
    /// A valid token without a scope the route requires: 403.
    InsufficientScope,
    /// A token refused by the verifier: 401.
    Invalid(Invalid),
}

/// Every reason, in label order.
const REASONS: [Failure; 14] = [
    Failure::MissingToken,
    Failure::InvalidRequest,
    Failure::NoKeys,
    Failure::InsufficientScope,
    Failure::Invalid(Invalid::TooLarge),
    Failure::Invalid(Invalid::Malformed),
    Failure::Invalid(Invalid::Algorithm),
    Failure::Invalid(Invalid::UnknownKey),
    Failure::Invalid(Invalid::Signature),
    Failure::Invalid(Invalid::Expired),
    Failure::Invalid(Invalid::NotYetValid),
    Failure::Invalid(Invalid::Issuer),
    Failure::Invalid(Invalid::Audience),
    Failure::Invalid(Invalid::Claims),
];

impl Failure {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidRequest => "invalid_request",
            Self::NoKeys => "no_keys",
            Self::InsufficientScope => "insufficient_scope",
            Self::Invalid(invalid) => invalid.as_str(),
        }
    }

    fn index(self) -> usize {
        REASONS
            .iter()
            .position(|reason| *reason == self)
            .unwrap_or_default()
    }
}

/// What the identity platform counted since start.
#[derive(Debug, Default)]
pub(crate) struct AuthCounters {
    failures: [AtomicU64; REASONS.len()],
    refreshes_ok: AtomicU64,
    refreshes_failed: AtomicU64,
}

impl AuthCounters {
    /// Counts one refused request.
    pub(crate) fn failed(&self, failure: Failure) {
        self.failures[failure.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one key-set fetch and how it went.
    pub(crate) fn refreshed(&self, ok: bool) {
        let counter = if ok {
            &self.refreshes_ok
        } else {
            &self.refreshes_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The auth series for `/metrics`.
#[derive(Debug)]
pub(crate) struct AuthCollector {
    counters: Arc<AuthCounters>,
}

impl AuthCollector {
    pub(crate) fn new(counters: Arc<AuthCounters>) -> Self {
        Self { counters }
    }
}

impl Collector for AuthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), FmtError> {
        let mut failures = encoder.encode_descriptor(
            "petsage_auth_failures",
            "Requests to protected routes refused, by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in REASONS.iter().zip(&self.counters.failures) {
            ConstCounter::new(count.load(Ordering::Relaxed)).encode(failures.encode_family(
                &ReasonLabels {
                    reason: reason.as_str(),
                },
            )?)?;
        }
        let mut refreshes = encoder.encode_descriptor(
            "petsage_auth_key_refreshes",
            "Fetches of the provider's key set, by result",
            None,
            MetricType::Counter,
        )?;
        for (result, count) in [
            ("success", &self.counters.refreshes_ok),
            ("failure", &self.counters.refreshes_failed),
        ] {
            ConstCounter::new(count.load(Ordering::Relaxed))
                .encode(refreshes.encode_family(&ResultLabels { result })?)?;
        }
        Ok(())
    }
}
