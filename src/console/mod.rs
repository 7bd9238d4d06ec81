//! The console: web pages served by the daemon on its own listener, for people who manage
//! their connections in a browser — the flows with their on/off toggle and Run now, a
//! flow's run log with live progress, a run's records with replay, search across every
//! run, the accounts' checks and the connector catalogue. Server-rendered HTML; every
//! asset is embedded in the binary; nothing is fetched at run time.

use runtime::{connectors, engine, scheduler};
mod flash;
mod pages;
use runtime::access as session;
mod views;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use scheduler::Reason;
use serde::Deserialize;

use self::pages::Tab;
use runtime::daemon::{ops, Shared};

pub fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let pages = Router::new()
        .route("/", get(flows_page))
        .route("/flows/{name}", get(flow_page))
        .route("/flows/{name}/runs/{id}", get(run_page))
        .route("/flows/{name}/preview", get(preview_page))
        .route("/search", get(search_page))
        .route("/accounts", get(accounts_page))
        .route("/accounts/{name}/status", get(account_status))
        .route("/flows/{name}/runs/{id}/records.csv", get(run_csv))
        .route("/connectors", get(connectors_page))
        .route("/live/flows", get(live_flows))
        .route("/live/flows/{name}", get(live_runs))
        .route("/live/flows/{name}/runs/{id}", get(live_run))
        .route("/flows/{name}/enabled", post(toggle))
        .route("/new", get(new_page).post(new_flow))
        .route("/flows/{name}/edit", get(edit_page).post(save_edit))
        .route("/flows/{name}/check", post(check_edit))
        .route("/flows/{name}/try", post(try_edit))
        .route("/flows/{name}/run", post(run_now))
        .route("/flows/{name}/replay", post(replay))
        .route("/flows/{name}/resume", post(resume))
        .route("/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            signed_in,
        ));
    Router::new()
        .merge(pages)
        .route("/login", get(login_page).post(login))
        .route("/assets/{file}", get(asset))
        .layer(axum::middleware::map_response(html_refusals))
}

/// A page for a path the console does not have.
pub async fn not_found() -> Response {
    page_problem(
        StatusCode::NOT_FOUND,
        "Not found",
        "there is no such page: the flows are at /",
    )
}

/// The framework's own refusals (a query that does not parse, a form without a field)
/// come as plain text: a person gets them as a page.
async fn html_refusals(response: Response) -> Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !plain || !status.is_client_error() || status == StatusCode::UNAUTHORIZED {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let detail = if text.is_empty() {
        "the request was refused".to_string()
    } else {
        text
    };
    page_problem(status, "Refused", &detail)
}

/// What a page needs of the request: its session (empty on loopback without a token)
/// and so the anti-forgery token its forms carry.
#[derive(Clone)]
struct Visitor {
    csrf: String,
    /// Signed in with the token (the daemon has one): the page offers to sign out.
    signed_in: bool,
    /// What the last action said, shown once by this page.
    flash: Option<flash::Flash>,
}

impl Visitor {
    fn chrome(&self) -> pages::Chrome<'_> {
        pages::Chrome {
            csrf: &self.csrf,
            signed_in: self.signed_in,
            flash: self.flash.as_ref(),
        }
    }
}

