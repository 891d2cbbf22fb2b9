//! [`Identity`]: the resource a feature asks for when it serves protected
//! routes. It holds the provider's key set (fetched by a start step, then on
//! a schedule, and again when a token names an unknown key, at most once per
//! [`REFETCH_INTERVAL`]), the verifier, the `auth-keys` health check and the
//! auth metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use petsage_core::{Context, HealthCheck};

use crate::dev::{DEV_AUDIENCE, DEV_ISSUER, DevIssuer};
use crate::keys::KeySet;
use crate::metrics::{AuthCollector, AuthCounters};
use crate::verify::Verifier;
use crate::{AuthMode, IdentitySettings, Scopes};

/// The least time between two key-set fetches asked for by unknown `kid`s.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// How long one fetch (discovery and key set) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The identity platform, shared by every feature that asks for it.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    /// In dev mode, this instance's own issuer, whose key is the key set.
    dev: Option<Arc<DevIssuer>>,
    /// The provider's issuer URL, whose discovery document the OpenAPI document names.
    discovery: Option<String>,
    jwks_url: Option<String>,
    verifier: Verifier,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Bumped at every change of key set: cached verifications of an older one are void.
    generation: AtomicU64,
    fetching: Mutex<Fetching>,
    /// The last fetch's failure, while the provider cannot be reached.
    last_failure: Mutex<Option<String>>,
    counters: Arc<AuthCounters>,
}

#[derive(Default)]
struct Fetching {
    /// When an unknown `kid` last caused a fetch.
    last_refetch: Option<Instant>,
    /// The fetch under way, which concurrent askers share.
    in_flight: Option<Shared<BoxFuture<'static, ()>>>,
}

impl Identity {
    /// The identity platform of this service: made on the first ask, with the
    /// settings the app put in `ctx`. Fails (one line naming the variable)
    /// when no issuer or no audience is set: a service with protected routes
    /// does not start open. For a command that serves nothing
    /// (`documents_only`), it needs no settings and fetches no key.
    pub fn from_context(ctx: &mut Context) -> Result<Self, String> {
        if let Some(identity) = ctx.get::<Identity>() {
            return Ok(identity.clone());
        }
        let settings = ctx.get::<IdentitySettings>().cloned().unwrap_or_default();
        if settings.documents_only {
            let issuer = settings.auth_issuer.clone().unwrap_or_default();
            let identity = Self::with(issuer, &settings, None);
            ctx.insert(identity.clone());
            return Ok(identity);
        }
        let identity = Self::new(&settings)?;
        ctx.add_health_check(identity.health_check(settings.auth_jwks_refresh));
        ctx.add_metrics(Box::new(AuthCollector::new(Arc::clone(
            &identity.inner.counters,
        ))));
        ctx.insert(identity.clone());
        if let Some(dev) = &identity.inner.dev {
            log::warn!(
                "identity: dev mode: this instance accepts tokens signed by its own key {} (petsage-app dev-token); never in production",
                dev.path().display()
            );
            identity.set_keys(dev.key_set());
            return Ok(identity);
        }
        let started = identity.clone();
        let refresh = settings.auth_jwks_refresh;
        ctx.on_start_shared("identity: fetch the key set", move || async move {
            started.fetch().await;
            actix_web::rt::spawn(started.refresh_every(refresh));
            Ok(())
        });
        Ok(identity)
    }

    /// An identity platform for `settings`, with no key set yet (in dev
    /// mode, with the dev key made or loaded from the data folder).
    pub fn new(settings: &IdentitySettings) -> Result<Self, String> {
        if settings.auth_mode == AuthMode::Dev {
            return Self::dev(settings);
        }
        let Some(issuer) = settings.auth_issuer.clone() else {
            return Err("PETSAGE_AUTH_ISSUER (--auth-issuer) is not set: a feature serves protected routes; set it to the OpenID provider's issuer URL".to_owned());
        };
        if settings.auth_audiences.is_empty() {
            return Err("PETSAGE_AUTH_AUDIENCES (--auth-audiences) is not set: with an issuer, name the audiences this service accepts, comma-separated".to_owned());
        }
        Ok(Self::with(issuer, settings, None))
    }

