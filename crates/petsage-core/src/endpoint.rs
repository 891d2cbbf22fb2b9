//! [`Endpoint`]: one path with its method handlers, HEAD for every GET, and a
//! JSON 405 with `Allow` for every other method.

use actix_web::dev::HttpServiceFactory;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{FromRequest, Handler, HttpRequest, Responder, Route, web};

use crate::Problem;

/// One path and the methods it answers, ready to be mounted by the app.
///
/// Every GET handler also answers HEAD (actix's `web::get()` alone gives HEAD
/// a 404), and any other method gets a 405 problem with an `Allow` header.
pub struct Endpoint {
    path: &'static str,
    routes: Vec<Route>,
    methods: Vec<Method>,
    quiet: bool,
}

/// What an endpoint serves: its relative path, its methods and whether it is quiet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Path relative to the API prefix, in actix/OpenAPI template form (`/pets/{id}`).
    pub path: &'static str,
    /// Methods answered, in registration order (HEAD follows each GET).
    pub methods: Vec<Method>,
    /// Whether requests to it are left out of the access log.
    pub quiet: bool,
}

impl Endpoint {
    /// An endpoint at `path` (relative to the API prefix) with no methods yet.
    pub fn new(path: &'static str) -> Self {
        Self {
            path,
            routes: Vec::new(),
            methods: Vec::new(),
            quiet: false,
        }
    }

    /// Answers GET, and HEAD with the same headers and no body, with `handler`.
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::GET, handler.clone())
            .method(Method::HEAD, handler)
    }

    /// Answers POST with `handler`.
    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::POST, handler)
    }

    /// Answers `method` with `handler`.
    pub fn method<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes.push(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    /// Marks the endpoint as polled by machines (health checks): it stays out of the access log.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// What this endpoint serves, for logging set-up and the drift test.
    pub fn info(&self) -> RouteInfo {
        RouteInfo {
            path: self.path,
            methods: self.methods.clone(),
            quiet: self.quiet,
        }
    }

    /// The actix resource for this endpoint, with the 405 fallback attached.
    pub fn into_service(self) -> impl HttpServiceFactory {
        let allow = self
            .methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let resource = self
            .routes
            .into_iter()
            .fold(web::resource(self.path), |resource, route| {
                resource.route(route)
            });
        resource.default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move { method_not_allowed(&req, allow) }
        }))
    }
}

fn method_not_allowed(req: &HttpRequest, allow: String) -> actix_web::HttpResponse {
    let detail = format!(
        "{} is not allowed on {}; allowed: {allow}",
        req.method(),
        req.path()
    );
    let mut res = Problem::new(StatusCode::METHOD_NOT_ALLOWED, detail).to_response();
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test as atest;
    use actix_web::{App, HttpResponse};

    async fn hello() -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .body("hello")
    }

    #[actix_web::test]
    async fn get_endpoint_answers_head_and_405_with_allow() {
        let app =
            atest::init_service(App::new().service(Endpoint::new("/x").get(hello).into_service()))
                .await;

        let res = atest::call_service(&app, atest::TestRequest::get().uri("/x").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(atest::read_body(res).await, "hello");

        let res = atest::call_service(
            &app,
            atest::TestRequest::default()
                .method(Method::HEAD)
                .uri("/x")
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);

        let res =
            atest::call_service(&app, atest::TestRequest::delete().uri("/x").to_request()).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            res.headers().get(header::ALLOW).map(|v| v.as_bytes()),
            Some(&b"GET, HEAD"[..])
        );
        let problem: Problem = atest::read_body_json(res).await;
        assert_eq!(problem.status, 405);
    }

    #[test]
    fn info_lists_head_after_get() {
        let info = Endpoint::new("/x").get(hello).quiet().info();
        assert_eq!(info.methods, vec![Method::GET, Method::HEAD]);
        assert!(info.quiet);
    }
}
