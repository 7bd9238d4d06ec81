//! The Text Request stand-in, at `/api/v3` (where an account's `base_url` ends): the
//! dashboards list (the account check), `send_message` and `upsert_contact`, with the
//! key in `x-api-key` and Text Request's error bodies.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::standin::{accepted, body_object, field, next_id, Recorder, Standin};

pub const STANDIN: Standin = Standin {
    service: "Text Request",
    tag: "textrequest",
    mount: "/api/v3",
    env: &["TEXTREQUEST_BASE_URL"],
    routes,
    describe: Some(describe),
};

fn routes() -> Router<Recorder> {
    Router::new()
        .route("/dashboards", get(tr_dashboards))
        .route(
            "/dashboards/{dashboard}/contacts/{phone}/messages",
            post(tr_message),
        )
        .route("/dashboards/{dashboard}/contacts/{phone}", post(tr_contact))
        .route(
            "/dashboards/{dashboard}/contacts/{phone}/conversations/archive",
            put(tr_archive),
        )
}

fn describe(m: &Value) -> String {
    if m.get("archived").is_some() {
        return format!(
            "Text Request conversation with {} archived",
            field(m, "phone_number")
        );
    }
    format!(
        "Text Request to {} as {}: {}",
        field(m, "phone_number"),
        field(m, "sender_name"),
        field(m, "body")
    )
}

fn tr_check(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    if !accepted(headers, "x-api-key") {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Invalid API key"})),
        ));
    }
    Ok(())
}

async fn tr_dashboards(headers: HeaderMap) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    (
        StatusCode::OK,
        Json(json!([{"id": 121, "name": "Front desk (stand-in)"}])),
    )
}

async fn tr_message(
    State(recorder): State<Recorder>,
    Path((dashboard, phone)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let Some(mut message) = body_object(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "The request body must be a JSON object"})),
        );
    };
    if message
        .get("body")
        .and_then(Value::as_str)
        .is_none_or(|b| b.trim().is_empty())
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "The body field is required."})),
        );
    }
    let id = next_id();
    message.insert("dashboard_id".into(), json!(dashboard));
    message.insert("phone_number".into(), json!(phone));
    recorder.push("textrequest", Value::Object(message.clone()));
    (
        StatusCode::OK,
        Json(json!({"message_id": id, "delivery_status": "pending", "body": message["body"]})),
    )
}

async fn tr_contact(
    State(recorder): State<Recorder>,
    Path((dashboard, phone)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let mut contact = body_object(&body).unwrap_or_default();
    contact.insert("dashboard_id".into(), json!(dashboard));
    contact.insert("phone_number".into(), json!(phone));
    recorder.push("textrequest", Value::Object(contact.clone()));
    (StatusCode::OK, Json(Value::Object(contact)))
}

async fn tr_archive(
    State(recorder): State<Recorder>,
    Path((dashboard, phone)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    recorder.push(
        "textrequest",
        json!({"dashboard_id": dashboard, "phone_number": phone, "archived": true}),
    );
    (StatusCode::OK, Json(json!("Conversation archived")))
}