    /// Dev mode: the issuer is this instance, with its key from the data folder.
    fn dev(settings: &IdentitySettings) -> Result<Self, String> {
        if settings.auth_issuer.is_some() || settings.auth_jwks_url.is_some() {
            return Err("PETSAGE_AUTH_MODE=dev makes this instance its own issuer: unset PETSAGE_AUTH_ISSUER and PETSAGE_AUTH_JWKS_URL, or use PETSAGE_AUTH_MODE=provider".to_owned());
        }
        if !settings
            .auth_algorithms
            .contains(&jsonwebtoken::Algorithm::ES256)
        {
            return Err("PETSAGE_AUTH_MODE=dev signs with ES256: add it to PETSAGE_AUTH_ALGORITHMS (--auth-algorithms)".to_owned());
        }
        let dev = DevIssuer::load_or_create(&settings.data_dir)?;
        let mut settings = settings.clone();
        if settings.auth_audiences.is_empty() {
            settings.auth_audiences = vec![DEV_AUDIENCE.to_owned()];
        }
        Ok(Self::with(
            DEV_ISSUER.to_owned(),
            &settings,
            Some(Arc::new(dev)),
        ))
    }

    fn with(issuer: String, settings: &IdentitySettings, dev: Option<Arc<DevIssuer>>) -> Self {
        let discovery = settings
            .auth_issuer
            .clone()
            .filter(|_| settings.auth_mode == AuthMode::Provider);
        Self {
            inner: Arc::new(Inner {
                verifier: Verifier::new(&issuer, settings),
                discovery,
                issuer,
                dev,
                jwks_url: settings.auth_jwks_url.clone(),
                keys: RwLock::new(None),
                generation: AtomicU64::new(0),
                fetching: Mutex::default(),
                last_failure: Mutex::default(),
                counters: Arc::default(),
            }),
        }
    }

    /// The provider's issuer URL, whose discovery document clients read; none in dev mode.
    pub fn discovery_issuer(&self) -> Option<&str> {
        self.inner.discovery.as_deref()
    }

    /// This instance's own issuer, in dev mode.
    pub fn dev_issuer(&self) -> Option<&Arc<DevIssuer>> {
        self.inner.dev.as_ref()
    }

    /// A requirement of `scopes`, all of them, for a route (see `Route::require`).
    pub fn require(&self, scopes: &[&str]) -> Scopes {
        Scopes::new(self.clone(), scopes)
    }