/// Pages need a session when the daemon has a token; state-changing requests need the
/// page's anti-forgery token and must not come from another site.
async fn signed_in(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    let session = session::cookie(&headers).unwrap_or_default();
    if shared.token.is_some() && !shared.console.valid_session(&session) {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        if path.starts_with("/live/") {
            // A live region's update: htmx takes the whole page to the sign-in.
            let mut refused = StatusCode::UNAUTHORIZED.into_response();
            refused
                .headers_mut()
                .insert("hx-redirect", HeaderValue::from_static("/login"));
            return refused;
        }
        if request.method() != axum::http::Method::GET {
            // A form posted after the session ended (a restart ends them): sign in, then
            // back to the page the form was on; nothing is done meanwhile.
            return Redirect::to(&format!("/login?next={}", pages::enc(&back_to(&headers))))
                .into_response();
        }
        return Redirect::to(&format!("/login?next={}", pages::enc(&path))).into_response();
    }
    let signed_in = shared.token.is_some() && !session.is_empty();
    // Tokenless, each browser's forms carry a token of its own (its id in a cookie).
    let mut given = None;
    let session = if shared.token.is_some() {
        session
    } else {
        let id = session::visitor(&headers).unwrap_or_else(|| {
            let (id, cookie) = session::new_visitor();
            given = Some(cookie);
            id
        });
        format!("visitor:{id}")
    };
    if request.method() == axum::http::Method::POST && session::cross_site(&headers) {
        return page_problem(
            StatusCode::FORBIDDEN,
            "Refused",
            "the request came from another site; use the console's own pages",
        );
    }
    // A toast is shown by the page a browser lands on, not by a fragment htmx fetches.
    let landing =
        request.method() == axum::http::Method::GET && !headers.contains_key("hx-request");
    let flash = flash::read(&headers).filter(|_| landing);
    let shown = flash.is_some();
    request.extensions_mut().insert(Visitor {
        csrf: shared.console.csrf(&session),
        signed_in,
        flash,
    });
    let mut response = next.run(request).await;
    if shown {
        flash::clear(&mut response);
    }
    if let Some(value) = given.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A form that changes something, posted from the console's own page: it is taken only
/// with the page's anti-forgery token (a 403 page otherwise).
struct Posted<T>(T);

/// A form that carries the anti-forgery token.
trait Guarded {
    fn csrf(&self) -> Option<&str>;
}

impl<T, S> axum::extract::FromRequest<S> for Posted<T>
where
    T: serde::de::DeserializeOwned + Guarded + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let expected = request
            .extensions()
            .get::<Visitor>()
            .map(|v| v.csrf.clone());
        let Form(form) = Form::<T>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let right = match (expected, form.csrf()) {
            (Some(expected), Some(given)) => bool::from(subtle::ConstantTimeEq::ct_eq(
                given.as_bytes(),
                expected.as_bytes(),
            )),
            _ => false,
        };
        if !right {
            return Err(page_problem(
                StatusCode::FORBIDDEN,
                "Refused",
                "the form's anti-forgery token is missing or stale; reload the page and try again",
            ));
        }
        Ok(Posted(form))
    }
}

fn html_page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn page(title: &str, tab: Tab, visitor: &Visitor, body: Markup) -> Response {
    html_page(
        StatusCode::OK,
        pages::layout(title, tab, visitor.chrome(), body),
    )
}

fn page_problem(status: StatusCode, title: &str, detail: &str) -> Response {
    html_page(
        status,
        pages::layout(
            title,
            Tab::None,
            pages::Chrome::bare(),
            pages::problem(title, detail),
        ),
    )
}

fn no_flow(name: &str) -> Response {
    page_problem(
        StatusCode::NOT_FOUND,
        "No such flow",
        &format!("no flow named `{name}` in the flows directory"),
    )
}

fn state_problem(e: engine::StateError) -> Response {
    page_problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The state cannot be read",
        &e.to_string(),
    )
}

// --- Pages ---

#[derive(Deserialize, Default)]
struct FlowsQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    q: String,
}

