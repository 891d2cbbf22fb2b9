//! The access log: one line per request, written by the app's guard layer
//! as the response leaves it, except for the quiet routes (health polls).
//! Lines go to the `petsage::access` log target, so `RUST_LOG` can turn
//! them off on their own (`info,petsage::access=warn`).

use std::net::SocketAddr;
use std::time::Instant;

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode, Uri, Version};
use log::Level;

/// The log target of access lines.
pub(crate) const TARGET: &str = "petsage::access";

/// What a request's access line needs, taken before the handler runs.
pub(crate) struct AccessLine {
    started: Instant,
    peer: Option<SocketAddr>,
    method: Method,
    uri: Uri,
    version: Version,
}

impl AccessLine {
    /// Starts timing `req`, unless its path is quiet or access lines are off.
    pub(crate) fn start(req: &ServiceRequest, quiet_paths: &[String]) -> Option<Self> {
        // The path comparison first: it is cheaper than asking the logger,
        // and health polls, the most frequent requests, stop at it.
        if quiet_paths.iter().any(|path| path == req.path())
            || !log::log_enabled!(target: TARGET, Level::Info)
        {
            return None;
        }
        Some(Self {
            started: Instant::now(),
            peer: req.peer_addr(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
        })
    }

    /// `127.0.0.1:5000 "GET /api/v1/pets/1 HTTP/1.1" 200 0.412ms`
    pub(crate) fn finish(self, status: StatusCode) {
        let peer = self
            .peer
            .map_or_else(|| "-".to_owned(), |peer| peer.to_string());
        log::info!(
            target: TARGET,
            "{peer} \"{} {} {:?}\" {} {:.3}ms",
            self.method,
            self.uri,
            self.version,
            status.as_u16(),
            self.started.elapsed().as_secs_f64() * 1e3
        );
    }
}
