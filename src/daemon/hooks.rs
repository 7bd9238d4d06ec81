//! `POST /hooks/{flow}`: the door for push sources. A request is checked (declared size
//! and shared token before a byte of the body is read; then the body, read up to the
//! flow's limit and within a deadline; an HMAC signature; the JSON shape) and each event
//! is written to the flow's queue in the state and flushed to disk *before* the sender
//! gets its 200; then the flow runs (right away when it has no schedule). Bad requests
//! get a 4xx with the reason and never reach a run.

use std::sync::Arc;

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::Record;
use flows::{AccountKind, Signature, SourceConfig, WebhookAccount, WebhookSource};
use hmac::{Hmac, Mac};
use scheduler::{Command, Reason};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

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

/// A flow that takes a service's pushed events.
struct Target {
    flow: String,
    events: Vec<String>,
    instant: bool,
}

/// The services that push events of their own shape.
enum Service {
    Cinnox,
    TextRequest,
}

/// The most a CINNOX or Text Request body may hold.
const SERVICE_MAX_BODY: usize = 1024 * 1024;

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
    let service = shared.project.read().ok().and_then(|p| {
        let flow = p.flows.get(&name)?;
        let instant = flow.schedule.is_none();
        match &flow.source {
            SourceConfig::Cinnox(source) => {
                // CINNOX keeps one URL per event family and app, so whichever flow's URL
                // it holds, the events go to every CINNOX flow on the same account.
                let targets = p
                    .flows
                    .values()
                    .filter_map(|f| match &f.source {
                        SourceConfig::Cinnox(s) if s.account == source.account => Some(Target {
                            flow: f.name.clone(),
                            events: s.events.clone(),
                            instant: f.schedule.is_none(),
                        }),
                        _ => None,
                    })
                    .collect();
                Some((Service::Cinnox, targets))
            }
            SourceConfig::TextRequest(source) => Some((
                Service::TextRequest,
                vec![Target {
                    flow: name.clone(),
                    events: source.events.clone(),
                    instant,
                }],
            )),
            _ => None,
        }
    });
    if let Some((service, targets)) = service {
        let body = match read_body(&shared, &headers, body, SERVICE_MAX_BODY).await {
            Ok(body) => body,
            Err(refused) => return refused,
        };
        let hinted = query.get("event").map(String::as_str);
        return receive_service(&shared, service, &targets, hinted, &body).await;
    }
    let found = shared.project.read().ok().and_then(|p| {
        let flow = p.flows.get(&name)?;
        let SourceConfig::Webhook(source) = &flow.source else {
            return None;
        };
        let account = source
            .account
            .as_ref()
            .and_then(|a| match &p.accounts.get(a)?.kind {
                AccountKind::Webhook(w) => Some(w.clone()),
                _ => None,
            });
        Some((
            source.clone(),
            source.account.is_some(),
            account,
            flow.schedule.is_none(),
        ))
    });
    let Some((source, guarded, account, instant)) = found else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("no webhook flow named `{name}`"),
        );
    };
    // Who is sending is settled before the body is read, where the headers can tell.
    match (guarded, &account) {
        (true, None) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the flow's webhook account is not usable",
            )
        }
        (true, Some(account)) if account.signature == Signature::Token => {
            if let Err(why) = verify(account, &headers, &[]) {
                tracing::warn!(flow = %name, "webhook refused: {why}");
                return refuse(StatusCode::UNAUTHORIZED, why);
            }
        }
        _ => {}
    }
    let body = match read_body(&shared, &headers, body, source.max_body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    if let (true, Some(account)) = (guarded, &account) {
        if account.signature == Signature::Hmac {
            if let Err(why) = verify(account, &headers, &body) {
                tracing::warn!(flow = %name, "webhook refused: {why}");
                return refuse(StatusCode::UNAUTHORIZED, why);
            }
        }
    }
    let records = match events(&source, &body) {
        Ok(records) => records,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let keys: Vec<String> = records.iter().map(|r| r.key.clone()).collect();
    let target = Target {
        flow: name,
        events: Vec::new(),
        instant,
    };
    if let Err(refused) = queue_and_run(&shared, &[(&target, records)]).await {
        return refused;
    }
    (
        StatusCode::OK,
        Json(json!({"queued": keys.len(), "keys": keys})),
    )
        .into_response()
}

/// CINNOX and Text Request: answer CINNOX's subscription challenge; normalise events
/// and queue the ones the flow takes (others are acknowledged and dropped).
async fn receive_service(
    shared: &Shared,
    service: Service,
    targets: &[Target],
    hinted: Option<&str>,
    body: &[u8],
) -> Response {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {e}"),
            )
        }
    };
    if let (Service::Cinnox, Some(challenge)) = (&service, connectors::cinnox::challenge(&value)) {
        return (
            StatusCode::OK,
            Json(json!({"code": 0, "result": {"challenge": challenge}})),
        )
            .into_response();
    }
    // The body is read once; each flow takes its events from it.
    let events = match service {
        Service::Cinnox => connectors::cinnox::events_of(&value),
        Service::TextRequest => connectors::textrequest::trigger::events_of(&value, hinted),
    };
    let events = match events {
        Ok(events) => events,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    // Events no flow takes are acknowledged and dropped.
    let ignored = events
        .iter()
        .filter(|e| !targets.iter().any(|t| t.events.contains(&e.event)))
        .count();
    let queued: Vec<(&Target, Vec<Record>)> = targets
        .iter()
        .map(|target| (target, connectors::push::select(&events, &target.events).0))
        .filter(|(_, records)| !records.is_empty())
        .collect();
    if let Err(refused) = queue_and_run(shared, &queued).await {
        return refused;
    }
    let count: usize = queued.iter().map(|(_, records)| records.len()).sum();
    let flows: Vec<&str> = queued.iter().map(|(t, _)| t.flow.as_str()).collect();
    (
        StatusCode::OK,
        Json(json!({"code": 0, "queued": count, "ignored": ignored, "flows": flows})),
    )
        .into_response()
}

