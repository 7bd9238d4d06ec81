//! The daemon's HTTP surface: `/api/flows` (status), `/api/flows/{name}/run`
//! (force-run, answering with the run's report), `/api/flows/{name}/runs` (history),
//! `/healthz` and `/metrics`. A configured token guards `/api`.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scheduler::{Command, Reason};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::Shared;

pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/api/flows", get(flows))
        .route("/api/flows/{name}/run", post(run))
        .route("/api/flows/{name}/replay", post(replay))
        .route("/api/flows/{name}/runs", get(runs))
        .route("/api/flows/{name}/runs/{id}", get(run_rows))
        .route("/api/flows/{name}/handled", post(handled))
        .route("/api/flows/{name}/resume", post(resume))
        .route("/api/prune", post(prune))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), guard));
    Router::new()
        .merge(api)
        // Webhooks carry their own secret; each flow sets its own size limit.
        .route("/hooks/{name}", post(super::hooks::receive))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(crate::console::router(Arc::clone(&shared)))
        .with_state(shared)
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn guard(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    // A page elsewhere must not drive the API through a browser on this machine.
    if request.method() != axum::http::Method::GET && crate::console::session::cross_site(&headers)
    {
        return problem(
            StatusCode::FORBIDDEN,
            "the request came from another site (its Origin or Sec-Fetch-Site says so)",
        );
    }
    if let Some(token) = &shared.token {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let right = given
            .is_some_and(|g| connectors::webhook::constant_time_eq(g.as_bytes(), token.as_bytes()));
        if !right {
            return problem(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send `Authorization: Bearer <token>`",
            );
        }
    }
    next.run(request).await
}

async fn flows(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let status = shared.status.read().map(|s| s.clone()).unwrap_or_default();
    let errors = shared.errors.read().map(|e| e.clone()).unwrap_or_default();
    let project = match shared.project.read() {
        Ok(p) => p.flows.clone(),
        Err(_) => Default::default(),
    };
    let scrubber = shared.scrubber();
    let mut names: Vec<&String> = project.keys().chain(errors.keys()).collect();
    names.sort();
    names.dedup();
    let list: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let flow = project.get(name);
            let s = status.get(name).cloned().unwrap_or_default();
            let last_run = shared
                .store
                .flow(name)
                .ok()
                .and_then(|f| f.runs(1).ok())
                .and_then(|mut r| r.pop())
                .map(|mut r| {
                    scrubber.summary(&mut r);
                    r
                });
            let paused = shared
                .store
                .flow(name)
                .ok()
                .and_then(|f| engine::pause::paused(&*f).ok().flatten());
            json!({
                "name": name,
                "file": flow.map(|f| f.file.display().to_string()),
                "enabled": flow.map(|f| f.enabled),
                "paused": paused,
                "schedule": flow.map(crate::report::when_it_runs).or(s.schedule),
                "timezone": flow.map(|f| f.timezone.name()),
                "next_run": match (s.next_run, flow) {
                    (Some(at), Some(flow)) => Some(crate::report::local_time(at, &flow.timezone)),
                    (at, _) => at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                },
                "running": s.running,
                "priority": flow.map(|f| f.priority.name()),
                "waiting_since": s.waiting_since,
                "last_run": last_run,
                "last_lag_ms": s.last_lag_ms,
                "error": errors
                    .get(name)
                    .map(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .or_else(|| s.error.clone().map(|e| vec![e])),
            })
        })
        .collect();
    Json(json!({"flows": list}))
}

#[derive(Deserialize)]
struct ReplayQuery {
    run: Option<u64>,
    #[serde(default)]
    uncertain: bool,
}

async fn replay(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Response {
    // Each request has its own filter, so two replays at once resend what each asked.
    let id = shared.replays.add(engine::ReplayFilter {
        run: q.run,
        only_uncertain: q.uncertain,
    });
    let response = start(&shared, name, Reason::Replay(id)).await;
    shared.replays.take(id);
    response
}

async fn run(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    start(&shared, name, Reason::Manual).await
}

/// Ask the timer for a run now and answer with its report when it ends.
async fn start(shared: &Shared, name: String, reason: Reason) -> Response {
    let known = shared
        .project
        .read()
        .map(|p| p.flows.contains_key(&name))
        .unwrap_or(false);
    if !known {
        let invalid = shared
            .errors
            .read()
            .ok()
            .and_then(|e| e.get(&name).cloned());
        return match invalid {
            Some(problems) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": format!("flow `{name}` is invalid"), "problems": problems})),
            )
                .into_response(),
            None => problem(StatusCode::NOT_FOUND, format!("no flow named `{name}`")),
        };
    }
    let (reply, outcome) = oneshot::channel();
    if shared
        .timer
        .send(Command::RunNow {
            name,
            reason,
            reply: Some(reply),
        })
        .is_err()
    {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
    }
    match outcome.await {
        Ok(outcome) => Json(outcome.report).into_response(),
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping; the run did not start (a run already under way finishes and is in the history)",
        ),
    }
}

#[derive(Deserialize)]
struct RunsQuery {
    #[serde(default = "twenty")]
    limit: usize,
}

fn twenty() -> usize {
    20
}

