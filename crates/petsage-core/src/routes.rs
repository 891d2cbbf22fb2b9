//! [`Route`] and [`Routes`]: each endpoint declared once, from its handler and
//! the `#[utoipa::path]` documentation on it. The served path and method and
//! the documented ones come from the same attribute, so they cannot differ.
//! Every GET also answers HEAD, and any method a path does not serve gets a
//! JSON 405 with `Allow`.
//!
//! A feature extends its own routes, and no one else's: [`Routes::wrap`] puts
//! a middleware of its choosing around each of them, and [`Route::require`]
//! attaches a [`Requirement`] that a platform crate both enforces and writes
//! into the route's OpenAPI operation, from the one value.

use std::rc::Rc;
use std::sync::Arc;

use actix_service::boxed::BoxService;
use actix_web::Route as ActixRoute;
use actix_web::body::MessageBody;
use actix_web::dev::{HttpServiceFactory, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{Method, StatusCode, header};
use actix_web::web::Data;
use actix_web::{Error, FromRequest, Handler, HttpRequest, Resource, Responder, guard, web};
use utoipa::openapi::path::{HttpMethod, Operation, Paths};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{Components, ComponentsBuilder, OpenApi, RefOr};

use crate::Problem;

/// Declares a [`Route`] from a handler that carries `#[utoipa::path]`:
/// `route!(routes::list)` serves `routes::list` at the path and methods its
/// documentation names.
#[macro_export]
macro_rules! route {
    ($handler:ident) => {
        $crate::__private::pastey::paste! {
            $crate::Route::documented::<[<__path_ $handler>], _, _>($handler)
        }
    };
    ($module:ident :: $($rest:tt)+) => {
        $crate::route!(@in [$module] $($rest)+)
    };
    (@in [$($prefix:ident)::+] $handler:ident) => {
        $crate::__private::pastey::paste! {
            $crate::Route::documented::<$($prefix::)+ [<__path_ $handler>], _, _>($($prefix::)+ $handler)
        }
    };
    (@in [$($prefix:ident)::+] $next:ident :: $($rest:tt)+) => {
        $crate::route!(@in [$($prefix)::+ :: $next] $($rest)+)
    };
}

type Mount = Box<dyn FnOnce() -> ActixRoute>;
type Attach = Box<dyn Fn(Resource) -> Resource>;
type Wrap = Rc<dyn Fn(ActixRoute) -> ActixRoute>;

/// Serves `handler` for `methods`: one actix route whose guard compares the
/// method. actix's own method guards also record every method they see in
/// the request's extensions, for a 405 we make ourselves, at a cost to every
/// request.
fn mount<F, Args>(methods: Vec<Method>, handler: F) -> Mount
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Box::new(move || {
        let serves = guard::fn_guard(move |ctx| methods.contains(&ctx.head().method));
        web::route().guard(serves).to(handler)
    })
}

/// What a route needs of a request before its handler runs (for example
/// scopes), defined by a platform crate. The one value is both enforced and
/// documented, so the two cannot differ.
pub trait Requirement: 'static {
    /// Writes the requirement into the route's OpenAPI operation (for example its `security`).
    fn document(&self, operation: &mut Operation);

    /// Adds what the operation's documentation refers to (for example a security scheme).
    fn document_components(&self, components: &mut Components) {
        let _ = components;
    }

    /// Puts the middleware that enforces the requirement around the route (see [`ActixRoute::wrap`]).
    fn enforce(&self, route: ActixRoute) -> ActixRoute;
}

/// `items` grouped by path, paths in order of first appearance.
fn by_path<T>(
    items: impl IntoIterator<Item = T>,
    path: impl Fn(&T) -> &str,
) -> Vec<(String, Vec<T>)> {
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for item in items {
        match groups.iter_mut().find(|(p, _)| p == path(&item)) {
            Some((_, group)) => group.push(item),
            None => groups.push((path(&item).to_owned(), vec![item])),
        }
    }
    groups
}