    /// The issuer whose tokens are accepted.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    pub(crate) fn counters(&self) -> &AuthCounters {
        &self.inner.counters
    }

    /// The key set in use and its generation, if one was ever fetched.
    pub fn keys(&self) -> Option<(Arc<KeySet>, u64)> {
        let keys = self
            .inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        Some((keys, self.inner.generation.load(Ordering::Acquire)))
    }

    /// Puts `keys` in use (a fetch did, or a test).
    pub fn set_keys(&self, keys: KeySet) {
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(keys));
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Fetches the key set now; a failure keeps the keys in use.
    pub async fn fetch(&self) {
        let shared = self.join_or_start(&mut lock(&self.inner.fetching));
        shared.await;
    }

    /// Fetches the key set again because a token named an unknown `kid`,
    /// unless such a fetch happened within [`REFETCH_INTERVAL`]; askers at
    /// the same time share one fetch. Whether a fetch happened.
    pub async fn refetch_for_unknown_key(&self) -> bool {
        let shared = {
            let mut fetching = lock(&self.inner.fetching);
            if fetching.in_flight.is_none() {
                let now = Instant::now();
                if fetching
                    .last_refetch
                    .is_some_and(|last| now.duration_since(last) < REFETCH_INTERVAL)
                {
                    return false;
                }
                fetching.last_refetch = Some(now);
            }
            self.join_or_start(&mut fetching)
        };
        shared.await;
        true
    }

    /// The fetch under way, or a new one; decided under the `fetching` lock,
    /// so askers at the same time share one.
    fn join_or_start(&self, fetching: &mut Fetching) -> Shared<BoxFuture<'static, ()>> {
        fetching
            .in_flight
            .get_or_insert_with(|| self.clone().fetch_once().boxed().shared())
            .clone()
    }

    async fn fetch_once(self) {
        let issuer = self.inner.issuer.clone();
        let jwks_url = self.inner.jwks_url.clone();
        let fetched = match &self.inner.dev {
            Some(dev) => Ok(dev.key_set()),
            None => actix_web::rt::task::spawn_blocking(move || fetch_key_set(&issuer, jwks_url))
                .await
                .unwrap_or_else(|err| Err(format!("the fetch stopped: {err}"))),
        };
        match fetched {
            Ok(keys) => {
                log::info!(
                    "identity: key set fetched from {}, {} keys",
                    self.inner.issuer,
                    keys.len()
                );
                self.set_keys(keys);
                self.inner.counters.refreshed(true);
                *lock(&self.inner.last_failure) = None;
            }
            Err(err) => {
                log::warn!("identity: cannot fetch the key set: {err}");
                self.inner.counters.refreshed(false);
                *lock(&self.inner.last_failure) = Some(err);
            }
        }
        lock(&self.inner.fetching).in_flight = None;
    }

    async fn refresh_every(self, interval: Duration) {
        loop {
            actix_web::rt::time::sleep(interval).await;
            self.fetch().await;
        }
    }

    /// `auth-keys`, not critical: fails while the last fetch failed, or when
    /// none ever succeeded, and says how old the key set in use is.
    fn health_check(&self, refresh: Duration) -> HealthCheck {
        let identity = self.clone();
        HealthCheck::non_critical("auth-keys", move || {
            let identity = identity.clone();
            async move {
                let failure = lock(&identity.inner.last_failure)
                    .clone();
                let age = identity.keys().map(|(keys, _)| {
                    SystemTime::now()
                        .duration_since(keys.fetched_at)
                        .unwrap_or_default()
                });
                match (age, failure) {
                    (None, failure) => Err(format!(
                        "no key set fetched yet{}",
                        failure.map(|f| format!(": {f}")).unwrap_or_default()
                    )),
                    (Some(age), Some(failure)) => Err(format!(
                        "key set is {} s old (refreshed every {} s); the last fetch failed: {failure}",
                        age.as_secs(),
                        refresh.as_secs()
                    )),
                    (Some(_), None) => Ok(()),
                }
            }
        })
        .component_type("component")
    }
}

/// `mutex`'s value; a panic while it was held leaves nothing half-done here.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Discovery (unless `jwks_url` is given), then the key set. Blocking.
fn fetch_key_set(issuer: &str, jwks_url: Option<String>) -> Result<KeySet, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .max_redirects(0)
        .build()
        .into();
    let get = |url: &str| -> Result<Vec<u8>, String> {
        agent
            .get(url)
            .call()
            .map_err(|err| format!("GET {url}: {err}"))?
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_vec()
            .map_err(|err| format!("GET {url}: {err}"))
    };
    let jwks_url = match jwks_url {
        Some(url) => url,
        None => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            let discovery: serde_json::Value = serde_json::from_slice(&get(&url)?)
                .map_err(|err| format!("{url}: not JSON: {err}"))?;
            if discovery["issuer"] != issuer {
                return Err(format!(
                    "{url} names the issuer {}, not {issuer}",
                    discovery["issuer"]
                ));
            }
            discovery["jwks_uri"]
                .as_str()
                .ok_or_else(|| format!("{url} names no jwks_uri"))?
                .to_owned()
        }
    };
    KeySet::from_jwks(&get(&jwks_url)?, SystemTime::now())
        .map_err(|err| format!("{jwks_url}: {err}"))
}
