//! The Google Sheets stand-in: one spreadsheet's values, whatever its id, for an API
//! key or a bearer token, with Google's 403 body without either; rows appended and cells
//! changed (`values:batchUpdate`) — a bearer token only, as Google has it — which later
//! reads show; a range's rows and columns as asked, the grid's size (`spreadsheets.get`
//! with `fields=…rowCount`: 1,000 rows, or as many as the sheet has); and a token
//! endpoint (`/token`) for service accounts.

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
    seed: None,
};

fn routes() -> Router<Recorder> {
    Router::new()
        .route(
            "/v4/spreadsheets/{id}/values/{range}",
            get(sheet_values).post(append),
        )
        .route("/v4/spreadsheets/{id}/values:batchUpdate", post(update))
        .route("/v4/spreadsheets/{id}", get(spreadsheet))
        .route("/token", post(token))
}

fn describe(m: &Value) -> String {
    if let Some(cell) = m.get("cell") {
        return format!(
            "Google Sheets cell {} set to {}",
            cell.as_str().unwrap_or_default(),
            m.get("value").map(Value::to_string).unwrap_or_default()
        );
    }
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
    if let Err(refused) = bearer(&headers) {
        return refused;
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
    let n = rows(&recorder).len();
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

/// Writes need a bearer token (a service account), as Google has it.
fn bearer(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    if accepted(headers, "authorization") {
        return Ok(());
    }
    Err((
        StatusCode::UNAUTHORIZED,
        Json(
            json!({"error": {"code": 401, "message": "Request is missing required authentication credential", "status": "UNAUTHENTICATED"}}),
        ),
    ))
}

/// `values:batchUpdate`: each cell of `data` recorded as set; a range that is not one
/// cell is refused as Google refuses a malformed one.
async fn update(
    State(recorder): State<Recorder>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = bearer(&headers) {
        return refused;
    }
    let invalid = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": {"code": 400, "message": format!("Invalid data: {why}"), "status": "INVALID_ARGUMENT"}}),
            ),
        )
    };
    let body = crate::standin::body_object(&body).unwrap_or_default();
    let Some(data) = body.get("data").and_then(Value::as_array) else {
        return invalid("data is missing");
    };
    let mut cells = Vec::new();
    for item in data {
        let (Some(range), Some(value)) = (
            item["range"].as_str(),
            item["values"].get(0).and_then(|row| row.get(0)),
        ) else {
            return invalid("each item needs a range and values");
        };
        let origin = super::range::origin(range);
        if !range.contains(|c: char| c.is_ascii_digit()) {
            return invalid("the stand-in changes single cells");
        }
        cells.push((range.to_string(), origin, value.clone()));
    }
    for (range, origin, value) in &cells {
        recorder.push(
            "google_sheets",
            json!({"spreadsheet": id, "cell": range, "column": origin.column, "row_number": origin.row, "value": value}),
        );
    }
    (
        StatusCode::OK,
        Json(json!({"spreadsheetId": id, "totalUpdatedCells": cells.len()})),
    )
}

/// The sheet as it is now: the built-in rows, the rows appended after them, and the
/// cells changed since (row 1 is the header).
fn rows(recorder: &Recorder) -> Vec<Vec<Value>> {
    let mut rows: Vec<Vec<Value>> = SHEET
        .iter()
        .map(|row| row.iter().map(|c| json!(c)).collect())
        .collect();
    for m in recorder.messages() {
        if m["service"] != "google_sheets" {
            continue;
        }
        if let Some(row) = m.get("row").and_then(Value::as_array) {
            rows.push(row.clone());
        } else if let (Some(column), Some(number)) =
            (m["column"].as_u64(), m["row_number"].as_u64())
        {
            let (column, number) = (column as usize, number as usize);
            if number == 0 || number > rows.len() + 1000 {
                continue;
            }
            if rows.len() < number {
                rows.resize(number, Vec::new());
            }
            let row = &mut rows[number - 1];
            if row.len() <= column {
                row.resize(column + 1, json!(""));
            }
            row[column] = m["value"].clone();
        }
    }
    rows
}

/// A read needs an API key or a bearer token; Google's 403 otherwise.
fn readable(
    query: &std::collections::BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, Json<Value>)> {
    let key_taken = query.get("key").is_some_and(|key| accepts(key));
    if !key_taken && !accepted(headers, "authorization") {
        return Err((
            StatusCode::FORBIDDEN,
            Json(
                json!({"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}}),
            ),
        ));
    }
    Ok(())
}

/// `spreadsheets.get`, as a paged read asks it: how many rows the grid has.
async fn spreadsheet(
    State(recorder): State<Recorder>,
    Path(id): Path<String>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(denied) = readable(&query, &headers) {
        return denied;
    }
    let rows = rows(&recorder).len().max(1000);
    (
        StatusCode::OK,
        Json(json!({
            "spreadsheetId": id,
            "sheets": [{"properties": {"title": "Sheet1", "gridProperties": {"rowCount": rows, "columnCount": 26}}}]
        })),
    )
}

async fn sheet_values(
    State(recorder): State<Recorder>,
    Path((_id, range)): Path<(String, String)>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(denied) = readable(&query, &headers) {
        return denied;
    }
    let extent = super::range::extent(&range);
    // Rows and columns as 0-based offsets: from the range's start to its end, if it says.
    let from_row = extent.origin.row.max(1) - 1;
    let from_column = extent.origin.column;
    let height = extent
        .last_row
        .map_or(usize::MAX, |last| last.saturating_sub(from_row));
    let width = extent
        .last_column
        .map_or(usize::MAX, |last| (last + 1).saturating_sub(from_column));
    let mut values: Vec<Vec<Value>> = rows(&recorder)
        .into_iter()
        .skip(from_row)
        .take(height)
        .map(|row| {
            let mut row: Vec<Value> = row.into_iter().skip(from_column).take(width).collect();
            // Google leaves trailing empty cells (and so empty rows) out.
            let n = row
                .iter()
                .rposition(|c| c != "" && !c.is_null())
                .map_or(0, |i| i + 1);
            row.truncate(n);
            row
        })
        .collect();
    while values.last().is_some_and(Vec::is_empty) {
        values.pop();
    }
    (
        StatusCode::OK,
        Json(json!({"range": range, "majorDimension": "ROWS", "values": values})),
    )
}
