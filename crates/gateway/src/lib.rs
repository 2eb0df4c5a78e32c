//! # corebank-gateway
//!
//! The bank's front door (`corebank gateway`, port 8443): a REST/JSON API over the
//! branches, the registry and the risk screen, with sign-in of customers and staff,
//! live streams and the web console. `docs/gateway.md` is its manual; the OpenAPI
//! document is served at `/openapi.json`, generated from the handlers themselves
//! (`utoipa`), so that the two cannot drift apart.
//!
//! - Identity lives in the registry's replicated state (`corebank-identity`):
//!   users with argon2id password hashes, TOTP second factors, sessions whose
//!   refresh tokens rotate (a reused one revokes its family), API keys. The
//!   gateway keeps none of it; it signs short-lived JWT access tokens ([`tokens`])
//!   and checks that their session is still live.
//! - Every request is authorised by [`auth`] (roles and key scopes) and by
//!   ownership (a customer sees and moves only their own money); every grant and
//!   denial is written to the hash-chained audit trail (`corebank-audit`).
//! - [`protect`]: rate limits per client, per debited account and per address for
//!   sign-in (`429` + `Retry-After`), body size and time limits, security
//!   headers, CORS only for configured origins; TLS 1.3 via rustls.
//! - [`hub`]: follows every branch's committed events and risk journal for the
//!   SSE streams (resumable with `Last-Event-ID`) and the dashboard's figures;
//!   [`agent_feed`] adds the risk agent's mule rings to the analysts' alerts.
//! - The web console (static pages under `/console/`, no build step) and the
//!   dashboard's charts, drawn on the server as SVG ([`charts`]).

pub mod agent_feed;
pub mod app;
pub mod auth;
pub mod backend;
pub mod charts;
pub mod config;
mod console;
pub mod extract;
pub mod hub;
pub mod identity;
pub mod metrics;
pub mod problem;
pub mod protect;
mod routes;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use corebank_audit::{AuditTrail, AuditTrailConfig};
use corebank_registry::{RegistryClient, RegistryClientConfig};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use app::App;
pub use config::{ConfigError, GATEWAY_LISTEN_DEFAULT, GatewayConfig, RateLimits, TokenLifetimes};
pub use problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "corebank gateway",
        description = "The REST API of corebank: accounts, payments, holds, the fraud queue, operations and audit. Amounts are decimal strings with their currency; errors are RFC 9457 problem+json with a stable `code`. See docs/gateway.md.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Sign-in, second factor, sessions"),
        (name = "users", description = "People and API keys"),
        (name = "accounts", description = "Accounts, balances, statements"),
        (name = "payments", description = "Transfers, deposits, withdrawals"),
        (name = "holds", description = "Reservations (card authorisations)"),
        (name = "risk", description = "The fraud analyst's queue"),
        (name = "streams", description = "Live streams: Server-Sent Events, and the same over a WebSocket"),
        (name = "operations", description = "Dashboard, metrics, health"),
        (name = "audit", description = "The audit trail (read-only)")
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "A service's API key (`cbk_<id>_<secret>`); also accepted as `Authorization: ApiKey <key>`.",
            ))),
        );
    }
}

/// The whole API: routes and their OpenAPI document, from the same registrations.
/// Streams are returned apart: the request time limit must not cut them.
pub fn api() -> (Router<Arc<App>>, Router<Arc<App>>, utoipa::openapi::OpenApi) {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::router())
        .merge(routes::users::router())
        .merge(routes::banking::router())
        .merge(routes::risk::router())
        .merge(routes::ops::router())
        .split_for_parts();
    let (streams, streams_doc) = routes::streams::router().split_for_parts();
    doc.merge(streams_doc);
    (api, streams, doc)
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn openapi_json() -> String {
    let (_, _, mut doc) = api();
    add_openapi_path(&mut doc);
    doc.to_pretty_json().unwrap_or_default()
}

fn add_openapi_path(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    use utoipa::openapi::response::ResponseBuilder;
    let operation = OperationBuilder::new()
        .summary(Some("This document"))
        .tag("operations")
        .response(
            "200",
            ResponseBuilder::new()
                .description("The OpenAPI 3 document")
                .build(),
        )
        .build();
    doc.paths.paths.insert(
        "/openapi.json".to_owned(),
        PathItem::new(HttpMethod::Get, operation),
    );
}

async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            "The request took too long; if it moved money, retry with the same Idempotency-Key.",
        )
        .with_retry_after(1)
        .into_response(),
    }
}

async fn observe(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(tokens::random_hex::<8>);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert("x-request-id", value);
    }
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    app.metrics.request_started();
    let mut response = next.run(request).await;
    app.metrics
        .request_finished(&method, &route, response.status().as_u16());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn not_found() -> Problem {
    Problem::not_found(
        "not_found",
        "There is nothing at this address; see /openapi.json.",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This address does not take this method.",
    )
}