/// Write events to their flows' queues and flush them to disk (one flush for all) — only
/// then may the sender hear 200 — and start the flows that run on every event.
async fn queue_and_run(shared: &Shared, queued: &[(&Target, Vec<Record>)]) -> Result<(), Response> {
    let mut stored = Ok(());
    for (target, records) in queued {
        stored = shared
            .store
            .flow(&target.flow)
            .and_then(|state| state.enqueue(records));
        if stored.is_err() {
            break;
        }
    }
    if stored.is_ok() && !queued.is_empty() {
        stored = shared.store.flush().await;
    }
    if let Err(e) = stored {
        tracing::error!(error = %e, "cannot queue pushed events");
        return Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the events could not be stored; send them again",
        ));
    }
    for (target, _) in queued {
        if target.instant {
            let _ = shared.timer.send(Command::RunNow {
                name: target.flow.clone(),
                reason: Reason::Event,
                reply: None,
            });
        }
    }
    Ok(())
}

/// Check the shared secret: a bearer token (or `X-Switchboard-Token`), or an HMAC-SHA256
/// signature of the body in `X-Signature-256: sha256=<hex>`.
fn verify(account: &WebhookAccount, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = account.secret.expose().as_bytes();
    match account.signature {
        Signature::Token => {
            let given = header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .or_else(|| header("x-switchboard-token"))
                .ok_or("missing token: send `Authorization: Bearer <secret>`")?;
            if constant_time_eq(given.as_bytes(), secret) {
                Ok(())
            } else {
                Err("wrong token".into())
            }
        }
        Signature::Hmac => {
            let given = header("x-signature-256").ok_or(
                "missing signature: send `X-Signature-256: sha256=<hex HMAC-SHA256 of the body>`",
            )?;
            let hex_digest = given.strip_prefix("sha256=").unwrap_or(given);
            let digest = hex::decode(hex_digest.trim())
                .map_err(|_| "the signature is not hex".to_string())?;
            let mut mac = Hmac::<Sha256>::new_from_slice(secret)
                .map_err(|_| "unusable secret".to_string())?;
            mac.update(body);
            mac.verify_slice(&digest)
                .map_err(|_| "wrong signature".to_string())
        }
    }
}

/// Compare secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request body as events: one JSON object, or a list of them.
fn events(source: &WebhookSource, body: &[u8]) -> Result<Vec<Record>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let objects: Vec<Map<String, Value>> = match value {
        Value::Object(object) => vec![object],
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(object) => Ok(object),
                _ => Err(format!("event {i} is not a JSON object")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("expected a JSON object (or a list of objects)".into()),
    };
    if objects.is_empty() {
        return Err("the list holds no events".into());
    }
    objects
        .into_iter()
        .enumerate()
        .map(|(i, fields)| {
            let key = if source.key.is_empty() {
                let digest = Sha256::digest(serde_json::to_vec(&fields).unwrap_or_default());
                format!("event:{}", hex::encode(&digest[..16]))
            } else {
                let parts = source
                    .key
                    .iter()
                    .map(|field| match fields.get(field) {
                        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                        Some(v @ Value::Number(_)) => Ok(v.to_string()),
                        _ => Err(format!("event {i} has no `{field}` (the flow's key)")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // One field is its value; several are encoded as a JSON list (as CSV
                // keys are), so `{a: "x/y", b: "z"}` and `{a: "x", b: "y/z"}` differ.
                match parts.as_slice() {
                    [one] => one.clone(),
                    many => serde_json::to_string(many).unwrap_or_default(),
                }
            };
            Ok(Record::new(key, fields))
        })
        .collect()
}
