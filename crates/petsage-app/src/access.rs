//! The access log: one line per request, written by the app's guard layer
//! as the response leaves it, except for the quiet routes (health polls).
//! Lines go to the `petsage::access` log target, so `RUST_LOG` can turn
//! them off on their own (`info,petsage::access=warn`).

use std::net::SocketAddr;
use std::time::Instant;

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode, Uri, Version};
use log::Level;
use petsage_core::RequestId;

/// The log target of access lines.
pub(crate) const TARGET: &str = "petsage::access";

/// What a request's access line needs, taken before the handler runs.
pub(crate) struct AccessLine {
    started: Instant,
    peer: Option<SocketAddr>,
    method: Method,
    uri: Uri,
    version: Version,
    id: RequestId,
}

impl AccessLine {
    /// Starts timing `req`, unless its path is quiet or access lines are off.
    pub(crate) fn start(
        req: &ServiceRequest,
        quiet_paths: &[String],
        id: &RequestId,
    ) -> Option<Self> {
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
            id: id.clone(),
        })
    }

    /// `127.0.0.1:5000 "GET /api/v1/pets/1 HTTP/1.1" 200 0.412ms 0193…`, with
    /// the same facts as key-values for the JSON log; `route` is the matched
    /// route template (`unmatched` when none).
    pub(crate) fn finish(self, status: StatusCode, route: Option<&str>) {
        let peer = self
            .peer
            .map_or_else(|| "-".to_owned(), |peer| peer.to_string());
        let duration_ms = (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        log::info!(
            target: TARGET,
            request_id = self.id.as_str(),
            method = self.method.as_str(),
            route = route.unwrap_or("unmatched"),
            status = status.as_u16(),
            duration_ms = duration_ms,
            peer = peer.as_str();
            "{peer} \"{} {} {:?}\" {} {duration_ms:.3}ms {}",
            self.method,
            self.uri,
            self.version,
            status.as_u16(),
            self.id,
        );
    }
}
