//! The JSON API, one of the runtime's front-ends: `/api/flows` (status),
//! `/api/flows/{name}/run` (force-run, answering with the run's report),
//! `/api/flows/{name}/runs` (history), `/healthz` and `/metrics`. A configured token guards `/api`. Every answer of `/api` is
//! JSON (a refusal too: `{"error": …}`), and `/api/openapi.json` describes them all,
//! generated from the handlers below.

use runtime::{engine, flows, scheduler};
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scheduler::Reason;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};

use runtime::daemon::{ops, Shared};

/// The API's routes.
pub fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let api = Router::new()
        .route("/api/flows", get(flows))
        .route("/api/flows/{name}/run", post(run))
        .route("/api/flows/{name}/replay", post(replay))
        .route("/api/flows/{name}/runs", get(runs))
        .route("/api/flows/{name}/runs/{id}", get(run_rows))
        .route("/api/flows/{name}/handled", post(handled))
        .route("/api/flows/{name}/test-send", post(test_send))
        .route("/api/flows/{name}/resume", post(resume))
        .route("/api/prune", post(prune))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), guard))
        .route("/api/openapi.json", get(openapi))
        .layer(middleware::map_response(json_refusals));
    Router::new()
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The answer to a path the API does not have.
pub async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no such route: /api/openapi.json lists them",
    )
}

/// A refusal of the API: what is wrong.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    error: String,
    /// An invalid flow's problems, each with its file, line and column.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    problems: Option<Vec<Value>>,
}

/// The API answers in JSON even when the framework refuses a request (a query, path or
/// body that does not parse): its plain-text refusals become `{"error": …}`.
async fn json_refusals(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    problem(status, String::from_utf8_lossy(&body).trim().to_string())
}

/// The OpenAPI document of `/api`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard daemon API",
        description = "The control API of `switchboard daemon`: the flows' status, force-runs and replays, history, pausing and pruning. On loopback it needs no token; a daemon listening elsewhere needs `Authorization: Bearer <token>`. Requests from another site (by `Origin` or `Sec-Fetch-Site`) that change something are refused."
    ),
    paths(flows, run, replay, runs, run_rows, handled, test_send, resume, prune),
    components(schemas(Problem, FlowItem, FlowList, ops::RunReply, RunList, RunRows, HandledList, Resumed, PrunedList, Asked, TestSent)),
    modifiers(&BearerToken)
)]
pub struct ApiDoc;

struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

async fn guard(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    // A page elsewhere must not drive the API through a browser on this machine.
    if request.method() != axum::http::Method::GET && runtime::access::cross_site(&headers) {
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
        let right = given.is_some_and(|g| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                g.as_bytes(),
                token.as_bytes(),
            ))
        });
        if !right {
            return problem(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send `Authorization: Bearer <token>`",
            );
        }
    }
    next.run(request).await
}

/// One flow, as `/api/flows` lists it.
#[derive(Serialize, ToSchema)]
pub struct FlowItem {
    name: String,
    /// Its file (absent for a flow known only by its problems).
    file: Option<String>,
    /// Its `enabled:` (absent for an invalid flow).
    enabled: Option<bool>,
    /// Why and since when it is paused (`switchboard resume` lifts it).
    paused: Option<engine::pause::Paused>,
    /// When it runs, in words.
    schedule: Option<String>,
    timezone: Option<String>,
    /// The next scheduled start, in the flow's time zone.
    next_run: Option<String>,
    running: bool,
    /// In a cluster: the node running it now.
    node: Option<String>,
    priority: Option<String>,
    /// Due, but waiting for a free run slot since then.
    waiting_since: Option<chrono::DateTime<chrono::Utc>>,
    last_run: Option<engine::RunSummary>,
    /// How late the last scheduled start was, in milliseconds.
    last_lag_ms: Option<i64>,
    /// Its problems (`file:line:col: message`).
    error: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct FlowList {
    /// In a cluster: this daemon's node name.
    node: Option<String>,
    flows: Vec<FlowItem>,
}

/// Every flow of the directory (valid or not), with its schedule, its last run and its
/// problems.
#[utoipa::path(get, path = "/api/flows", tag = "flows",
    responses((status = 200, body = FlowList), (status = 401, body = Problem)),
    security((), ("token" = [])))]
