//! What the daemon serves: its two front-ends over HTTP, the JSON API and the console,
//! which do not know each other, and the webhooks' door.

use std::sync::Arc;

use axum::routing::post;
use axum::Router;
use runtime::daemon::Shared;

/// Every route the daemon answers.
pub fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(crate::api::router(Arc::clone(&shared)))
        // Webhooks carry their own secret; each flow sets its own size limit.
        .route("/hooks/{name}", post(runtime::daemon::hooks::receive))
        .merge(crate::console::router(Arc::clone(&shared)))
        .with_state(shared)
}
