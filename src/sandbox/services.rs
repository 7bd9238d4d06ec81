//! Stand-ins for Text Request, Aranda ASMS, CINNOX and Google Sheets: the paths, headers
//! and answers of the real APIs (see `../shared/docs/apis/`), enough for the bundled
//! examples to run with no network. Each accepted request is recorded with its
//! `service`; a missing credential gets the service's own 401/403 shape.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::Recorder;

static NEXT_ID: AtomicU64 = AtomicU64::new(900);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub fn routes() -> Router<Recorder> {
    Router::new()
        // Text Request (base URL ends in /api/v3)
        .route("/api/v3/dashboards", get(tr_dashboards))
        .route(
            "/api/v3/dashboards/{dashboard}/contacts/{phone}/messages",
            post(tr_message),
        )
        .route(
            "/api/v3/dashboards/{dashboard}/contacts/{phone}",
            post(tr_contact),
        )
        // Aranda ASMS
        .route("/asms/case", post(aranda_create))
        .route("/asms/case/{id}", axum::routing::put(aranda_update))
        .route("/asms/case/{id}/note", post(aranda_note))
        .route("/asms/connection", get(aranda_connection))
        // CINNOX Open API
        .route("/v1/api/apps/{app}/message-push", post(cinnox_push))
        .route(
            "/v1/api/apps/{app}/management/create_externalcontact",
            post(cinnox_contact),
        )
        .route(
            "/v1/api/apps/{app}/contacts/extcontact-list",
            get(cinnox_contacts),
        )
        .route("/v1/api/apps/{app}/{family}", patch(cinnox_subscription))
        // Google Sheets
        .route("/v4/spreadsheets/{id}/values/{range}", get(sheet_values))
}

fn body_object(body: &Bytes) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn has(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty())
}

// --- Text Request -------------------------------------------------------------------

fn tr_check(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    if !has(headers, "x-api-key") {
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

// --- Aranda ASMS --------------------------------------------------------------------

fn aranda_check(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    if !has(headers, "TokenAsms") || !has(headers, "UrlAsms") {
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

// --- CINNOX -------------------------------------------------------------------------

fn cinnox_check(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    let bearer = super::has_bearer(headers);
    if !bearer {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 401, "message": "invalid token"})),
        ));
    }
    Ok(())
}

async fn cinnox_subscription(
    Path((_app, family)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = cinnox_check(&headers) {
        return refused;
    }
    if !family.ends_with("-event-sub") {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"code": 404, "message": "not found"})),
        );
    }
    let mut sub = body_object(&body).unwrap_or_default();
    sub.insert("updatedAt".into(), json!(chrono::Utc::now().timestamp()));
    (StatusCode::OK, Json(Value::Object(sub)))
}

async fn cinnox_push(
    State(recorder): State<Recorder>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = cinnox_check(&headers) {
        return refused;
    }
    let Some(push) = body_object(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 6451000, "message": "wrong parameter"})),
        );
    };
    recorder.push("cinnox", Value::Object(push));
    (StatusCode::OK, Json(json!({"code": 0})))
}

async fn cinnox_contact(
    State(recorder): State<Recorder>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = cinnox_check(&headers) {
        return refused;
    }
    let mut contact = body_object(&body).unwrap_or_default();
    let id = format!("ec-{}", next_id());
    contact.insert("id".into(), json!(id));
    recorder.push("cinnox", Value::Object(contact));
    (StatusCode::OK, Json(json!({"code": 0, "id": id})))
}

/// The stand-in's external contacts, one page whatever the offset.
async fn cinnox_contacts(
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = cinnox_check(&headers) {
        return refused;
    }
    let first_page = query.get("offset").is_none_or(|o| o == "0");
    let contacts = if first_page {
        json!([
            {"id": "c-1", "firstName": "Olena", "lastName": "Kovalenko", "mobilePhone": "+380501234567", "email": "olena@example.com", "customerType": "Customer"},
            {"id": "c-2", "firstName": "María", "lastName": "García", "mobilePhone": "+34612345678", "customerType": "Lead"}
        ])
    } else {
        json!([])
    };
    (StatusCode::OK, Json(json!({"code": 0, "result": contacts})))
}

// --- Google Sheets ------------------------------------------------------------------

/// The stand-in's one spreadsheet, whatever its id: new orders with a phone number.
const SHEET: &[[&str; 4]] = &[
    ["order_id", "name", "phone", "status"],
    ["S-2001", "Olena Kovalenko", "+380501234567", "paid"],
    ["S-2002", "Taras Shevchenko", "+380671112233", "paid"],
    ["", "", "", ""],
    ["S-2003", "María García", "+34612345678", "shipped"],
];

async fn sheet_values(
    Path((_id, range)): Path<(String, String)>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if !query.contains_key("key") && !has(&headers, "authorization") {
        return (
            StatusCode::FORBIDDEN,
            Json(
                json!({"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}}),
            ),
        );
    }
    let values: Vec<Vec<&str>> = SHEET
        .iter()
        .map(|row| {
            // Google leaves trailing empty cells (and so empty rows) out.
            let n = row.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1);
            row[..n].to_vec()
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({"range": range, "majorDimension": "ROWS", "values": values})),
    )
}