async fn flows(State(shared): State<Arc<Shared>>) -> Json<FlowList> {
    let status = shared.status.read().map(|s| s.clone()).unwrap_or_default();
    let now = shared.snapshot();
    let (errors, project) = (&now.errors, &now.project.flows);
    let scrubber = shared.scrubber();
    // In a cluster, a flow runs on whichever node holds its lease.
    let holders = shared.holders();
    let mut names: Vec<&String> = project.keys().chain(errors.keys()).collect();
    names.sort();
    names.dedup();
    let flows = names
        .into_iter()
        .map(|name| {
            let flow = project.get(name);
            let s = status.get(name).cloned().unwrap_or_default();
            let state = shared.store.flow(name).ok();
            let last_run = state
                .as_ref()
                .and_then(|f| f.runs(1).ok())
                .and_then(|mut r| r.pop())
                .map(|mut r| {
                    scrubber.summary(&mut r);
                    r
                });
            let paused = state
                .as_ref()
                .and_then(|f| engine::pause::paused(&**f).ok().flatten());
            FlowItem {
                name: name.clone(),
                file: flow.map(|f| f.file.display().to_string()),
                enabled: flow.map(|f| f.enabled),
                paused,
                schedule: flow.map(runtime::report::when_it_runs).or(s.schedule),
                timezone: flow.map(|f| f.timezone.name().to_string()),
                next_run: match (s.next_run, flow) {
                    (Some(at), Some(flow)) => Some(runtime::report::local_time(at, &flow.timezone)),
                    (at, _) => at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                },
                running: s.running || holders.contains_key(name),
                node: holders.get(name).cloned(),
                priority: flow.map(|f| f.priority.name().to_string()),
                waiting_since: s.waiting_since,
                last_run,
                last_lag_ms: s.last_lag_ms,
                error: errors
                    .get(name)
                    .map(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .or_else(|| s.error.clone().map(|e| vec![e])),
            }
        })
        .collect();
    Json(FlowList {
        node: shared.node.as_ref().map(|n| n.options.node.clone()),
        flows,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReplayQuery {
    /// Only records of this run (default: every run).
    run: Option<u64>,
    /// Only records parked as uncertain after a crash.
    #[serde(default)]
    uncertain: bool,
}

/// Send again the failed (or, `uncertain`, the parked) records of a flow; answers when
/// the replay ended, with the statuses of a run.
#[utoipa::path(post, path = "/api/flows/{name}/replay", tag = "runs",
    params(("name" = String, Path, description = "The flow's name"), ReplayQuery),
    responses((status = 200, body = ops::RunReply), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = ops::RunReply), (status = 500, body = ops::RunReply), (status = 503, body = ops::RunReply)),
    security((), ("token" = [])))]
async fn replay(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Response {
    if let Some(refused) = q.run.and_then(too_large) {
        return refused;
    }
    let filter = engine::ReplayFilter {
        run: q.run,
        only_uncertain: q.uncertain,
    };
    answer(&name, ops::replay(&shared, &name, filter)).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunQuery {
    /// The flow's `key:` changed and the run is to go on with the new one: rows handled
    /// before are known by their data and not sent again (`switchboard run FLOW
    /// --accept-key-change`).
    #[serde(default)]
    accept_key_change: bool,
}

/// Run a flow now (as `switchboard run` does); answers with the run's report when it
/// ended: 200 when it succeeded, 422 when it ran and failed (records failed, or the
/// source could not be read), 500 when it could not start.
#[utoipa::path(post, path = "/api/flows/{name}/run", tag = "runs",
    params(("name" = String, Path, description = "The flow's name"), RunQuery),
    responses((status = 200, body = ops::RunReply), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = ops::RunReply),
        (status = 500, body = ops::RunReply), (status = 503, body = ops::RunReply)),
    security((), ("token" = [])))]
