//! The Telegram Bot API stand-in: `POST /bot<token>/sendMessage` and `GET /bot<token>/getMe`
//! under `/telegram`, checked as the Bot API checks them (a token it takes, a chat, 1 to
//! 4096 characters of text, a known `parse_mode`), answering with the Bot API's
//! `{"ok": …}` bodies: a chat whose id begins with `-404` is not found (400), one whose
//! id begins with `-403` has blocked the bot (403).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::standin::{accepts, body_object, field, Recorder, Standin};

pub const STANDIN: Standin = Standin {
    service: "Telegram",
    tag: "telegram",
    mount: "/telegram",
    env: &["TELEGRAM_API_URL"],
    routes,
    describe: Some(describe),
    seed: None,
};

/// A message as a person checks it: the chat and the text.
fn describe(m: &Value) -> String {
    format!(
        "Telegram message to chat {}: {}",
        field(m, "chat_id"),
        field(m, "text")
    )
}

fn routes() -> Router<Recorder> {
    Router::new()
        .route("/{bot}/sendMessage", post(send_message))
        .route("/{bot}/getMe", get(get_me))
}

/// The Bot API's refusal.
fn error(status: StatusCode, description: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({"ok": false, "error_code": status.as_u16(), "description": description})),
    )
}

/// The token of a `/bot<token>/…` path, when the Bot API would take it: a path not
/// naming a bot is 404, a token refused 401.
fn bot(segment: &str) -> Result<&str, (StatusCode, Json<Value>)> {
    let token = segment
        .strip_prefix("bot")
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Not Found"))?;
    if !accepts(token) {
        return Err(error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    Ok(token)
}

async fn get_me(Path(segment): Path<String>) -> (StatusCode, Json<Value>) {
    if let Err(refused) = bot(&segment) {
        return refused;
    }
    (
        StatusCode::OK,
        Json(json!({"ok": true, "result": {
            "id": 7_000_000_001_u64, "is_bot": true, "first_name": "Switchboard sandbox",
            "username": "switchboard_sandbox_bot", "can_join_groups": true
        }})),
    )
}

static NEXT_MESSAGE: AtomicU64 = AtomicU64::new(1);

async fn send_message(
    State(recorder): State<Recorder>,
    Path(segment): Path<String>,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = bot(&segment) {
        return refused;
    }
    let Some(message) = body_object(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad Request: message text is empty",
        );
    };
    let chat = match message.get("chat_id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return error(StatusCode::BAD_REQUEST, "Bad Request: chat_id is empty"),
    };
    let text = message
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if text.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad Request: message text is empty",
        );
    }
    if text.chars().count() > 4096 {
        return error(StatusCode::BAD_REQUEST, "Bad Request: message is too long");
    }
    if let Some(mode) = message.get("parse_mode").and_then(Value::as_str) {
        if !matches!(mode, "HTML" | "MarkdownV2" | "Markdown") {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Bad Request: unsupported parse_mode \"{mode}\""),
            );
        }
    }
    if chat.starts_with("-404") {
        return error(StatusCode::BAD_REQUEST, "Bad Request: chat not found");
    }
    if chat.starts_with("-403") {
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden: bot was blocked by the user",
        );
    }
    let id = NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed);
    let mut recorded = message.clone();
    recorded.insert("message_id".into(), Value::from(id));
    recorder.push("telegram", Value::Object(recorded));
    let date = chrono::Utc::now().timestamp();
    (
        StatusCode::OK,
        Json(json!({"ok": true, "result": {
            "message_id": id,
            "from": {"id": 7_000_000_001_u64, "is_bot": true, "first_name": "Switchboard sandbox"},
            "chat": {"id": message.get("chat_id").cloned().unwrap_or(Value::Null)},
            "date": date,
            "text": text,
        }})),
    )
}