fn flows_view(shared: &Shared, q: &FlowsQuery) -> (Vec<views::FlowView>, usize, usize, usize) {
    let names = views::flow_names(shared, &q.q);
    let pages = names.len().div_ceil(views::FLOWS_PER_PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let shown: Vec<String> = names
        .iter()
        .skip((page - 1) * views::FLOWS_PER_PAGE)
        .take(views::FLOWS_PER_PAGE)
        .cloned()
        .collect();
    (
        views::flows(shared, &shown, chrono::Utc::now()),
        names.len(),
        page,
        pages,
    )
}

async fn flows_page(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Query(q): Query<FlowsQuery>,
) -> Response {
    let (flows, total, page_no, pages) = flows_view(&shared, &q);
    let scrubber = shared.scrubber();
    let general: Vec<String> = shared
        .snapshot()
        .general
        .iter()
        .map(|d| scrubber.string(d.to_string()))
        .collect();
    let body = pages::flows(
        &pages::FlowsPage {
            flows: &flows,
            total,
            page: page_no,
            pages,
            filter: &q.q,
            general: &general,
        },
        &visitor.csrf,
    );
    page("Flows", Tab::Flows, &visitor, body)
}

async fn flow_page(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Path(name): Path<String>,
    Query(filter): Query<views::RunFilter>,
) -> Response {
    if !shared.knows(&name) {
        return no_flow(&name);
    }
    let flow = views::flows(&shared, std::slice::from_ref(&name), chrono::Utc::now());
    let Some(flow) = flow.first() else {
        return no_flow(&name);
    };
    let (runs, more) = match views::runs(&shared, &name, filter) {
        Ok(found) => found,
        Err(e) => return state_problem(e),
    };
    let text = runtime::daemon::edits::file(&shared, &name)
        .and_then(|file| std::fs::read_to_string(file).ok())
        .map(|text| shared.scrubber().string(text));
    let body = pages::flow(
        &pages::FlowPage {
            flow,
            runs: &runs,
            more,
            filter,
            shape: views::shape(&shared, &name).as_ref(),
            text: text.as_deref(),
        },
        &visitor.csrf,
    );
    page(&name, Tab::Flows, &visitor, body)
}

/// What the flow would send next: the `switchboard test` preview (look-ups asked, nothing
/// sent, no state changed).
async fn preview_page(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Path(name): Path<String>,
) -> Response {
    if !shared.knows(&name) {
        return no_flow(&name);
    }
    let body = match views::preview(&shared, &name).await {
        Ok((from, previews)) => pages::preview(&name, &from, &previews),
        Err(e) => {
            let why = scrubbed_error(&shared, &e);
            return page_problem(StatusCode::UNPROCESSABLE_ENTITY, "No preview", &why);
        }
    };
    page(
        &format!("{name}: what it sends next"),
        Tab::Flows,
        &visitor,
        body,
    )
}

#[derive(Deserialize, Clone)]
struct RunQuery {
    from: Option<u64>,
    at: Option<u64>,
    /// Only the failed records.
    #[serde(default)]
    failed: bool,
}

/// What a run's page shows: its summary and a page of its records (scrubbed), or the
/// page saying why not.
fn run_body(
    shared: &Shared,
    name: &str,
    id: u64,
    q: &RunQuery,
    csrf: &str,
) -> Result<(engine::RunStatus, Markup), Box<Response>> {
    let summary = shared.store.flow(name).and_then(|f| f.run(id));
    let mut summary = match summary {
        Ok(Some(summary)) => summary,
        Ok(None) => {
            return Err(Box::new(page_problem(
                StatusCode::NOT_FOUND,
                "No such run",
                &format!("flow `{name}` has no run {id} (pruned, or not yet run)"),
            )))
        }
        Err(e) => return Err(Box::new(state_problem(e))),
    };
    shared.scrubber().summary(&mut summary);
    let from = q.from.unwrap_or(1).max(1);
    let (rows, more) =
        views::rows(shared, name, id, from, q.failed).map_err(|e| Box::new(state_problem(e)))?;
    let resent = views::resent(shared, name, id, &rows);
    let body = pages::run(
        &pages::RunPage {
            flow: name,
            run: &summary,
            rows: &rows,
            from,
            more,
            at: q.at,
            failed_only: q.failed,
            resent: &resent,
        },
        csrf,
    );
    Ok((summary.status, body))
}

async fn run_page(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Path((name, id)): Path<(String, u64)>,
    Query(q): Query<RunQuery>,
) -> Response {
    if !shared.knows(&name) {
        return no_flow(&name);
    }
    let (status, body) = match run_body(&shared, &name, id, &q, &visitor.csrf) {
        Ok(found) => found,
        Err(page) => return *page,
    };
    // A run under way is redrawn as it goes, until it ends.
    let body = if status == engine::RunStatus::Running {
        let query = run_query(&q);
        let live = format!(
            "/live/flows/{}/runs/{id}?{query}&shown={}",
            pages::enc(&name),
            pages::fingerprint(&body.0)
        );
        maud::html! { div #run-live hx-ext="sse" sse-connect=(live) sse-swap="run" { (body) } }
    } else {
        body
    };
    page(&format!("{name} run #{id}"), Tab::Flows, &visitor, body)
}

/// A run page's query as it came (the live redraws show the same page of records).
fn run_query(q: &RunQuery) -> String {
    let mut parts = Vec::new();
    if let Some(from) = q.from {
        parts.push(format!("from={from}"));
    }
    if let Some(at) = q.at {
        parts.push(format!("at={at}"));
    }
    if q.failed {
        parts.push("failed=true".to_string());
    }
    parts.join("&")
}

async fn live_run(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Path((name, id)): Path<(String, u64)>,
    Query(q): Query<RunQuery>,
    Query(Shown { shown }): Query<Shown>,
) -> Response {
    if !shared.knows(&name) {
        return no_flow(&name);
    }
    live(shared, "run", shown, move |shared| {
        run_body(shared, &name, id, &q, &visitor.csrf)
            .map(|(_, body)| body.into_string())
            .unwrap_or_default()
    })
    .into_response()
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search_page(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Query(q): Query<SearchQuery>,
) -> Response {
    let query = q.q.chars().take(200).collect::<String>();
    let hits = if query.trim().is_empty() {
        Vec::new()
    } else {
        let found = {
            let shared = Arc::clone(&shared);
            let query = query.clone();
            tokio::task::spawn_blocking(move || views::search(&shared, &query)).await
        };
        match found {
            Ok(Ok(hits)) => hits,
            Ok(Err(e)) => return state_problem(e),
            Err(e) => {
                return page_problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Search failed",
                    &e.to_string(),
                )
            }
        }
    };
    // What was typed is not written back into the page: echoed, a secret would be in it,
    // and echoed redacted, the page would confirm a guess. The box gets it back from the
    // address (console.js); the records found are scrubbed like every page's.
    page(
        "Search",
        Tab::Search,
        &visitor,
        pages::search(!query.trim().is_empty(), &hits),
    )
}

async fn accounts_page(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
) -> Response {
    let now = shared.snapshot();
    let accounts = &now.project.accounts;
    let scrubber = shared.scrubber();
    // Valid accounts are listed at once and each checked on its own (a hung service
    // holds up its row only); invalid ones say why.
    let mut rows: Vec<pages::AccountRow> = accounts
        .accounts
        .values()
        .map(|a| pages::AccountRow::Checking {
            account: a.name.clone(),
            connector: a.connector,
            used_by: views::used_by(&now.project, &a.name),
        })
        .collect();
    for (name, problems) in &accounts.invalid {
        let detail = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        rows.push(pages::AccountRow::Checked(
            connectors::check::AccountStatus {
                account: name.clone(),
                connector: "?",
                active: false,
                detail: scrubber.string(format!("invalid in accounts.yaml: {detail}")),
            },
            views::used_by(&now.project, name),
        ));
    }
    rows.sort_by(|a, b| a.name().cmp(b.name()));
    page(
        "Accounts",
        Tab::Accounts,
        &visitor,
        pages::accounts(&accounts.file.display().to_string(), &rows),
    )
}

/// Every record of a run as CSV (what the run page shows, for a spreadsheet): its place,
/// key, status, why, the service's code and id, when, and its fields as JSON; secrets
/// scrubbed as everywhere.
async fn run_csv(
    State(shared): State<Arc<Shared>>,
    Path((name, id)): Path<(String, u64)>,
) -> Response {
    if !shared.knows(&name) {
        return no_flow(&name);
    }
    let written = {
        let (shared, name) = (Arc::clone(&shared), name.clone());
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let state = shared.store.flow(&name).map_err(|e| e.to_string())?;
            let scrubber = shared.scrubber();
            let mut out = csv::Writer::from_writer(Vec::new());
            let header = [
                "seq",
                "key",
                "status",
                "why",
                "code",
                "service_id",
                "at",
                "record",
            ];
            out.write_record(header).map_err(|e| e.to_string())?;
            let mut failed = None;
            views::walk_rows(&*state, id, 1, 1000, |rows| {
                for mut row in rows {
                    scrubber.outcome(&mut row);
                    let record = serde_json::Value::Object(std::mem::take(&mut row.record));
                    let written = out.write_record([
                        row.seq.to_string(),
                        row.key,
                        format!("{:?}", row.status).to_lowercase(),
                        row.reason.unwrap_or_default(),
                        row.code.unwrap_or_default(),
                        row.remote_id.unwrap_or_default(),
                        row.at.to_rfc3339(),
                        record.to_string(),
                    ]);
                    if let Err(e) = written {
                        failed = Some(e.to_string());
                        return true;
                    }
                }
                false
            })
            .map_err(|e| e.to_string())?;
            if let Some(why) = failed {
                return Err(why);
            }
            out.into_inner().map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    };
    match written {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}-run-{id}.csv\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(why) => page_problem(StatusCode::INTERNAL_SERVER_ERROR, "Cannot export it", &why),
    }
}

/// One account checked now: its row, for the accounts page.
async fn account_status(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let now = shared.snapshot();
    let Some(account) = now.project.accounts.accounts.get(&name) else {
        return page_problem(
            StatusCode::NOT_FOUND,
            "No such account",
            &format!("no valid account named `{name}`"),
        );
    };
    let mut status = connectors::check::check_account(account).await;
    status.detail = shared.scrubber().string(status.detail);
    let used_by = views::used_by(&now.project, &name);
    html_page(
        StatusCode::OK,
        pages::account_row(&pages::AccountRow::Checked(status, used_by)),
    )
}

async fn connectors_page(axum::Extension(visitor): axum::Extension<Visitor>) -> Response {
    page("Connectors", Tab::Connectors, &visitor, pages::connectors())
}

// --- Live updates ---

/// How often live fragments are looked at (sent only when they changed).
const LIVE_EVERY: Duration = Duration::from_secs(1);

/// What the page already shows ([`pages::fingerprint`]), so the stream starts from it.
#[derive(Deserialize)]
struct Shown {
    shown: Option<String>,
}

/// A stream of `event` fragments, rendered by `render` every [`LIVE_EVERY`] and sent when
/// they differ from what was last shown (at first, what the page showed); it ends when
/// the daemon stops.
fn live(
    shared: Arc<Shared>,
    event: &'static str,
    shown: Option<String>,
    render: impl Fn(&Shared) -> String + Send + Sync + 'static,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let render = Arc::new(render);
    // A page that did not say what it shows gets the fragment at once.
    let first = shown.is_none();
    let stream = futures::stream::unfold(
        (shared, shown.unwrap_or_default(), first),
        move |(shared, last, now)| {
            let render = Arc::clone(&render);
            async move {
                loop {
                    if !now {
                        tokio::time::sleep(LIVE_EVERY).await;
                    }
                    if shared.timer.is_closed() {
                        return None;
                    }
                    let (shared_for, render_for) = (Arc::clone(&shared), Arc::clone(&render));
                    let fragment = tokio::task::spawn_blocking(move || render_for(&shared_for))
                        .await
                        .unwrap_or_default();
                    let seen = pages::fingerprint(&fragment);
                    if seen != last || now {
                        let event = Event::default().event(event).data(fragment);
                        return Some((Ok(event), (shared, seen, false)));
                    }
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn live_flows(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Query(q): Query<FlowsQuery>,
    Query(Shown { shown }): Query<Shown>,
) -> Response {
    live(shared, "flows", shown, move |shared| {
        let (flows, ..) = flows_view(shared, &q);
        pages::flow_rows(&flows, &visitor.csrf).into_string()
    })
    .into_response()
}

async fn live_runs(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(filter): Query<views::RunFilter>,
    Query(Shown { shown }): Query<Shown>,
) -> Response {
    if !shared.knows(&name) {
        return no_flow(&name);
    }
    live(shared, "runs", shown, move |shared| {
        let runs = views::runs(shared, &name, filter)
            .map(|(runs, _)| runs)
            .unwrap_or_default();
        pages::run_rows(&name, &runs).into_string()
    })
    .into_response()
}

// --- Actions ---

#[derive(Deserialize)]
struct Csrf {
    csrf: Option<String>,
}

impl Guarded for Csrf {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[derive(Deserialize)]
struct Toggle {
    csrf: Option<String>,
    enabled: String,
}

impl Guarded for Toggle {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

// --- A new flow from the catalogue ---

#[derive(Deserialize)]
struct NewForm {
    csrf: Option<String>,
    #[serde(default)]
    flow: String,
    #[serde(default)]
    source: String,
    /// `connector/action`.
    #[serde(default)]
    receiver: String,
    /// A sample file of the source's kind, relative to the flows directory.
    #[serde(default)]
    path: String,
    /// `columns`: read the sample's columns and offer them for each field; else write.
    #[serde(default)]
    step: String,
    /// `map.FIELD` → the template chosen for each receiver field.
    #[serde(flatten)]
    rest: std::collections::BTreeMap<String, String>,
}

impl NewForm {
    /// The fields mapped so far (non-empty choices).
    fn map(&self) -> Vec<(String, String)> {
        self.rest
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("map.")?.to_string(), v.clone())))
            .filter(|(_, v)| !v.trim().is_empty())
            .collect()
    }

    fn view<'a>(&'a self, columns: &'a [String]) -> pages::NewFlowView<'a> {
        pages::NewFlowView {
            flow: &self.flow,
            source: &self.source,
            receiver: &self.receiver,
            path: &self.path,
            columns,
            map: self.map(),
        }
    }
}

/// The columns of the sample file a new flow's form names: read from under the flows
/// directory only.
fn sample_columns(shared: &Shared, form: &NewForm) -> Result<Vec<String>, String> {
    let path = std::path::Path::new(form.path.trim());
    let inside = !form.path.trim().is_empty()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        return Err(format!(
            "`{}` is not a file under the flows directory: give its path from there (`orders.csv`, `data/orders.xlsx`)",
            form.path.trim()
        ));
    }
    let file = shared.global.flows.join(path);
    match connectors::catalogue::sample_columns(&form.source, &file) {
        None => Err(format!(
            "`{}` reads no file: map its fields in the editor, after the file is written",
            form.source
        )),
        Some(Err(why)) => Err(why),
        Some(Ok(columns)) if columns.is_empty() => Err(format!(
            "`{}` has no header row to map from",
            form.path.trim()
        )),
        Some(Ok(columns)) => Ok(columns),
    }
}

impl Guarded for NewForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Pick a source and a receiver action from the cards.
async fn new_page(axum::Extension(visitor): axum::Extension<Visitor>) -> Response {
    page(
        "New flow",
        Tab::Flows,
        &visitor,
        pages::new_flow(&visitor.csrf, None, &pages::NewFlowView::default()),
    )
}

/// Write the flow's commented file (what `switchboard new` writes, with an account of
/// the connector's that is there already), then open it in the editor.
async fn new_flow(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Posted(form): Posted<NewForm>,
) -> Response {
    if form.step == "columns" {
        let (status, body) = match sample_columns(&shared, &form) {
            Ok(columns) => (
                StatusCode::OK,
                pages::new_flow(&visitor.csrf, None, &form.view(&columns)),
            ),
            Err(why) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::new_flow(&visitor.csrf, Some(&why), &form.view(&[])),
            ),
        };
        return html_page(
            status,
            pages::layout("New flow", Tab::Flows, visitor.chrome(), body),
        );
    }
    let map = form.map();
    let path = form.path.trim().to_string();
    let (connector, action) = form
        .receiver
        .split_once('/')
        .unwrap_or((form.receiver.as_str(), ""));
    let created = {
        let (shared, flow, source) = (
            Arc::clone(&shared),
            form.flow.trim().to_string(),
            form.source.clone(),
        );
        let (connector, action) = (connector.to_string(), action.to_string());
        tokio::task::spawn_blocking(move || {
            let served = shared.snapshot();
            runtime::scaffold::create(
                &shared.global,
                runtime::scaffold::NewFlow {
                    flow: &flow,
                    source: &source,
                    receiver: &connector,
                    action: (!action.is_empty()).then_some(action.as_str()),
                    accounts: Some(&served.project.accounts),
                    path: (!path.is_empty()).then_some(path.as_str()),
                    map: &map,
                },
            )
            .map_err(|e| runtime::report::error_text(&e))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
    };
    match created {
        Ok(_) => {
            ops::reload_now(&shared).await;
            flash::redirect(
                &format!("/flows/{}/edit", pages::enc(form.flow.trim())),
                &flash::Flash::ok(format!(
                    "`{}` written: fill in what it asks, then Save",
                    form.flow.trim()
                )),
            )
        }
        Err(why) => html_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::layout(
                "New flow",
                Tab::Flows,
                visitor.chrome(),
                pages::new_flow(&visitor.csrf, Some(&why), &form.view(&[])),
            ),
        ),
    }
}

// --- Editing a flow's file ---

#[derive(Deserialize)]
struct Edit {
    csrf: Option<String>,
    text: String,
    #[serde(default)]
    version: String,
}

impl Guarded for Edit {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The flow's file in an editor: its problems checked as it is typed, saved whole.
async fn edit_page(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Path(name): Path<String>,
) -> Response {
    let file = match runtime::daemon::edits::read(&shared, &name) {
        Ok(file) => file,
        Err(not) => return not_saved(&name, not),
    };
    let problems = problem_views(
        &shared,
        &runtime::daemon::edits::problems(&shared, &file.path, &file.text),
    );
    let body = pages::edit(&pages::EditPage {
        flow: &name,
        file: &file.path.display().to_string(),
        text: &file.text,
        version: &file.version,
        problems: &problems,
        note: None,
        csrf: &visitor.csrf,
    });
    page(&format!("Edit {name}"), Tab::Flows, &visitor, body)
}

/// The problems of the text being edited, as the editor shows them (for htmx).
async fn check_edit(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Posted(form): Posted<Edit>,
) -> Response {
    let Some(file) = runtime::daemon::edits::file(&shared, &name) else {
        return no_flow(&name);
    };
    let checked = {
        let shared = Arc::clone(&shared);
        tokio::task::spawn_blocking(move || {
            let found = runtime::daemon::edits::problems(&shared, &file, &form.text);
            problem_views(&shared, &found)
        })
        .await
        .unwrap_or_default()
    };
    html_page(StatusCode::OK, pages::edit_problems(&checked))
}

/// What the edited file, not saved yet, would send next (the preview page's cards):
/// nothing is sent, written or recorded; an edit with problems lists them instead.
async fn try_edit(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Posted(form): Posted<Edit>,
) -> Response {
    let Some(file) = runtime::daemon::edits::file(&shared, &name) else {
        return no_flow(&name);
    };
    let checked = {
        let (shared, file) = (Arc::clone(&shared), file.clone());
        tokio::task::spawn_blocking(move || {
            runtime::daemon::edits::checked(&shared, &file, &form.text)
        })
        .await
    };
    let Ok((project, problems)) = checked else {
        return html_page(
            StatusCode::OK,
            maud::html! { p.problem { "The edit could not be checked." } },
        );
    };
    if !problems.is_empty() {
        return html_page(
            StatusCode::OK,
            pages::edit_problems(&problem_views(&shared, &problems)),
        );
    }
    let Some(flow) = project.flows.values().find(|f| f.file == file) else {
        return html_page(
            StatusCode::OK,
            maud::html! { p.problem { "The edited file names no flow to preview." } },
        );
    };
    let body = match views::preview_in(&shared, &project, flow).await {
        Ok((_, previews)) => pages::preview_cards(&previews),
        Err(e) => maud::html! { p.problem { (scrubbed_error(&shared, &e)) } },
    };
    html_page(StatusCode::OK, body)
}

/// An error as a person reads it, secrets scrubbed.
fn scrubbed_error(shared: &Shared, e: &anyhow::Error) -> String {
    shared.scrubber().string(runtime::report::error_text(e))
}

/// Save the edit: the daemon runs the new version at once; refused with its problems,
/// or when the file changed meanwhile.
async fn save_edit(
    State(shared): State<Arc<Shared>>,
    axum::Extension(visitor): axum::Extension<Visitor>,
    Path(name): Path<String>,
    Posted(form): Posted<Edit>,
) -> Response {
    let refused = match runtime::daemon::edits::save(&shared, &name, form.text.clone(), &form.version).await {
        Ok(()) => {
            return flash::redirect(
                &format!("/flows/{}?saved=true", pages::enc(&name)),
                &flash::Flash::ok(format!("`{name}` saved: the daemon runs the new version")),
            )
        }
        Err(runtime::daemon::edits::NotSaved::Invalid(problems)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            problem_views(&shared, &problems),
            "Not saved: the file would have the problems below. Nothing was written.",
        ),
        Err(runtime::daemon::edits::NotSaved::Changed) => (
            StatusCode::CONFLICT,
            Vec::new(),
            "Not saved: the file changed on disk since you opened it. Your text is below: copy it, open the editor again, and apply it to the new file.",
        ),
        Err(not) => return not_saved(&name, not),
    };
    let (status, problems, note) = refused;
    let file = runtime::daemon::edits::file(&shared, &name)
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    let body = pages::edit(&pages::EditPage {
        flow: &name,
        file: &file,
        text: &form.text,
        version: &form.version,
        problems: &problems,
        note: Some(note),
        csrf: &visitor.csrf,
    });
    html_page(
        status,
        pages::layout(&format!("Edit {name}"), Tab::Flows, visitor.chrome(), body),
    )
}

/// Problems as the editor lists them: line, column, message and hint, secrets scrubbed.
fn problem_views(
    shared: &Shared,
    problems: &[runtime::flows::Diagnostic],
) -> Vec<pages::LineProblem> {
    let scrubber = shared.scrubber();
    problems
        .iter()
        .map(|d| pages::LineProblem {
            line: d.line,
            column: d.column,
            message: scrubber.string(d.message.clone()),
            hint: d.hint.clone().map(|h| scrubber.string(h)),
        })
        .collect()
}

fn not_saved(name: &str, not: runtime::daemon::edits::NotSaved) -> Response {
    match not {
        runtime::daemon::edits::NotSaved::Unknown => no_flow(name),
        runtime::daemon::edits::NotSaved::Failed(why) => {
            page_problem(StatusCode::INTERNAL_SERVER_ERROR, "Cannot edit it", &why)
        }
        other => page_problem(StatusCode::CONFLICT, "Not saved", &format!("{other:?}")),
    }
}

/// Switch a flow on or off by editing its file's `enabled:` line; the daemon takes the
/// file again at once (the watcher would within a second).
async fn toggle(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Posted(form): Posted<Toggle>,
) -> Response {
    let on = form.enabled == "true";
    // Back to the page the toggle was on, its filter and page kept, saying what happened.
    let said = match ops::set_enabled(&shared, &name, on).await {
        Ok(()) => flash::Flash::ok(format!(
            "`{name}` switched {}",
            if on { "on" } else { "off: it runs only when forced" }
        )),
        Err(ops::NotSwitched::Unknown) => return no_flow(&name),
        Err(ops::NotSwitched::Invalid) => flash::Flash::refused(format!(
            "`{name}` was not switched: its file is invalid; mend it first (its problems are on the flows page)"
        )),
        Err(ops::NotSwitched::Failed(why)) => {
            flash::Flash::refused(format!("`{name}` was not switched: {why}"))
        }
    };
    flash::redirect(&back_to(&headers), &said)
}

/// The page a form was posted from (its path and query), when it is this console's.
fn back_to(headers: &HeaderMap) -> String {
    headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| match u.query() {
            Some(query) => format!("{}?{query}", u.path()),
            None => u.path().to_string(),
        })
        .map(|path| session::local_path(&path).to_string())
        .unwrap_or_else(|| "/".into())
}

async fn run_now(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Posted(_): Posted<Csrf>,
) -> Response {
    started(&name, ops::run_now(&shared, &name, Reason::Manual))
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
    Posted(_): Posted<Csrf>,
) -> Response {
    let filter = engine::ReplayFilter {
        run: q.run,
        only_uncertain: q.uncertain,
    };
    let mut pending = match ops::replay(&shared, &name, filter) {
        Ok(pending) => pending,
        Err(refused) => return started(&name, Err(refused)),
    };
    // A replay that finds nothing to send again says so at once (no run is begun);
    // one that sends is followed on the run log.
    match tokio::time::timeout(std::time::Duration::from_millis(1500), &mut pending).await {
        Ok(Ok(outcome)) if outcome.report.nothing_to_replay == Some(true) => {
            let what = if q.uncertain { "uncertain" } else { "failed" };
            let of = q.run.map(|r| format!(" of run #{r}")).unwrap_or_default();
            page_problem(
                StatusCode::OK,
                "Nothing to replay",
                &format!(
                    "no {what} record{of} is left to send again: a replay sent them already, or none {}",
                    if q.uncertain { "was cut short" } else { "failed" }
                ),
            )
        }
        Ok(_) => flash::redirect(
            &format!("/flows/{}", pages::enc(&name)),
            &flash::Flash::ok(format!("`{name}`: the replay ended; its run is below")),
        ),
        Err(_) => started(&name, Ok(pending)),
    }
}

/// A run asked for: go to the flow's run log, where it shows as it goes.
fn started(name: &str, asked: Result<ops::Pending, ops::Refused>) -> Response {
    match asked {
        Ok(outcome) => {
            // The run goes on without the browser; its outcome is in the history.
            tokio::spawn(async move {
                let _ = outcome.await;
            });
            flash::redirect(
                &format!("/flows/{}", pages::enc(name)),
                &flash::Flash::ok(format!(
                    "`{name}`: a run started; it shows below as it goes"
                )),
            )
        }
        Err(ops::Refused::Invalid(_)) => flash::redirect(
            &format!("/flows/{}", pages::enc(name)),
            &flash::Flash::refused(format!(
                "`{name}` did not run: its file is invalid; mend it first"
            )),
        ),
        Err(ops::Refused::Unknown) => no_flow(name),
        Err(ops::Refused::Stopping) => page_problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Cannot run it",
            "the daemon is stopping",
        ),
    }
}

async fn resume(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Posted(_): Posted<Csrf>,
) -> Response {
    match ops::resume(&shared, &name) {
        Ok(_) => {}
        Err(ops::NotResumed::Unknown) => return no_flow(&name),
        Err(ops::NotResumed::State(e)) => return state_problem(e),
    }
    flash::redirect(
        &format!("/flows/{}", pages::enc(&name)),
        &flash::Flash::ok(format!("`{name}` resumed: it runs on its schedule again")),
    )
}

// --- Signing in ---

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    failed: bool,
}

async fn login_page(State(shared): State<Arc<Shared>>, Query(q): Query<LoginQuery>) -> Response {
    if shared.token.is_none() {
        return Redirect::to("/").into_response();
    }
    html_page(
        StatusCode::OK,
        pages::layout(
            "Sign in",
            Tab::None,
            pages::Chrome::bare(),
            pages::login(q.failed, session::local_path(&q.next)),
        ),
    )
}

#[derive(Deserialize)]
struct Login {
    token: String,
    #[serde(default)]
    next: String,
}

async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let Some(token) = &shared.token else {
        return Redirect::to("/").into_response();
    };
    if session::cross_site(&headers) {
        return page_problem(
            StatusCode::FORBIDDEN,
            "Refused",
            "the request came from another site",
        );
    }
    let next = session::local_path(&form.next).to_string();
    if let Some(wait) = shared.sign_ins.wait() {
        return page_problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins",
            &format!(
                "{} wrong tokens were tried within a minute; sign in again in {} s",
                runtime::access::SignIns::MAX_FAILURES,
                wait.as_secs().max(1)
            ),
        );
    }
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        form.token.as_bytes(),
        token.as_bytes(),
    )) {
        shared.sign_ins.failed();
        tracing::warn!("a console sign-in with a wrong token");
        return Redirect::to(&format!("/login?failed=true&next={}", pages::enc(&next)))
            .into_response();
    }
    let cookie = session::set_cookie(&shared.console.new_session());
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(Posted(_): Posted<Csrf>) -> Response {
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

// --- Assets ---

/// The embedded assets: htmx and its SSE extension (from the npm registry, BSD-0), and
/// the console's style sheet.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "htmx.min.js",
        "text/javascript",
        include_bytes!("assets/htmx.min.js"),
    ),
    (
        "sse.min.js",
        "text/javascript",
        include_bytes!("assets/sse.min.js"),
    ),
    (
        "console.js",
        "text/javascript",
        include_bytes!("assets/console.js"),
    ),
    (
        "console.css",
        "text/css",
        include_bytes!("assets/console.css"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, ..)| *name == file) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
