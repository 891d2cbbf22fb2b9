//! Graceful drain on SIGTERM/SIGINT: readiness (only) turns 503 at once and
//! background services (the job worker) are told to stop; the server
//! keeps serving for the shutdown delay, then stops accepting and lets
//! in-flight requests finish. A second signal stops at once.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::rt::signal::unix::{Signal, SignalKind, signal};
use actix_web::rt::time::sleep;
use futures_util::future::{Either, select};
use log::{info, warn};
use petsage_core::{Background, HealthMonitor, Phase};

/// SIGTERM and SIGINT, caught from the moment this is created.
pub(crate) struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers now, so a signal sent right after start-up is not lost.
    ///
    /// Must be called inside the actix system.
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// Waits for SIGTERM or SIGINT, then drains and stops `server`.
pub(crate) async fn on_signal(
    signals: Signals,
    server: ServerHandle,
    monitor: Arc<HealthMonitor>,
    background: Arc<Background>,
    delay: Duration,
    timeout: Duration,
) {
    let Signals { mut term, mut int } = signals;
    let name = next_signal(&mut term, &mut int).await;
    monitor.set_phase(Phase::Draining);
    background.stop();
    info!(
        "{name} received: draining; readiness now answers 503, health and liveness are unchanged; serving {} ms more",
        delay.as_millis()
    );

    if let Either::Right((name, _)) =
        select(pin!(sleep(delay)), pin!(next_signal(&mut term, &mut int))).await
    {
        return stop_now(&server, name).await;
    }

    info!(
        "shutdown delay over: no longer accepting; finishing in-flight requests (up to {} s)",
        timeout.as_secs_f64().ceil()
    );
    if let Either::Right((name, _)) = select(
        pin!(server.stop(true)),
        pin!(next_signal(&mut term, &mut int)),
    )
    .await
    {
        stop_now(&server, name).await;
    }
}

async fn stop_now(server: &ServerHandle, name: &str) {
    warn!("second signal ({name}): stopping now, without waiting for in-flight requests");
    server.stop(false).await;
}

/// The name of whichever of SIGTERM and SIGINT comes next.
async fn next_signal(term: &mut Signal, int: &mut Signal) -> &'static str {
    match select(pin!(term.recv()), pin!(int.recv())).await {
        Either::Left(_) => "SIGTERM",
        Either::Right(_) => "SIGINT",
    }
}
