//! A fast stand-in on loopback: 8x8's single and batch send (answering with a umid per
//! message, as 8x8 does) and CINNOX's event subscription (keeping the URL registered, as
//! CINNOX does, to post events to). It only counts what it gets, so the client side is
//! what is measured; given a delay, each send answers after it (a service's own time).
//! It also serves the orders as a Google Sheet (`Orders`, the header and N rows), a
//! range of rows at a time and the grid's size, as Google does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A running stand-in and the number of messages it accepted.
pub struct StandIn {
    pub url: String,
    sheet_rows: Arc<AtomicUsize>,
    messages: Arc<AtomicU64>,
    hook: Arc<Mutex<Option<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl StandIn {
    pub async fn start() -> anyhow::Result<StandIn> {
        StandIn::answering_after(Duration::ZERO).await
    }

    /// A stand-in whose sends answer `delay` after they arrive.
    pub async fn answering_after(delay: Duration) -> anyhow::Result<StandIn> {
        let messages = Arc::new(AtomicU64::new(0));
        let hook: Arc<Mutex<Option<String>>> = Arc::default();
        let subscriptions = Arc::clone(&hook);
        let sheet_rows = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/api/v1/subaccounts/{sub}/messages", post(single))
            .route("/api/v1/subaccounts/{sub}/messages/batch", post(batch))
            .with_state(Sends {
                count: Arc::clone(&messages),
                delay,
            })
            .route(
                "/v4/spreadsheets/{id}",
                get(grid).with_state(Arc::clone(&sheet_rows)),
            )
            .route(
                "/v4/spreadsheets/{id}/values/{range}",
                get(values).with_state(Arc::clone(&sheet_rows)),
            )
            .route(
                "/v1/api/apps/{app}/{family}",
                patch(move |body: Bytes| subscription(Arc::clone(&subscriptions), body)),
            );
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(StandIn {
            url,
            sheet_rows,
            messages,
            hook,
            _stop: stop,
        })
    }

    /// The URL the daemon last registered with the CINNOX event subscription (where
    /// CINNOX would post: it carries the hook's token), once it has.
    pub fn hook(&self) -> Option<String> {
        self.hook.lock().ok().and_then(|h| h.clone())
    }

    /// Serve `rows` orders (and the header) as the Google Sheet.
    pub fn serve_sheet_rows(&self, rows: usize) {
        self.sheet_rows.store(rows, Ordering::SeqCst);
    }

    /// Messages accepted since the last call.
    pub fn take(&self) -> u64 {
        self.messages.swap(0, Ordering::SeqCst)
    }
}

/// What the send routes share: the count, and how long each answer takes.
#[derive(Clone)]
struct Sends {
    count: Arc<AtomicU64>,
    delay: Duration,
}

async fn single(State(sends): State<Sends>, body: Bytes) -> Json<Value> {
    if !sends.delay.is_zero() {
        tokio::time::sleep(sends.delay).await;
    }
    let n = sends.count.fetch_add(1, Ordering::Relaxed);
    let reference = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("clientMessageId").cloned())
        .unwrap_or(Value::Null);
    Json(json!({
        "umid": format!("bench-{n}"),
        "clientMessageId": reference,
        "status": {"state": "Queued", "detail": "Message queued"}
    }))
}

async fn batch(State(sends): State<Sends>, body: Bytes) -> Json<Value> {
    if !sends.delay.is_zero() {
        tokio::time::sleep(sends.delay).await;
    }
    let messages = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("messages").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let first = sends
        .count
        .fetch_add(messages.len() as u64, Ordering::Relaxed);
    let answers: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "umid": format!("bench-{}", first + i as u64),
                "clientMessageId": m.get("clientMessageId").cloned().unwrap_or(Value::Null),
                "status": {"state": "Queued"}
            })
        })
        .collect();
    Json(json!({
        "batchId": format!("batch-{first}"),
        "acceptedCount": answers.len(),
        "rejectedCount": 0,
        "messages": answers
    }))
}

/// `spreadsheets.get`: the grid has the header's row and the orders'.
async fn grid(State(rows): State<Arc<AtomicUsize>>) -> Json<Value> {
    let rows = rows.load(Ordering::Relaxed) + 1;
    Json(json!({"sheets": [{"properties": {"gridProperties": {"rowCount": rows}}}]}))
}

/// `values/Orders!A{first}:D{last}`: those rows of the sheet (row 1 the header).
async fn values(
    State(rows): State<Arc<AtomicUsize>>,
    Path((_id, range)): Path<(String, String)>,
) -> Json<Value> {
    let rows = rows.load(Ordering::Relaxed);
    let cells = range
        .rsplit_once('!')
        .map_or(range.as_str(), |(_, cells)| cells);
    let number = |part: Option<&str>| -> Option<usize> {
        part?
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .parse()
            .ok()
    };
    let mut parts = cells.split(':');
    let first = number(parts.next()).unwrap_or(1).max(1);
    let last = number(parts.next()).unwrap_or(rows + 1).min(rows + 1);
    let values: Vec<Value> = (first..=last)
        .map(|n| match n {
            1 => json!(crate::send_rate::HEADER),
            n => json!(crate::send_rate::order_row(n - 2)),
        })
        .collect();
    Json(json!({"range": range, "majorDimension": "ROWS", "values": values}))
}

/// CINNOX's event subscription keeps the URL and answers with what it stored.
async fn subscription(hook: Arc<Mutex<Option<String>>>, body: Bytes) -> Json<Value> {
    let stored: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let (Some(url), Ok(mut hook)) = (stored["url"].as_str(), hook.lock()) {
        *hook = Some(url.to_string());
    }
    Json(stored)
}