/// One handler at one path, with the OpenAPI operation that documents it.
pub struct Route {
    path: String,
    methods: Vec<Method>,
    doc_methods: Vec<HttpMethod>,
    /// Makes the route's operation and the schemas it refers to, when the document is built.
    document: Option<Document>,
    quiet: bool,
    /// Declared open to anyone ([`Route::public`]).
    public: bool,
    mount: Mount,
    requirements: Vec<Box<dyn Requirement>>,
}

/// What documents a route: run only when the OpenAPI document is built, not
/// each time a worker asks a feature for its routes.
type Document = fn() -> (Operation, Vec<(String, RefOr<Schema>)>);

/// The operation `P` documents, tagged, and the schemas it refers to.
fn document<P>() -> (Operation, Vec<(String, RefOr<Schema>)>)
where
    P: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>,
{
    let mut operation = P::operation();
    let tags: Vec<String> = P::tags().into_iter().map(str::to_owned).collect();
    if !tags.is_empty() {
        operation.tags = Some(tags);
    }
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    (operation, schemas)
}

impl Route {
    /// The route documented by `P` (the type `#[utoipa::path]` generates), served by `handler`.
    ///
    /// Prefer [`route!`], which names `P` for you.
    pub fn documented<P, F, Args>(handler: F) -> Self
    where
        P: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>,
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let doc_methods = P::methods();
        let mut methods: Vec<Method> = Vec::new();
        for method in &doc_methods {
            let method = to_actix(method);
            if method == Method::GET {
                methods.extend([Method::GET, Method::HEAD]);
            } else {
                methods.push(method);
            }
        }
        Self {
            path: P::path(),
            mount: mount(methods.clone(), handler),
            methods,
            doc_methods,
            document: Some(document::<P>),
            quiet: false,
            public: false,
            requirements: Vec::new(),
        }
    }

    /// A GET (and HEAD) route left out of the OpenAPI document: for the app's
    /// own plumbing (the document itself, redirects), never for a feature's API.
    pub fn undocumented<F, Args>(path: &str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let methods = vec![Method::GET, Method::HEAD];
        Self {
            path: path.to_owned(),
            mount: mount(methods.clone(), handler),
            methods,
            doc_methods: Vec::new(),
            document: None,
            quiet: false,
            public: true,
            requirements: Vec::new(),
        }
    }

    /// Marks the route as polled by machines (health checks): it stays out of the access log.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Declares the route open to anyone, by choice: a feature route either
    /// requires something of its caller ([`Route::require`]) or says this.
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }

    /// Requires `requirement` of every request to this route: enforced by
    /// its middleware, and written into the route's OpenAPI operation.
    pub fn require(mut self, requirement: impl Requirement) -> Self {
        self.requirements.push(Box::new(requirement));
        self
    }

    /// The actix route: the handler inside its requirements' middleware, then `wraps`.
    fn into_actix(self, wraps: &[Wrap]) -> ActixRoute {
        let route = self
            .requirements
            .iter()
            .fold((self.mount)(), |route, requirement| {
                requirement.enforce(route)
            });
        wraps.iter().fold(route, |route, wrap| wrap(route))
    }
}

/// What one path serves: its relative path, its methods and whether it is quiet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Path relative to the API prefix, in actix/OpenAPI template form (`/pets/{id}`).
    pub path: String,
    /// Methods answered, in declaration order (HEAD follows each GET).
    pub methods: Vec<Method>,
    /// Whether requests to it are left out of the access log.
    pub quiet: bool,
}

