//! The CINNOX Open API stand-in: event subscriptions, message push, external contacts
//! created and listed, with the App Token as bearer and CINNOX's error bodies.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::standin::{accepted_bearer, body_object, next_id, Recorder, Standin};

pub const STANDIN: Standin = Standin {
    service: "CINNOX",
    tag: "cinnox",
    mount: "",
    env: &["CINNOX_BASE_URL"],
    routes,
    describe: Some(describe),
    seed: None,
};

fn routes() -> Router<Recorder> {
    Router::new()
        .route("/v1/api/apps/{app}/message-push", post(cinnox_push))
        .route(
            "/v1/api/apps/{app}/management/create_externalcontact",
            post(cinnox_contact),
        )
        .route(
            "/v1/api/apps/{app}/management/update_externalcontact/{id}",
            put(cinnox_update_contact),
        )
        .route(
            "/v1/api/apps/{app}/contacts/extcontact-list",
            get(cinnox_contacts),
        )
        .route(
            "/v1/api/apps/{app}/data/enquiry-detail",
            get(cinnox_enquiry),
        )
        .route("/v1/api/apps/{app}/{family}", patch(cinnox_subscription))
}

fn describe(m: &Value) -> String {
    let plain: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            !matches!(k.as_str(), "service" | "id" | "updated") && !v.is_object() && !v.is_array()
        })
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k} {s}"),
            other => format!("{k} {other}"),
        })
        .collect();
    let id = crate::standin::field(m, "id");
    match (m.get("updated"), m.get("id")) {
        (Some(_), Some(_)) => format!("CINNOX contact {id} updated: {}", plain.join(", ")),
        (None, Some(_)) if m.get("firstName").is_some() || m.get("phones").is_some() => {
            format!("CINNOX contact {id} created: {}", plain.join(", "))
        }
        _ => format!("cinnox: {}", serde_json::to_string(m).unwrap_or_default()),
    }
}

/// `PUT …/management/update_externalcontact/{id}`: the change recorded.
async fn cinnox_update_contact(
    State(recorder): State<Recorder>,
    Path((_app, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = cinnox_check(&headers) {
        return refused;
    }
    let Some(mut contact) = body_object(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 400, "message": "body is not a JSON object"})),
        );
    };
    contact.insert("id".into(), json!(id));
    contact.insert("updated".into(), json!(true));
    recorder.push("cinnox", Value::Object(contact));
    (StatusCode::OK, Json(json!({"code": 0, "id": id})))
}

fn cinnox_check(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    let bearer = accepted_bearer(headers);
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
/// `GET …/data/enquiry-detail?displayCaseNumber=`: the enquiries of the examples' events
/// (their visitors are the contacts the stand-in lists), as the seed's "get enquiry
/// details" describes them; another number finds nothing.
async fn cinnox_enquiry(
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = cinnox_check(&headers) {
        return refused;
    }
    let number = query.get("displayCaseNumber").map(String::as_str);
    let (visitor, first, last) = match number {
        Some("42") => ("v-7", "Olena", "Kovalenko"),
        Some("43") => ("v-8", "Ivan", "Franko"),
        _ => return (StatusCode::OK, Json(json!({"code": 0, "result": []}))),
    };
    let number = number.unwrap_or_default();
    (
        StatusCode::OK,
        Json(json!({"code": 0, "result": {
            "inquiry": format!("e-{number}"),
            "displayCaseNumber": number,
            "status": "Missed",
            "initChannel": "CALL",
            "visitor": visitor,
            "visitorName": format!("{first} {last}"),
            "visitorFirstName": first,
            "visitorLastName": last,
        }})),
    )
}

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
            {"id": "c-2", "firstName": "María", "lastName": "García", "mobilePhone": "+34612345678", "customerType": "Lead"},
            {"id": "c-3", "firstName": "Petro", "lastName": "Shevchenko", "mobilePhone": "+380931234567", "customerType": "Prospect"}
        ])
    } else {
        json!([])
    };
    (StatusCode::OK, Json(json!({"code": 0, "result": contacts})))
}
