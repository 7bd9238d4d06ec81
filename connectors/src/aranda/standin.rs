//! The Aranda ASMS stand-in, at `/asms`: cases created, updated, read and searched,
//! notes, attachments, and the connection check, with `TokenAsms` and `UrlAsms` required
//! and Aranda's error codes. Cases read or searched are the ones it created (`RF-<id>`).

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
    seed: Some(seed),
};

/// `{"cases": [{subject, stateName, customerName, …}, …]}`: cases ASMS holds already,
/// each with an `id` (given, or the next one) and `itemType` 1 unless said.
fn seed(recorder: &Recorder, entry: &Value) -> Result<usize, String> {
    let cases = crate::standin::seed_items(entry, "cases")?;
    for (i, case) in cases.iter().enumerate() {
        if !case.get("subject").is_some_and(Value::is_string) {
            return Err(format!("cases[{i}] needs a `subject`"));
        }
        let mut case = (*case).clone();
        case.entry("id").or_insert_with(|| json!(next_id()));
        case.entry("itemType").or_insert(json!(1));
        recorder.seed("aranda", Value::Object(case));
    }
    Ok(cases.len())
}

fn routes() -> Router<Recorder> {
    Router::new()
        .route("/case", post(aranda_create))
        .route("/case/{id}", put(aranda_update).get(aranda_get))
        .route("/case/list", post(aranda_search))
        .route("/case/{id}/note", post(aranda_note))
        .route("/attachment/file", post(aranda_attach))
        .route("/connection", get(aranda_connection))
}

fn describe(m: &Value) -> String {
    if m.get("attachment").is_some() {
        return format!(
            "Aranda case {}: attached {} ({} bytes)",
            field(m, "case"),
            field(m, "attachment"),
            field(m, "bytes")
        );
    }
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

/// The cases created so far, as ASMS shows them (`idByProject` `RF-<id>`, `stateName`),
/// with the updates sent since applied.
fn cases(recorder: &Recorder) -> Vec<Value> {
    let mut cases: Vec<serde_json::Map<String, Value>> = Vec::new();
    for message in recorder.messages() {
        let Value::Object(mut fields) = message else {
            continue;
        };
        if fields.get("service") != Some(&json!("aranda")) {
            continue;
        }
        fields.remove("service");
        if fields.contains_key("itemType") && fields.contains_key("subject") {
            let id = fields.get("id").cloned().unwrap_or(Value::Null);
            fields.insert("idByProject".into(), json!(format!("RF-{id}")));
            fields.entry("stateName").or_insert(json!("Registered"));
            cases.push(fields);
        } else if let Some(target) = fields.get("id").and_then(Value::as_str).map(String::from) {
            // An update (`PUT /case/{id}`): its fields over the case's.
            let found = cases.iter_mut().find(|c| {
                c.get("idByProject") == Some(&json!(target))
                    || c.get("id").map(Value::to_string).as_deref() == Some(target.as_str())
            });
            if let Some(case) = found {
                fields.remove("id");
                // The stand-in's states: 1 registered, 2 in progress, 3 solved.
                if let Some(state) = fields.get("stateId").and_then(Value::as_u64) {
                    let name = match state {
                        1 => "Registered",
                        2 => "In progress",
                        _ => "Solved",
                    };
                    fields.insert("stateName".into(), json!(name));
                }
                case.extend(fields);
            }
        }
    }
    cases.into_iter().map(Value::Object).collect()
}

async fn aranda_get(
    State(recorder): State<Recorder>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = aranda_check(&headers) {
        return refused;
    }
    match cases(&recorder).into_iter().find(|c| {
        c["idByProject"] == id.as_str()
            || c["id"].as_u64().map(|n| n.to_string()) == Some(id.clone())
    }) {
        Some(case) => (StatusCode::OK, Json(case)),
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "not found"}))),
    }
}

async fn aranda_search(
    State(recorder): State<Recorder>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = aranda_check(&headers) {
        return refused;
    }
    let filters = body_object(&body)
        .and_then(|b| b.get("filters").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    if filters.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "CriteriaNeedsSomeArguments"})),
        );
    }
    // Field names as ASMS spells them (`StateName`) against the case's (`stateName`).
    let matches = |case: &Value| {
        filters.iter().all(|f| {
            let name = f["field"].as_str().unwrap_or_default();
            let mut chars = name.chars();
            let key: String = chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default();
            let value = f["value"].as_str().unwrap_or_default();
            let have = match &case[key.as_str()] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match f["operator"].as_str() {
                Some("Like") => have.to_lowercase().contains(&value.to_lowercase()),
                Some("NotEqualTo") => have != value,
                _ => have == value,
            }
        })
    };
    let found: Vec<Value> = cases(&recorder)
        .into_iter()
        .filter(matches)
        .take(20)
        .collect();
    (StatusCode::OK, Json(Value::Array(found)))
}

async fn aranda_attach(
    State(recorder): State<Recorder>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = aranda_check(&headers) {
        return refused;
    }
    let ticket = headers
        .get("ticketId")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let attachment = body_object(&body).unwrap_or_default();
    let (Some(file), Some(name)) = (
        attachment.get("file").and_then(Value::as_str),
        attachment.get("fileName").and_then(Value::as_str),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "RequestNeedsSomeArguments"})),
        );
    };
    if ticket.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "Null parameter name: ticketId"})),
        );
    }
    recorder.push(
        "aranda",
        json!({"case": ticket, "attachment": name, "bytes": file.len() * 3 / 4}),
    );
    (StatusCode::OK, Json(json!({"result": true})))
}
