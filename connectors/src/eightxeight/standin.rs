//! The 8x8 SMS API stand-in: `POST /api/v1/subaccounts/{id}/messages`, checked the way
//! 8x8's spec describes (bearer key, MSISDN pattern, text, 16-character sender ID,
//! 350-character client reference), answering with 8x8's bodies and error codes.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::standin::{accepted_bearer, field, Recorder, Standin};

pub const STANDIN: Standin = Standin {
    service: "8x8",
    tag: "8x8",
    mount: "",
    env: &["SWITCHBOARD_SANDBOX_URL"],
    routes,
    describe: Some(describe),
    seed: None,
};

/// An SMS as a person checks it: to, from, encoding and parts, text.
fn describe(m: &Value) -> String {
    let text = field(m, "text");
    let info = crate::sms::analyse(&text);
    let parts = if info.parts == 1 {
        "1 part".to_string()
    } else {
        format!("{} parts", info.parts)
    };
    format!(
        "8x8 SMS to {} from {} [{}, {parts}]: {text}",
        field(m, "destination"),
        field(m, "source"),
        info.encoding
    )
}

fn routes() -> Router<Recorder> {
    Router::new()
        .route("/api/v1/subaccounts/{subaccount}/messages", post(send_sms))
        .route(
            "/api/v1/subaccounts/{subaccount}/messages/batch",
            post(send_batch),
        )
        .route(
            "/api/v1/subaccounts/{subaccount}/messages/{id}",
            axum::routing::get(get_message),
        )
}

/// "Retrieve SMS details": a message the stand-in accepted, as delivered (its body
/// masked, as 8x8 masks it by default); any other umid is 404 — which is also what
/// `accounts check` asks to tell a good key (404) from a bad one (401).
async fn get_message(
    State(recorder): State<Recorder>,
    Path((subaccount, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = check_request(&headers, &subaccount) {
        return refused;
    }
    let sent = recorder.messages().into_iter().find(|m| {
        m["service"] == "8x8" && m["umid"] == id.as_str() && m["subaccount"] == subaccount.as_str()
    });
    let Some(sms) = sent else {
        return error(StatusCode::NOT_FOUND, 1404, "Not found");
    };
    let text = sms["text"].as_str().unwrap_or_default();
    let info = crate::sms::analyse(text);
    let at = sms["at"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339());
    (
        StatusCode::OK,
        Json(json!({
            "umid": id,
            "subAccountId": subaccount,
            "direction": "outbound",
            "status": {"state": "delivered", "detail": "delivered_to_recipient", "timestamp": at},
            "msisdn": sms["destination"],
            "source": sms.get("source").cloned().unwrap_or(Value::Null),
            "body": "**MASKED**",
            "encoding": if info.encoding == crate::sms::Encoding::Ucs2 { "UCS2" } else { "GSM7" },
            "createdAt": at,
            "smsCount": info.parts,
            "clientMessageId": sms.get("clientMessageId").cloned().unwrap_or(Value::Null),
        })),
    )
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
    crate::sms::analyse(text).encoding == crate::sms::Encoding::Ucs2
}

/// The bearer key and the sub-account, as 8x8 checks them first.
fn check_request(headers: &HeaderMap, subaccount: &str) -> Result<(), (StatusCode, Json<Value>)> {
    let authorized = accepted_bearer(headers);
    if !authorized {
        return Err(error(StatusCode::UNAUTHORIZED, 1200, "Unauthorized"));
    }
    if !is_subaccount(subaccount) {
        return Err(error(StatusCode::BAD_REQUEST, 1000, "Invalid subAccountId"));
    }
    Ok(())
}

/// One message checked as 8x8's spec has it: `Err((code, message))` when it breaks it.
fn check_message(sms: &Map<String, Value>) -> Result<(), (u32, &'static str)> {
    let text_of = |k: &str| sms.get(k).and_then(Value::as_str);
    if !text_of("destination").is_some_and(is_msisdn) {
        return Err((1002, "Invalid MSISDN format"));
    }
    if text_of("text").is_none_or(str::is_empty) {
        return Err((1004, "Invalid text"));
    }
    if text_of("source").is_some_and(|s| s.chars().count() > 16) {
        return Err((1005, "Invalid source"));
    }
    if text_of("clientMessageId").is_some_and(|s| s.chars().count() > 350) {
        return Err((3009, "ClientMessageId too long"));
    }
    Ok(())
}

/// Record an accepted message and answer with its `SmsResponse`.
fn accept(recorder: &Recorder, subaccount: &str, sms: &Map<String, Value>) -> Value {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let umid = format!("5b0c{n:04x}-0000-4000-8000-{n:012x}");
    let text = sms.get("text").and_then(Value::as_str).unwrap_or_default();
    let encoding = if needs_ucs2(text) { "UCS2" } else { "GSM7" };
    let mut recorded = sms.clone();
    recorded.insert("subaccount".into(), Value::String(subaccount.to_string()));
    recorded.insert("umid".into(), Value::String(umid.clone()));
    recorder.push("8x8", Value::Object(recorded));
    json!({
        "umid": umid,
        "clientMessageId": sms.get("clientMessageId").cloned().unwrap_or(Value::Null),
        "destination": sms.get("destination").cloned().unwrap_or(Value::Null),
        "encoding": encoding,
        "status": {"code": "QUEUED", "description": "SMS is accepted and queued for processing"},
    })
}

async fn send_sms(
    State(recorder): State<Recorder>,
    Path(subaccount): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = check_request(&headers, &subaccount) {
        return refused;
    }
    let Ok(Value::Object(sms)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            1000,
            "Request body is not a JSON object",
        );
    };
    match check_message(&sms) {
        Err((code, message)) => error(StatusCode::BAD_REQUEST, code, message),
        Ok(()) => (StatusCode::OK, Json(accept(&recorder, &subaccount, &sms))),
    }
}

/// `POST …/messages/batch`: each message checked alone; rejected ones come back as
/// `REJECTED` in the per-message list, like 8x8 does.
async fn send_batch(
    State(recorder): State<Recorder>,
    Path(subaccount): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = check_request(&headers, &subaccount) {
        return refused;
    }
    let Ok(batch) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, 1000, "Request body is not JSON");
    };
    let Some(messages) = batch
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| (1..=10_000).contains(&m.len()))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            1000,
            "messages must hold 1 to 10000 messages",
        );
    };
    let mut answers = Vec::with_capacity(messages.len());
    let mut rejected = 0;
    for message in messages {
        let sms = message.as_object().cloned().unwrap_or_default();
        answers.push(match check_message(&sms) {
            Ok(()) => accept(&recorder, &subaccount, &sms),
            Err((_, description)) => {
                rejected += 1;
                json!({
                    "umid": format!("rejected-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
                    "clientMessageId": sms.get("clientMessageId").cloned().unwrap_or(Value::Null),
                    "destination": sms.get("destination").cloned().unwrap_or(Value::Null),
                    "encoding": "AUTO",
                    "status": {"code": "REJECTED", "description": description},
                })
            }
        });
    }
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let include = batch
        .get("includeMessagesInResponse")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut response = json!({
        "batchId": format!("ba7c{n:04x}-0000-4000-8000-{n:012x}"),
        "acceptedCount": messages.len() - rejected,
        "rejectedCount": rejected,
    });
    if include {
        response["messages"] = Value::Array(answers);
    }
    (StatusCode::OK, Json(response))
}