/// The complete service: API, streams, console, document, protections.
pub fn router(app: Arc<App>) -> Router {
    let (api, streams, mut doc) = api();
    add_openapi_path(&mut doc);
    let document = Arc::new(doc.to_pretty_json().unwrap_or_default());
    let timeout = app.config.request_timeout;
    let body_max = app.config.body_bytes_max;
    let tls = app.config.tls();
    let api = api.layer(middleware::from_fn_with_state(timeout, deadline));
    Router::new()
        .merge(api)
        .merge(streams)
        .merge(console::router())
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        document.as_ref().clone(),
                    )
                }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_max))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_max))
        .layer(protect::cors(&app.config.cors_origins))
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .layer(middleware::from_fn(move |request, next| {
            protect::security_headers(tls, request, next)
        }))
        .with_state(app)
}

/// Creates a user unless one has the name already (first start of a bank, demo
/// users); true when created.
pub async fn bootstrap_user(
    app: &App,
    username: &str,
    password: &str,
    role: corebank_identity::Role,
    display_name: &str,
) -> Result<bool, Problem> {
    let username = username.trim().to_ascii_lowercase();
    if identity::user_by_name(&app.backend.registry, &username)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let home_branch = app
        .backend
        .branches()
        .await
        .ok()
        .and_then(|branches| branches.first().map(|b| b.code.get()))
        .unwrap_or(1);
    let password_hash = routes::auth::hash_password(password.to_owned()).await?;
    app.identity_execute(corebank_identity::IdentityCommand::CreateUser {
        username,
        display_name: display_name.to_owned(),
        role,
        password_hash,
        home_branch,
        at_ms: app::now_ms(),
    })
    .await?;
    Ok(true)
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    KeyFile(#[from] tokens::KeyFileError),
    #[error("the audit trail cannot start: {0}")]
    Audit(#[from] corebank_audit::AuditError),
    #[error("TLS: {0}")]
    Tls(#[from] corebank_security::TlsError),
    #[error("the registry client cannot be made: {0}")]
    Registry(#[from] corebank_client::ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running gateway.
#[derive(Debug)]
pub struct RunningGateway {
    addr: SocketAddr,
    tls: bool,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    follower: JoinHandle<()>,
    agent_follower: Option<JoinHandle<()>>,
    housekeeping: JoinHandle<()>,
}

impl RunningGateway {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http(s)://addr`.
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stops accepting, then flushes the audit trail.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.follower.abort();
        if let Some(agent) = &self.agent_follower {
            agent.abort();
        }
        self.housekeeping.abort();
        let _ = self.server.await;
        self.app.audit.shutdown().await;
    }
}

/// Starts a gateway.
pub async fn start(config: GatewayConfig) -> Result<RunningGateway, StartError> {
    config.validate()?;
    let registry = RegistryClient::new(
        RegistryClientConfig::new(config.registry.clone()).with_connection(config.backend.clone()),
    )?;
    let backend = backend::Backend::new(registry, config.backend.clone());
    let key_file = config
        .jwt_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("jwt.key"));
    let keys = tokens::TokenKeys::load_or_create(&key_file)?;
    let (audit, _writer) =
        AuditTrail::start(&config.data_dir.join("audit"), AuditTrailConfig::default())?;
    let tls_config = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let mut server = corebank_security::tls::server_config_from_files(cert, key, None)?;
            server.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(server))
        }
        _ => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let hub = Arc::new(hub::Hub::new());
    let follower = tokio::spawn(hub::follow_all(hub.clone(), backend.clone()));
    let agent_follower = match &config.agent {
        Some(address) => {
            let agent = agent_feed::agent_uri(address).map_err(|_| {
                StartError::Config(config::ConfigError::AgentAddress(address.clone()))
            })?;
            Some(tokio::spawn(agent_feed::follow_agent(agent, hub.clone())))
        }
        None => None,
    };
    let app = Arc::new(App::new(config, backend, keys, audit, hub));
    let housekeeping = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                app.limiters.housekeeping();
            }
        })
    };
    let (stop, stopped) = watch::channel(false);
    let service = router(app.clone());
    let server = tokio::spawn(serve(
        listener,
        service,
        tls_config.map(tokio_rustls::TlsAcceptor::from),
        stopped,
    ));
    tracing::info!(%addr, tls = app.config.tls(), "gateway listening");
    Ok(RunningGateway {
        addr,
        tls: app.config.tls(),
        app,
        stop,
        server,
        follower,
        agent_follower,
        housekeeping,
    })
}

/// Connections at once; more wait in the accept queue.
const CONNECTIONS_MAX: usize = 4096;

async fn serve(
    listener: TcpListener,
    service: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let tls = tls.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let hyper_service = TowerToHyperService::new(service);
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await
                    else {
                        return;
                    };
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), hyper_service)
                        .with_upgrades();
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = &mut connection => {}
                        _ = stopped.changed() => connection.as_mut().graceful_shutdown(),
                    }
                }
                None => {
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), hyper_service)
                        .with_upgrades();
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = &mut connection => {}
                        _ = stopped.changed() => connection.as_mut().graceful_shutdown(),
                    }
                }
            }
        });
    }
}
