//! The Google Sheets stand-in: one spreadsheet's values, whatever its id, for an API
//! key or a bearer token, with Google's 403 body without either; rows appended (a bearer
//! token only, as Google has it), and a token endpoint (`/token`) for service accounts.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::standin::{accepted, accepts, Recorder, Standin};

pub const STANDIN: Standin = Standin {
    service: "Google Sheets",
    tag: "google_sheets",
    mount: "",
    env: &["GOOGLE_SHEETS_BASE_URL"],
    routes,
    describe: Some(describe),
};

fn routes() -> Router<Recorder> {
    Router::new()
        .route(
            "/v4/spreadsheets/{id}/values/{range}",
            get(sheet_values).post(append),
        )
        .route("/token", post(token))
}

fn describe(m: &Value) -> String {
    format!(
        "Google Sheets row appended to {}: {}",
        crate::standin::field(m, "range"),
        m.get("row").map(Value::to_string).unwrap_or_default()
    )
}

/// A service account's token: any signed assertion gets one.
async fn token(body: Bytes) -> (StatusCode, Json<Value>) {
    if !String::from_utf8_lossy(&body).contains("assertion=") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "assertion missing"})),
        );
    }
    (
        StatusCode::OK,
        Json(json!({"access_token": "ya29.sandbox", "expires_in": 3599, "token_type": "Bearer"})),
    )
}

/// `…/values/{range}:append`: the row is recorded; Google says where it went.
async fn append(
    State(recorder): State<Recorder>,
    Path((id, range)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let Some(range) = range.strip_suffix(":append") else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})),
        );
    };
    if !accepted(&headers, "authorization") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"error": {"code": 401, "message": "Request is missing required authentication credential", "status": "UNAUTHENTICATED"}}),
            ),
        );
    }
    let row = crate::standin::body_object(&body)
        .and_then(|b| b.get("values").and_then(|v| v.get(0)).cloned())
        .unwrap_or(Value::Null);
    if !row.is_array() {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": {"code": 400, "message": "Invalid values", "status": "INVALID_ARGUMENT"}}),
            ),
        );
    }
    recorder.push(
        "google_sheets",
        json!({"spreadsheet": id, "range": range, "row": row}),
    );
    let n = recorder.messages().len() + 6;
    (
        StatusCode::OK,
        Json(
            json!({"spreadsheetId": id, "updates": {"updatedRange": format!("{range}!A{n}"), "updatedRows": 1}}),
        ),
    )
}

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
    let key_taken = query.get("key").is_some_and(|key| accepts(key));
    if !key_taken && !accepted(&headers, "authorization") {
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