/// A feature's routes, the state its handlers read, and the middleware around them.
#[derive(Default)]
pub struct Routes {
    routes: Vec<Route>,
    data: Vec<Attach>,
    wraps: Vec<Wrap>,
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `route`; several routes may share a path with different methods.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Makes `data` readable by every handler of these routes (as `web::Data<T>`).
    pub fn data<T: 'static>(mut self, data: Data<T>) -> Self {
        self.data.push(Box::new(move |resource: Resource| {
            resource.app_data(data.clone())
        }));
        self
    }

    /// Puts `middleware` around each of these routes, and no others (a
    /// path's 405 answer included only where a route answers it). Called
    /// again, the new middleware goes around the earlier ones.
    pub fn wrap<M, B>(mut self, middleware: M) -> Self
    where
        M: Transform<
                BoxService<ServiceRequest, ServiceResponse, Error>,
                ServiceRequest,
                Response = ServiceResponse<B>,
                Error = Error,
                InitError = (),
            > + Clone
            + 'static,
        B: MessageBody + 'static,
    {
        self.wraps.push(Rc::new(move |route: ActixRoute| {
            route.wrap(middleware.clone())
        }));
        self
    }

    /// What each path serves, in declaration order.
    pub fn info(&self) -> Vec<RouteInfo> {
        by_path(&self.routes, |route| &route.path)
            .into_iter()
            .map(|(path, group)| RouteInfo {
                path,
                methods: group
                    .iter()
                    .flat_map(|r| r.methods.iter().cloned())
                    .collect(),
                quiet: group.iter().any(|r| r.quiet),
            })
            .collect()
    }

    /// The routes that neither require anything nor are declared public,
    /// as `METHOD /path`: a feature may serve none (it would be open by
    /// omission, not by choice).
    pub fn undeclared(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|route| !route.public && route.requirements.is_empty())
            .map(|route| {
                let methods: Vec<&str> = route.methods.iter().map(Method::as_str).collect();
                format!("{} {}", methods.join(","), route.path)
            })
            .collect()
    }

    /// The OpenAPI paths and the schemas their operations refer to.
    pub fn openapi(&self) -> OpenApi {
        let mut paths = Paths::new();
        let mut components = ComponentsBuilder::new();
        for route in &self.routes {
            let Some(document) = route.document else {
                continue;
            };
            let (mut operation, schemas) = document();
            for requirement in &route.requirements {
                requirement.document(&mut operation);
            }
            paths.add_path_operation(&route.path, route.doc_methods.clone(), operation);
            components = components.schemas_from_iter(schemas);
        }
        let mut components = components.build();
        for requirement in self.routes.iter().flat_map(|route| &route.requirements) {
            requirement.document_components(&mut components);
        }
        let mut doc = OpenApi::default();
        doc.paths = paths;
        doc.components = Some(components);
        doc
    }

    /// One actix resource per path, with the state attached and the 405 fallback.
    pub fn into_services(self) -> Vec<impl HttpServiceFactory + use<>> {
        self.into_services_under("")
    }

    /// [`Routes::into_services`] with each path under `prefix` (`/api/v1`):
    /// mounted on the app directly, a resource costs no scope lookup per request.
    pub fn into_services_under(self, prefix: &str) -> Vec<impl HttpServiceFactory + use<>> {
        let Self {
            routes,
            data,
            wraps,
        } = self;
        by_path(routes, |route| &route.path)
            .into_iter()
            .map(|(path, group)| {
                let methods: Vec<Method> = group
                    .iter()
                    .flat_map(|r| r.methods.iter().cloned())
                    .collect();
                let allow = allow_header(&methods);
                let template = format!("{prefix}{path}");
                let resource = data
                    .iter()
                    .fold(web::resource(template.as_str()), |resource, attach| {
                        attach(resource)
                    })
                    .app_data(RouteTemplate(Arc::from(template)));
                let resource = group.into_iter().fold(resource, |resource, route| {
                    resource.route(route.into_actix(&wraps))
                });
                resource.default_service(web::to(move |req: HttpRequest| {
                    let allow = allow.clone();
                    async move { method_not_allowed(&req, allow) }
                }))
            })
            .collect()
    }
}

