//! [`CloseWhileDraining`]: a request that starts while the instance drains is
//! answered normally, with `Connection: close`, so keep-alive clients move to
//! another instance before this one stops listening.

use actix_web::dev::ServiceRequest;
use actix_web::http::ConnectionType;
use actix_web::web::Data;
use petsage_core::HealthMonitor;

use super::{Layer, Response, Step};

/// Closes the connection of requests that start while the instance drains.
#[derive(Clone)]
pub(crate) struct CloseWhileDraining {
    /// Tells whether the instance drains.
    pub(crate) monitor: Data<HealthMonitor>,
}

impl Layer for CloseWhileDraining {
    /// Whether the instance drained when the request started.
    type Carry = bool;

    fn before(&self, _req: &mut ServiceRequest) -> Step<bool> {
        Step::Next(self.monitor.is_draining())
    }

    fn after(draining: bool, mut res: Response) -> Response {
        if draining {
            res.response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use actix_web::HttpResponse;
    use std::time::Duration;

    use actix_web::http::StatusCode;
    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, web};
    use petsage_core::{MonitorSettings, Phase};

    use super::*;
    use crate::layers::Layered;

    async fn connection_after(phase: Phase) -> (StatusCode, ConnectionType) {
        let monitor = Data::new(HealthMonitor::new(
            Vec::new(),
            MonitorSettings {
                check_timeout: Duration::from_millis(500),
                interval: Duration::from_secs(5),
                failure_threshold: 1,
                success_threshold: 1,
            },
        ));
        monitor.set_phase(phase);
        let app = atest::init_service(
            App::new()
                .wrap(Layered(CloseWhileDraining { monitor }))
                .route("/", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let res = atest::call_service(&app, TestRequest::get().to_request()).await;
        (res.status(), res.response().head().connection_type())
    }

    #[actix_web::test]
    async fn requests_that_start_while_draining_close_their_connection() {
        assert_eq!(
            connection_after(Phase::Serving).await,
            (StatusCode::OK, ConnectionType::KeepAlive)
        );
        assert_eq!(
            connection_after(Phase::Draining).await,
            (StatusCode::OK, ConnectionType::Close)
        );
    }
}
