//! The 8x8 SMS API stand-in: `POST /api/v1/subaccounts/{id}/messages`, checked the way
//! 8x8's spec describes (bearer key, MSISDN pattern, text, 16-character sender ID,
//! 350-character client reference), answering with 8x8's bodies and error codes.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::Recorder;

pub fn routes() -> Router<Recorder> {
    Router::new().route("/api/v1/subaccounts/{subaccount}/messages", post(send_sms))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn error(status: StatusCode, code: u32, message: &str) -> (StatusCode, Json<Value>) {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    (
        status,
        Json(json!({
            "code": code,
            "message": message,
            "errorId": format!("sandbox-{n}"),
            "timestamp": chrono::Utc::now().to_rfc3339(),
        })),
    )
}

fn is_msisdn(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

fn is_subaccount(s: &str) -> bool {
    (3..=50).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '&'))
}

fn needs_ucs2(text: &str) -> bool {
    connectors::sms::analyse(text).encoding == connectors::sms::Encoding::Ucs2
}

async fn send_sms(
    State(recorder): State<Recorder>,
    Path(subaccount): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|key| !key.trim().is_empty());
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, 1200, "Unauthorized");
    }
    if !is_subaccount(&subaccount) {
        return error(StatusCode::BAD_REQUEST, 1000, "Invalid subAccountId");
    }
    let Ok(Value::Object(sms)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            1000,
            "Request body is not a JSON object",
        );
    };
    let destination = sms
        .get("destination")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !is_msisdn(&destination) {
        return error(StatusCode::BAD_REQUEST, 1002, "Invalid MSISDN format");
    }
    let text = sms
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if text.is_empty() {
        return error(StatusCode::BAD_REQUEST, 1004, "Invalid text");
    }
    if sms
        .get("source")
        .and_then(Value::as_str)
        .is_some_and(|s| s.chars().count() > 16)
    {
        return error(StatusCode::BAD_REQUEST, 1005, "Invalid source");
    }
    if sms
        .get("clientMessageId")
        .and_then(Value::as_str)
        .is_some_and(|s| s.chars().count() > 350)
    {
        return error(StatusCode::BAD_REQUEST, 3009, "ClientMessageId too long");
    }
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let umid = format!("5b0c{n:04x}-0000-4000-8000-{n:012x}");
    let encoding = if needs_ucs2(&text) { "UCS2" } else { "GSM7" };
    let mut recorded = sms.clone();
    recorded.insert("subaccount".into(), Value::String(subaccount));
    recorded.insert("umid".into(), Value::String(umid.clone()));
    recorder.push("8x8", Value::Object(recorded));
    (
        StatusCode::OK,
        Json(json!({
            "umid": umid,
            "clientMessageId": sms.get("clientMessageId").cloned().unwrap_or(Value::Null),
            "destination": destination,
            "encoding": encoding,
            "status": {"code": "QUEUED", "description": "SMS is accepted and queued for processing"},
        })),
    )
}