/// The template of the path a resource serves (`/api/v1/pets/{id}`), in each
/// resource's app data: metrics and logs name a route by it, never by the
/// raw path, so random paths cannot grow their label sets.
#[derive(Debug, Clone)]
pub struct RouteTemplate(pub Arc<str>);

/// `GET, HEAD, POST`, each method once, in order.
fn allow_header(methods: &[Method]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for method in methods {
        if !seen.contains(&method.as_str()) {
            seen.push(method.as_str());
        }
    }
    seen.join(", ")
}

fn to_actix(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

/// The 405 problem for a method `req`'s path does not serve, with `Allow`.
pub(crate) fn method_not_allowed(req: &HttpRequest, allow: String) -> actix_web::HttpResponse {
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
    use std::collections::BTreeSet;

    struct Greeting(&'static str);

    /// Greets.
    #[utoipa::path(get, path = "/x", operation_id = "t_hello", tag = "T",
        responses((status = 200, description = "hello", body = String)))]
    async fn hello(greeting: Data<Greeting>) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .body(greeting.0)
    }

    /// Accepts.
    #[utoipa::path(post, path = "/x", operation_id = "t_accept",
        responses((status = 202, description = "accepted")))]
    async fn accept() -> HttpResponse {
        HttpResponse::Accepted().finish()
    }

    fn routes() -> Routes {
        Routes::new()
            .data(Data::new(Greeting("hello")))
            .route(crate::route!(hello).quiet())
            .route(crate::route!(accept))
    }

    #[actix_web::test]
    async fn serves_get_head_post_with_state_and_405_with_allow() {
        let app = routes()
            .into_services()
            .into_iter()
            .fold(App::new(), |app, service| app.service(service));
        let app = atest::init_service(app).await;

        let res = atest::call_service(&app, atest::TestRequest::get().uri("/x").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(atest::read_body(res).await, "hello");

        let head = atest::TestRequest::default()
            .method(Method::HEAD)
            .uri("/x")
            .to_request();
        assert_eq!(
            atest::call_service(&app, head).await.status(),
            StatusCode::OK
        );

        let post = atest::TestRequest::post().uri("/x").to_request();
        assert_eq!(
            atest::call_service(&app, post).await.status(),
            StatusCode::ACCEPTED
        );

        let res =
            atest::call_service(&app, atest::TestRequest::delete().uri("/x").to_request()).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            res.headers().get(header::ALLOW).map(|v| v.as_bytes()),
            Some(&b"GET, HEAD, POST"[..])
        );
        let problem: Problem = atest::read_body_json(res).await;
        assert_eq!(problem.status, 405);
    }

    #[test]
    fn served_and_documented_come_from_one_declaration() {
        let routes = routes();
        let info = routes.info();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].path, "/x");
        assert_eq!(
            info[0].methods,
            vec![Method::GET, Method::HEAD, Method::POST]
        );
        assert!(info[0].quiet);

        let doc = serde_json::to_value(routes.openapi()).expect("serializes");
        let item = &doc["paths"]["/x"];
        assert_eq!(item["get"]["operationId"], "t_hello");
        assert_eq!(item["get"]["tags"][0], "T");
        assert_eq!(item["post"]["operationId"], "t_accept");

        // Both directions, method by method: every served method is
        // documented (but HEAD, which every GET also serves) and every
        // documented one is served.
        let served: BTreeSet<(String, String)> = info
            .iter()
            .flat_map(|route| {
                route
                    .methods
                    .iter()
                    .filter(|method| **method != Method::HEAD)
                    .map(|method| (route.path.clone(), method.as_str().to_lowercase()))
            })
            .collect();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .expect("path item")
                    .keys()
                    .map(|method| (path.clone(), method.clone()))
            })
            .collect();
        assert_eq!(served, documented);
        for route in &info {
            let gets = route.methods.iter().filter(|m| **m == Method::GET).count();
            let heads = route.methods.iter().filter(|m| **m == Method::HEAD).count();
            assert_eq!(gets, heads, "{}: every GET also serves HEAD", route.path);
        }
    }

    /// Another feature's route, beside the one under test.
    #[utoipa::path(get, path = "/other", operation_id = "t_other",
        responses((status = 200, description = "other")))]
    async fn other() -> HttpResponse {
        HttpResponse::Ok().finish()
    }

    /// A requirement for the tests: the request must carry `x-key: open`.
    struct NeedsKey;

    impl Requirement for NeedsKey {
        fn document(&self, operation: &mut Operation) {
            operation.security.get_or_insert_with(Vec::new).push(
                utoipa::openapi::security::SecurityRequirement::new::<&str, [&str; 0], &str>(
                    "key",
                    [],
                ),
            );
        }

        fn enforce(&self, route: ActixRoute) -> ActixRoute {
            route.wrap(actix_web::middleware::from_fn(
                |req: ServiceRequest,
                 next: actix_web::middleware::Next<actix_web::body::BoxBody>| async move {
                    if req.headers().get("x-key").is_some_and(|v| v == "open") {
                        next.call(req).await
                    } else {
                        let problem = Problem::new(StatusCode::UNAUTHORIZED, "no key");
                        Ok(req.into_response(problem.to_response()))
                    }
                },
            ))
        }
    }

    #[actix_web::test]
    async fn a_feature_wraps_its_own_routes_and_no_others() {
        let wrapped = routes()
            .wrap(actix_web::middleware::DefaultHeaders::new().add(("x-feature", "greeter")));
        let others = Routes::new().route(crate::route!(other));
        let app = wrapped
            .into_services()
            .into_iter()
            .fold(App::new(), |app, service| app.service(service));
        let app = others
            .into_services()
            .into_iter()
            .fold(app, |app, service| app.service(service));
        let app = atest::init_service(app).await;

        for req in [atest::TestRequest::get(), atest::TestRequest::post()] {
            let res = atest::call_service(&app, req.uri("/x").to_request()).await;
            assert!(res.status().is_success());
            assert_eq!(
                res.headers().get("x-feature").map(|v| v.as_bytes()),
                Some(&b"greeter"[..])
            );
        }
        let res =
            atest::call_service(&app, atest::TestRequest::get().uri("/other").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers().get("x-feature").is_none(),
            "another feature's route is not wrapped"
        );
    }

    #[test]
    fn a_route_open_by_omission_is_named_and_one_declared_public_is_not() {
        let routes = Routes::new()
            .route(crate::route!(hello).require(NeedsKey))
            .route(crate::route!(accept));
        assert_eq!(routes.undeclared(), ["POST /x"]);
        let routes = Routes::new()
            .route(crate::route!(hello).require(NeedsKey))
            .route(crate::route!(accept).public());
        assert!(routes.undeclared().is_empty());
    }

    #[actix_web::test]
    async fn a_requirement_is_enforced_and_documented_from_one_value() {
        let routes = Routes::new()
            .data(Data::new(Greeting("hello")))
            .route(crate::route!(hello).require(NeedsKey))
            .route(crate::route!(accept));
        let doc = serde_json::to_value(routes.openapi()).expect("serializes");
        assert_eq!(
            doc["paths"]["/x"]["get"]["security"],
            serde_json::json!([{"key": []}])
        );
        assert!(doc["paths"]["/x"]["post"].get("security").is_none());

        let app = routes
            .into_services()
            .into_iter()
            .fold(App::new(), |app, service| app.service(service));
        let app = atest::init_service(app).await;
        let res = atest::call_service(&app, atest::TestRequest::get().uri("/x").to_request()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let res = atest::call_service(
            &app,
            atest::TestRequest::get()
                .uri("/x")
                .insert_header(("x-key", "open"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(atest::read_body(res).await, "hello");
        let res =
            atest::call_service(&app, atest::TestRequest::post().uri("/x").to_request()).await;
        assert_eq!(
            res.status(),
            StatusCode::ACCEPTED,
            "the POST route requires nothing"
        );
    }
}