async fn run(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<RunQuery>,
) -> Response {
    if q.accept_key_change {
        let flow = shared.snapshot().project.flows.get(&name).cloned();
        if let Some(flow) = flow {
            let accepted = shared
                .store
                .flow(&name)
                .and_then(|state| engine::keys::accept(&*state, &flow));
            if let Err(e) = accepted {
                return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
        }
    }
    answer(&name, ops::run_now(&shared, &name, Reason::Manual)).await
}

/// A run asked for, answered with its report when it ends.
async fn answer(name: &str, asked: Result<ops::Pending, ops::Refused>) -> Response {
    let outcome = match asked {
        Ok(pending) => pending,
        // The flow exists but cannot run as its file stands: a conflict with the
        // directory's state, not a bad request.
        Err(ops::Refused::Invalid(problems)) => {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": format!("flow `{name}` is invalid"), "problems": problems})),
            )
                .into_response()
        }
        Err(ops::Refused::Unknown) => {
            return problem(StatusCode::NOT_FOUND, format!("no flow named `{name}`"))
        }
        Err(ops::Refused::Stopping) => {
            return problem(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping")
        }
    };
    match outcome.await {
        Ok(outcome) => {
            let ended = outcome.report.run.as_ref().map(|run| run.status);
            let status = match ended {
                _ if outcome.success => StatusCode::OK,
                // Cut short: the daemon is stopping.
                Some(engine::RunStatus::Interrupted) => StatusCode::SERVICE_UNAVAILABLE,
                Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
                None => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, Json(outcome.report)).into_response()
        }
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping; the run did not start (a run already under way finishes and is in the history)",
        ),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunsQuery {
    /// How many runs, newest first (default 20, at most 100,000).
    #[serde(default = "twenty")]
    #[param(minimum = 0, maximum = 100000)]
    limit: usize,
}

#[derive(Serialize, ToSchema)]
pub struct RunList {
    runs: Vec<engine::RunSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct RunRows {
    run: engine::RunSummary,
    rows: Vec<engine::RowOutcome>,
}

fn twenty() -> usize {
    20
}

/// A flow's most recent runs, newest first.
#[utoipa::path(get, path = "/api/flows/{name}/runs", tag = "runs",
    params(("name" = String, Path, description = "The flow's name"), RunsQuery),
    responses((status = 200, body = RunList), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 500, body = Problem)),
    security((), ("token" = [])))]
async fn runs(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Response {
    if q.limit > 100_000 {
        return problem(
            StatusCode::BAD_REQUEST,
            "ask for at most 100000 runs at a time",
        );
    }
    if let Some(response) = unknown_flow(&shared, &name) {
        return response;
    }
    match shared.store.flow(&name).and_then(|f| f.runs(q.limit)) {
        Ok(mut runs) => {
            let scrubber = shared.scrubber();
            runs.iter_mut().for_each(|r| scrubber.summary(r));
            Json(RunList { runs }).into_response()
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// One run and every record of it (secrets redacted).
#[utoipa::path(get, path = "/api/flows/{name}/runs/{id}", tag = "runs",
    params(("name" = String, Path, description = "The flow's name"), ("id" = u64, Path, description = "The run's id", minimum = 0)),
    responses((status = 200, body = RunRows), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 500, body = Problem)),
    security((), ("token" = [])))]
async fn run_rows(
    State(shared): State<Arc<Shared>>,
    Path((name, id)): Path<(String, u64)>,
) -> Response {
    if let Some(refused) = too_large(id) {
        return refused;
    }
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
            Json(RunRows { run, rows }).into_response()
        }
        Ok((None, _)) => problem(
            StatusCode::NOT_FOUND,
            format!("flow `{name}` has no run {id}"),
        ),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Resumed {
    /// The pause lifted (`null`: the flow was not paused).
    resumed: Option<engine::pause::Paused>,
}

/// Resume a paused flow: `{"resumed": {reason, at}}` (or `null` when it was not
/// paused). A push flow's events that waited meanwhile are sent now.
#[utoipa::path(post, path = "/api/flows/{name}/resume", tag = "flows",
    params(("name" = String, Path, description = "The flow's name")),
    responses((status = 200, body = Resumed), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 500, body = Problem)),
    security((), ("token" = [])))]
