//! The Google Sheets stand-in: one spreadsheet's values, whatever its id, for an API
//! key or a bearer token, with Google's 403 body without either.

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::standin::{accepted, accepts, Recorder, Standin};

pub const STANDIN: Standin = Standin {
    service: "Google Sheets",
    tag: "google_sheets",
    mount: "",
    env: &["GOOGLE_SHEETS_BASE_URL"],
    routes,
    describe: None,
};

fn routes() -> Router<Recorder> {
    Router::new().route("/v4/spreadsheets/{id}/values/{range}", get(sheet_values))
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