async fn runs(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Response {
    if let Some(response) = unknown_flow(&shared, &name) {
        return response;
    }
    match shared.store.flow(&name).and_then(|f| f.runs(q.limit)) {
        Ok(mut runs) => {
            let scrubber = shared.scrubber();
            runs.iter_mut().for_each(|r| scrubber.summary(r));
            Json(json!({"runs": runs})).into_response()
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn run_rows(
    State(shared): State<Arc<Shared>>,
    Path((name, id)): Path<(String, u64)>,
) -> Response {
    if let Some(response) = unknown_flow(&shared, &name) {
        return response;
    }
    let found = shared
        .store
        .flow(&name)
        .and_then(|f| Ok((f.run(id)?, f.rows(id)?)));
    match found {
        Ok((Some(mut run), mut rows)) => {
            let scrubber = shared.scrubber();
            scrubber.summary(&mut run);
            rows.iter_mut().for_each(|r| scrubber.outcome(r));
            Json(json!({"run": run, "rows": rows})).into_response()
        }
        Ok((None, _)) => problem(
            StatusCode::NOT_FOUND,
            format!("flow `{name}` has no run {id}"),
        ),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Resume a paused flow: `{"resumed": {reason, at}}` (or `null` when it was not
/// paused). A push flow's events that waited meanwhile are sent now.
async fn resume(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    if let Some(response) = unknown_flow(&shared, &name) {
        return response;
    }
    let resumed = match shared
        .store
        .flow(&name)
        .and_then(|state| engine::pause::resume(&*state))
    {
        Ok(resumed) => resumed,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if resumed.is_some() {
        tracing::info!(flow = %name, "the flow is resumed");
        super::drain_queues(&shared);
    }
    Json(json!({"resumed": resumed})).into_response()
}

#[derive(Deserialize)]
struct PruneQuery {
    flow: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// Prune now what each flow's `history:` rule does not keep (or, `dry_run`, count it):
/// `{"pruned": [{flow, keeps, runs, records, keys}]}`.
async fn prune(State(shared): State<Arc<Shared>>, Query(q): Query<PruneQuery>) -> Response {
    if let Some(response) = q.flow.as_deref().and_then(|f| unknown_flow(&shared, f)) {
        return response;
    }
    // The plan under the lock; the pruning without it (a reload may come meanwhile).
    let plan = match shared.project.read() {
        Ok(project) => crate::prune::plan(&project, q.flow.as_deref()),
        Err(_) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the flows are being reloaded",
            )
        }
    };
    let store = Arc::clone(&shared.store);
    let pruned = tokio::task::spawn_blocking(move || {
        crate::prune::prune_planned(plan, &*store, q.dry_run, chrono::Utc::now())
    })
    .await;
    match pruned {
        Ok(pruned) => Json(json!({"pruned": pruned})).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A record as `switchboard test` asks about it: its key and the digest of its fields.
#[derive(Deserialize)]
struct Asked {
    key: String,
    digest: String,
}

/// Which of these records a run would not send again (handled before and, for a failed
/// one, unchanged since): `{"handled": {key: run}}`. `switchboard test` asks this while
/// the daemon holds the state.
async fn handled(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Json(asked): Json<Vec<Asked>>,
) -> Response {
    if let Some(response) = unknown_flow(&shared, &name) {
        return response;
    }
    if asked.len() > 1000 {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ask about at most 1000 records at a time",
        );
    }
    let state = match shared.store.flow(&name) {
        Ok(state) => state,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut handled = serde_json::Map::new();
    for Asked { key, digest } in asked {
        match state.handled(&key) {
            Ok(Some(h)) if h.covers(|| digest.clone()) => {
                handled.insert(key, json!(h.run));
            }
            Ok(_) => {}
            Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    Json(json!({"handled": handled})).into_response()
}

/// A 404 for a flow the directory does not have (valid or not).
fn unknown_flow(shared: &Shared, name: &str) -> Option<Response> {
    let known = shared
        .project
        .read()
        .map(|p| p.flows.contains_key(name))
        .unwrap_or(false)
        || shared
            .errors
            .read()
            .map(|e| e.contains_key(name))
            .unwrap_or(false);
    (!known).then(|| problem(StatusCode::NOT_FOUND, format!("no flow named `{name}`")))
}

/// `ok` while the scheduler's loop answers; 503 when it does not (nothing would run).
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let (reply, answer) = oneshot::channel();
    let alive = shared.timer.send(Command::Ping { reply }).is_ok()
        && matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), answer).await,
            Ok(Ok(()))
        );
    if alive {
        "ok".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the scheduler does not answer: flows are not running",
        )
            .into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let status = shared.status.read().map(|s| s.clone()).unwrap_or_default();
    let (valid, invalid) = (
        shared.project.read().map(|p| p.flows.len()).unwrap_or(0),
        shared.errors.read().map(|e| e.len()).unwrap_or(0),
    );
    let mut problems: std::collections::BTreeMap<String, usize> = shared
        .errors
        .read()
        .map(|e| e.iter().map(|(name, p)| (name.clone(), p.len())).collect())
        .unwrap_or_default();
    for (name, s) in &status {
        if s.error.is_some() {
            *problems.entry(name.clone()).or_default() += 1;
        }
    }
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared
            .metrics
            .render(&status, &problems, valid, invalid, &*shared.store),
    )
        .into_response()
}