async fn resume(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match ops::resume(&shared, &name) {
        Ok(resumed) => Json(Resumed { resumed }).into_response(),
        Err(ops::NotResumed::Unknown) => {
            problem(StatusCode::NOT_FOUND, format!("no flow named `{name}`"))
        }
        Err(ops::NotResumed::State(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PruneQuery {
    /// Only this flow (default: every flow with a `history:` rule).
    flow: Option<String>,
    /// Count what would go; drop nothing.
    #[serde(default)]
    dry_run: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PrunedList {
    pruned: Vec<runtime::prune::FlowPruned>,
}

/// Prune now what each flow's `history:` rule does not keep (or, `dry_run`, count it):
/// `{"pruned": [{flow, keeps, runs, records, keys}]}`.
#[utoipa::path(post, path = "/api/prune", tag = "flows",
    params(PruneQuery),
    responses((status = 200, body = PrunedList), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 500, body = Problem), (status = 503, body = Problem)),
    security((), ("token" = [])))]
async fn prune(State(shared): State<Arc<Shared>>, Query(q): Query<PruneQuery>) -> Response {
    if let Some(response) = q.flow.as_deref().and_then(|f| unknown_flow(&shared, f)) {
        return response;
    }
    // The plan from what is served now (a reload may come meanwhile).
    let plan = runtime::prune::plan(&shared.snapshot().project, q.flow.as_deref());
    let store = Arc::clone(&shared.store);
    let pruned = tokio::task::spawn_blocking(move || {
        runtime::prune::prune_planned(plan, &*store, q.dry_run, chrono::Utc::now())
    })
    .await;
    match pruned {
        Ok(pruned) => Json(PrunedList { pruned }).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A record as `switchboard test` asks about it: its key and the digest of its fields.
#[derive(Deserialize, ToSchema)]
pub struct Asked {
    key: String,
    digest: String,
}

/// Which of these records a run would not send again (handled before and, for a failed
/// one, unchanged since): `{"handled": {key: run}}`. `switchboard test` asks this while
/// the daemon holds the state.
#[utoipa::path(post, path = "/api/flows/{name}/handled", tag = "flows",
    params(("name" = String, Path, description = "The flow's name")),
    request_body(content = Vec<Asked>, description = "At most 1000 records"),
    responses((status = 200, body = HandledList), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem), (status = 500, body = Problem)),
    security((), ("token" = [])))]
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
    let filter = shared
        .snapshot()
        .project
        .flows
        .get(&name)
        .and_then(|flow| flow.filter.as_ref().map(flows::Filter::spec));
    let mut handled = std::collections::BTreeMap::new();
    for Asked { key, digest } in asked {
        match state.handled(&key) {
            Ok(Some(h)) if h.covers(|| digest.clone(), filter.as_deref()) => {
                handled.insert(key, h.run);
            }
            Ok(_) => {}
            Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    Json(HandledList { handled }).into_response()
}

/// A record `switchboard test --send` sent to its own recipient.
#[derive(Deserialize, ToSchema)]
pub struct TestSent {
    key: String,
    /// The record's fields.
    #[schema(value_type = Object)]
    record: serde_json::Map<String, Value>,
    /// The service's id for what was sent.
    remote_id: Option<String>,
    /// The request's body as it was sent.
    #[schema(value_type = Option<Object>)]
    sent: Option<serde_json::Map<String, Value>>,
}

/// Record a record `switchboard test --send` sent to its own recipient, in a run of its
/// own, so that the next run does not send it again.
#[utoipa::path(post, path = "/api/flows/{name}/test-send", tag = "flows",
    params(("name" = String, Path, description = "The flow's name")),
    request_body(content = TestSent),
    responses((status = 200, body = ops::RunReply), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem), (status = 500, body = Problem)),
    security((), ("token" = [])))]
async fn test_send(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Json(sent): Json<TestSent>,
) -> Response {
    if let Some(response) = unknown_flow(&shared, &name) {
        return response;
    }
    let record = engine::Record::new(sent.key, sent.record);
    let recorded = shared.store.flow(&name).and_then(|state| {
        engine::record_test_send(
            &*state,
            &record,
            sent.remote_id,
            sent.sent.map(Value::Object),
            chrono::Utc::now(),
        )
    });
    match recorded {
        Ok(summary) => {
            shared.indexing.soon(&shared.store, &name);
            Json(json!({"run": summary, "failures": []})).into_response()
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct HandledList {
    /// Each handled record's key, with the run that handled it.
    handled: std::collections::BTreeMap<String, u64>,
}

/// Run ids are documented as 64-bit signed integers (what JSON tools read safely): a
/// larger one is refused rather than looked up.
fn too_large(id: u64) -> Option<Response> {
    (i64::try_from(id).is_err()).then(|| {
        problem(
            StatusCode::BAD_REQUEST,
            format!("no run id is as large as {id}"),
        )
    })
}

/// A 404 for a flow the directory does not have (valid or not).
fn unknown_flow(shared: &Shared, name: &str) -> Option<Response> {
    (!shared.knows(name)).then(|| problem(StatusCode::NOT_FOUND, format!("no flow named `{name}`")))
}

/// `ok` while the scheduler's loop answers; 503 when it does not (nothing would run).
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(trouble) = shared.trouble.now() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the state cannot be written since {}: {}\nwebhooks are answered 500 (their senders try again) and runs fail until it can; the daemon goes on by itself once it can",
                trouble.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                trouble.what
            ),
        )
            .into_response();
    }
    if shared.scheduler_answers().await {
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
    let served = shared.snapshot();
    let (valid, invalid) = (served.project.flows.len(), served.errors.len());
    let mut problems: std::collections::BTreeMap<String, usize> = served
        .errors
        .iter()
        .map(|(name, p)| (name.clone(), p.len()))
        .collect();
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
