//! The Aranda ASMS stand-in, at `/asms`: cases created and updated, notes, and the
//! connection check, with `TokenAsms` and `UrlAsms` required and Aranda's error codes.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::standin::{accepted, body_object, field, next_id, Recorder, Standin};

pub const STANDIN: Standin = Standin {
    service: "Aranda",
    tag: "aranda",
    mount: "/asms",
    env: &["ARANDA_BASE_URL"],
    routes,
    describe: Some(describe),
};

fn routes() -> Router<Recorder> {
    Router::new()
        .route("/case", post(aranda_create))
        .route("/case/{id}", put(aranda_update))
        .route("/case/{id}/note", post(aranda_note))
        .route("/connection", get(aranda_connection))
}

fn describe(m: &Value) -> String {
    format!(
        "Aranda case {}: {} ({})",
        field(m, "id"),
        field(m, "subject"),
        field(m, "description")
    )
}

fn aranda_check(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    if !accepted(headers, "TokenAsms") || !accepted(headers, "UrlAsms") {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"code": "TOKEN_INVALID", "message": "TokenAsms and UrlAsms headers are required"}),
            ),
        ));
    }
    Ok(())
}

async fn aranda_create(
    State(recorder): State<Recorder>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = aranda_check(&headers) {
        return refused;
    }
    let Some(mut case) = body_object(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": "INVALID_PARAMETERS", "message": "body is not a JSON object"})),
        );
    };
    for required in [
        "itemType",
        "projectId",
        "serviceId",
        "categoryId",
        "subject",
    ] {
        if !case.contains_key(required) {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"code": "REQUIRED_FIELD", "message": format!("{required} is required")}),
                ),
            );
        }
    }
    let id = next_id();
    case.insert("id".into(), json!(id));
    recorder.push("aranda", Value::Object(case));
    (
        StatusCode::OK,
        Json(json!({"id": id, "idByProject": format!("RF-{id}")})),
    )
}

async fn aranda_update(
    State(recorder): State<Recorder>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = aranda_check(&headers) {
        return refused;
    }
    let mut case = body_object(&body).unwrap_or_default();
    case.insert("id".into(), json!(id));
    recorder.push("aranda", Value::Object(case));
    (StatusCode::OK, Json(json!({"result": true})))
}

async fn aranda_note(
    State(recorder): State<Recorder>,
    Path(id): Path<String>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = aranda_check(&headers) {
        return refused;
    }
    let message = query.get("message").cloned().unwrap_or_default();
    recorder.push("aranda", json!({"case": id, "note": message}));
    (StatusCode::OK, Json(json!({"result": true})))
}

async fn aranda_connection(headers: HeaderMap) -> (StatusCode, Json<Value>) {
    match aranda_check(&headers) {
        Err(refused) => refused,
        Ok(()) => (StatusCode::OK, Json(json!({"result": true}))),
    }
}
