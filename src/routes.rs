//! What the daemon serves: its two front-ends over HTTP, the JSON API and the console,
//! which do not know each other, each only to a request that names the daemon by a name
//! it answers to; and the webhooks' door, to any name (a service's request carries its
//! own secret).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use runtime::daemon::Shared;

/// Every route the daemon answers.
pub fn routes(shared: Arc<Shared>) -> Router {
    let front_ends = Router::new()
        .merge(crate::api::router(Arc::clone(&shared)))
        .merge(crate::console::router(Arc::clone(&shared)))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            known_host,
        ));
    Router::new()
        .merge(front_ends)
        // Webhooks carry their own secret; each flow sets its own size limit.
        .route("/hooks/{name}", post(runtime::daemon::hooks::receive))
        .fallback(not_found)
        .with_state(shared)
}

/// A path nothing serves: the API's JSON answer under `/api/`, else the console's page.
async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        crate::api::not_found().await
    } else {
        crate::console::not_found().await
    }
}

/// A request naming the daemon by a name it does not answer to (a page on a name that
/// rebinds to this machine) is refused before any front-end sees it.
async fn known_host(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"));
    if shared.hosts.allow(host) {
        return next.run(request).await;
    }
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(serde_json::json!({
            "error": "this daemon does not answer to that name: reach it by its address or localhost, or start it with --allow-host NAME"
        })),
    )
        .into_response()
}
