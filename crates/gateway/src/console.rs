//! The web console: static pages, scripts and styles compiled into the binary
//! (no build step, nothing fetched from elsewhere), served under `/console/`.
//! The pages call the same REST API as any app, with the signed-in user's token.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::App;
use crate::problem::Problem;

/// (name, content type, content).
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    (
        "wallet.html",
        "text/html; charset=utf-8",
        include_str!("../console/wallet.html"),
    ),
    (
        "analyst.html",
        "text/html; charset=utf-8",
        include_str!("../console/analyst.html"),
    ),
    (
        "dashboard.html",
        "text/html; charset=utf-8",
        include_str!("../console/dashboard.html"),
    ),
    (
        "audit.html",
        "text/html; charset=utf-8",
        include_str!("../console/audit.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../console/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/console.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/login.js"),
    ),
    (
        "wallet.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/wallet.js"),
    ),
    (
        "analyst.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/analyst.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/dashboard.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/audit.js"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, content)) => {
            let mut response = (*content).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => Problem::not_found("not_found", "No such page in the console.").into_response(),
    }
}

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(|| async { file("index.html") }))
        .route(
            "/console/{name}",
            get(
                |axum::extract::Path(name): axum::extract::Path<String>| async move { file(&name) },
            ),
        )
}
