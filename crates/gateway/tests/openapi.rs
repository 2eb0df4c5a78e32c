//! The OpenAPI document and the router stay in step: every documented operation is
//! routed (it answers something other than "no such address" or "no such method"),
//! every routed API path is documented, and every operation documents its errors
//! as problem+json.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use corebank_gateway::{App, GatewayConfig, api, router};
use tower::ServiceExt as _;

async fn app(dir: &std::path::Path) -> Arc<App> {
    // A registry that is not there: the routing, not the backends, is under test.
    let config = GatewayConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        vec!["127.0.0.1:9".into()],
        dir,
    );
    let registry = corebank_registry::RegistryClient::new(
        corebank_registry::RegistryClientConfig::new(config.registry.clone()),
    )
    .unwrap();
    let backend = corebank_gateway::backend::Backend::new(registry, config.backend.clone());
    let keys = corebank_gateway::tokens::TokenKeys::from_secret(&[1; 32]);
    let (audit, _) = corebank_audit::AuditTrail::start(
        &dir.join("audit"),
        corebank_audit::AuditTrailConfig::default(),
    )
    .unwrap();
    let hub = Arc::new(corebank_gateway::hub::Hub::new());
    Arc::new(App::new(config, backend, keys, audit, hub))
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{number}", "XC68CORE00010000001000")
        .replace("{transfer_id}", "1")
        .replace("{name}", "throughput.svg")
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_every_route_documented() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let service = router(app);
    let json: serde_json::Value = serde_json::from_str(&corebank_gateway::openapi_json()).unwrap();
    let paths = json["paths"].as_object().unwrap();
    assert!(paths.len() >= 40, "only {} paths documented", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let mut request = Request::builder()
                .method(method.clone())
                .uri(concrete(path));
            if method == Method::POST {
                request = request.header("content-type", "application/json");
            }
            let response = service
                .clone()
                .oneshot(
                    request
                        .body(Body::from(if method == Method::POST { "{}" } else { "" }))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&body);
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            assert!(
                !(status == StatusCode::NOT_FOUND && text.contains("\"code\":\"not_found\"")),
                "{method} {path} is documented but not routed"
            );
            if path.starts_with("/api/") {
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.contains_key("4XX"),
                    "{method} {path} does not document its errors"
                );
                let public = [
                    "/api/v1/auth/login",
                    "/api/v1/auth/mfa",
                    "/api/v1/auth/refresh",
                ]
                .contains(&path.as_str());
                assert_eq!(
                    operation["security"].is_array(),
                    !public,
                    "{method} {path}: security documented for exactly the endpoints that need a credential"
                );
            }
            operations += 1;
        }
    }
    assert!(operations >= 45, "{operations} operations");

    // The other way round: the routes under /api/v1 that the router knows are in
    // the document (a route added without #[utoipa::path] would be missing).
    let (_, _, doc) = api();
    let documented: Vec<&String> = doc.paths.paths.keys().collect();
    for expected in [
        "/api/v1/auth/login",
        "/api/v1/transfers",
        "/api/v1/streams/accounts",
        "/api/v1/risk/held/{transfer_id}/review",
        "/api/v1/audit/verify",
    ] {
        assert!(
            documented.iter().any(|p| p.as_str() == expected),
            "{expected} missing"
        );
    }
}

#[tokio::test]
async fn unknown_addresses_and_methods_answer_problem_json_with_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let service = router(app(dir.path()).await);
    let response = service
        .clone()
        .oneshot(
            Request::get("/api/v1/nothing-here")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert!(response.headers().contains_key("x-request-id"));
    let response = service
        .clone()
        .oneshot(
            Request::delete("/api/v1/auth/login")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    // No credential: 401 with a stable code, before any backend is asked.
    let response = service
        .clone()
        .oneshot(Request::get("/api/v1/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "unauthenticated");
    // A forged token: refused.
    let response = service
        .clone()
        .oneshot(
            Request::get("/api/v1/me")
                .header("authorization", "Bearer abc.def.ghi")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Too large a body: refused before any parsing.
    let big = "x".repeat(100 * 1024);
    let response = service
        .clone()
        .oneshot(
            Request::post("/api/v1/auth/login")
                .header("content-type", "application/json")
                .body(Body::from(big))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // CORS: an origin not configured gets no permission.
    let response = service
        .clone()
        .oneshot(
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/api/v1/me")
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    // The console is served without any build step.
    for name in ["/console/", "/console/console.js", "/console/console.css"] {
        let response = service
            .clone()
            .oneshot(Request::get(name).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
    }
}
