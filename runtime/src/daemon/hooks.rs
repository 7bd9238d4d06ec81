//! `POST /hooks/{flow}`: the one door for every push source. A request is checked —
//! declared size and (when the source proves its sender by a header) the sender before a
//! byte of the body is read; then the body, read up to the source's limit and within a
//! deadline; then a signature of it — and taken by the flow's [`Door`]: a handshake is
//! answered, or each event goes to the flows that take it, written to their queues in the
//! state and flushed to disk *before* the sender gets its answer; then the flows that
//! run on every event start. Bad requests get a 4xx with the reason and never reach a run.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use connectors::push::{Door, Taken, Target};
use engine::Record;
use scheduler::{Command, Reason};
use serde_json::json;

use super::Shared;

/// A refusal. The request's body may be unread (refused on its size or its sender), so
/// the connection is closed after the answer: a client must not send its next request
/// on a connection that still carries the rest of this body.
fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(axum::http::header::CONNECTION, "close")],
        Json(json!({"error": message.into()})),
    )
        .into_response()
}

/// Read a body of at most `limit` bytes within the daemon's body timeout, after the
/// declared length was checked; a sender that lies about it or trickles is cut off.
async fn read_body(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Response> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = |size: String| {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is {size} bytes; this flow accepts at most {limit} (`max_body`)"),
        )
    };
    if let Some(length) = declared.filter(|l| *l > limit as u64) {
        return Err(too_large(length.to_string()));
    }
    match tokio::time::timeout(shared.body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let length_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if length_limit {
                Err(too_large(format!("more than {limit}")))
            } else {
                Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!("the body could not be read: {e}"),
                ))
            }
        }
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {}",
                humantime::format_duration(shared.body_timeout)
            ),
        )),
    }
}

pub async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let door = match Door::of(&shared.snapshot().project, &name) {
        Ok(Some(door)) => door,
        Ok(None) if invalid(&shared, &name) => {
            // The service retries a 5xx: once the file is fixed, its events arrive.
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("flow `{name}` is invalid, so it takes no events until its file is fixed (`switchboard validate` says why)"),
            );
        }
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("no webhook flow named `{name}`"),
            )
        }
        Err(why) => return refuse(StatusCode::SERVICE_UNAVAILABLE, why.to_string()),
    };
    // Who is sending is settled before the body is read, where the headers can tell.
    if let Err(why) = door
        .verify_headers(&headers)
        .and_then(|()| door.verify_query(&query))
    {
        tracing::warn!(flow = %name, "webhook refused: {why}");
        return refuse(StatusCode::UNAUTHORIZED, why);
    }
    let body = match read_body(&shared, &headers, body, door.max_body()).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    if let Err(why) = door.verify_body(&headers, &body) {
        tracing::warn!(flow = %name, "webhook refused: {why}");
        return refuse(StatusCode::UNAUTHORIZED, why);
    }
    match door.take(&body, &query) {
        Err(why) => refuse(StatusCode::BAD_REQUEST, why),
        Ok(Taken::Handshake(answer)) => (StatusCode::OK, Json(answer)).into_response(),
        Ok(Taken::Events { queued, answer, .. }) => match queue_and_run(&shared, &queued).await {
            Ok(()) => (StatusCode::OK, Json(answer)).into_response(),
            Err(refused) => refused,
        },
    }
}

/// Write events to their flows' queues and make them durable (in a write and a flush
/// shared with the requests arriving at the same time) — only then may the sender hear
/// 200 — and start the flows that run on every event.
async fn queue_and_run(shared: &Shared, queued: &[(Target, Vec<Record>)]) -> Result<(), Response> {
    let stored = futures::future::try_join_all(queued.iter().map(|(target, records)| async move {
        let state = shared.store.flow(&target.flow)?;
        if target.enabled {
            state.enqueue_durably(records).await
        } else {
            // Off means off: answered (so the service does not retry), recorded, not sent.
            engine::record_skipped(
                &*state,
                engine::Trigger::Event,
                records,
                "not sent: the flow is switched off (`enabled: false`)",
                chrono::Utc::now(),
            )?;
            state.durable().await
        }
    }))
    .await
    .map(|_| ());
    if let Err(e) = stored {
        shared.trouble.report(&e, None);
        tracing::error!(error = %e, "cannot queue pushed events");
        return Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the events could not be stored; send them again",
        ));
    }
    for (target, _) in queued {
        if target.instant && target.enabled {
            let _ = shared.timer.send(Command::RunNow {
                name: target.flow.clone(),
                reason: Reason::Event,
                reply: None,
            });
        }
    }
    Ok(())
}

/// Whether the directory has a flow of this name that is invalid.
fn invalid(shared: &Shared, name: &str) -> bool {
    shared.snapshot().errors.contains_key(name)
}
