//! The Text Request stand-in, at `/api/v3` (where an account's `base_url` ends): the
//! dashboards list (the account check), messages sent and read, contacts created or
//! updated, read and deleted, conversations archived and brought back, with the key in
//! `x-api-key` and Text Request's error bodies. Contacts read are the ones it was sent.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post, put};
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
    seed: Some(seed),
};

/// `{"payments": [{customer_phone, amount_requested, status, recipient, reference_number,
/// dashboard_id}, …]}`: payments the dashboards hold already (dashboard 121 and status
/// `requested` unless said), each with the next payment number.
fn seed(recorder: &Recorder, entry: &Value) -> Result<usize, String> {
    let payments = crate::standin::seed_items(entry, "payments")?;
    for (i, payment) in payments.iter().enumerate() {
        let amount = payment.get("amount_requested").and_then(Value::as_f64);
        if !payment.get("customer_phone").is_some_and(Value::is_string) || amount.is_none() {
            return Err(format!(
                "payments[{i}] needs `customer_phone` and a numeric `amount_requested`"
            ));
        }
        let mut stored = (*payment).clone();
        let dashboard = match stored.remove("dashboard_id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s,
            _ => "121".to_string(),
        };
        stored.insert("dashboard_id".into(), json!(dashboard));
        stored.insert("payment".into(), json!(next_id()));
        stored.entry("status").or_insert(json!("requested"));
        recorder.seed("textrequest", Value::Object(stored));
    }
    Ok(payments.len())
}

fn routes() -> Router<Recorder> {
    Router::new()
        .route("/dashboards", get(tr_dashboards).post(tr_create_dashboard))
        .route(
            "/dashboards/{dashboard}",
            get(tr_get_dashboard)
                .put(tr_rename_dashboard)
                .merge(delete(tr_delete_dashboard)),
        )
        .route(
            "/dashboards/{dashboard}/contacts/{phone}/messages",
            post(tr_message).get(tr_messages),
        )
        .route(
            "/dashboards/{dashboard}/contacts/{phone}",
            post(tr_contact)
                .get(tr_get_contact)
                .merge(delete(tr_delete)),
        )
        .route(
            "/dashboards/{dashboard}/contacts/{phone}/conversations/archive",
            put(tr_archive),
        )
        .route(
            "/dashboards/{dashboard}/contacts/{phone}/conversations/unarchive",
            put(tr_unarchive),
        )
        .route(
            "/dashboards/{dashboard}/payments",
            post(tr_create_payment).get(tr_list_payments),
        )
        .route(
            "/dashboards/{dashboard}/payments/{payment}",
            get(tr_get_payment),
        )
        .route(
            "/dashboards/{dashboard}/payments/{payment}/{verb}",
            post(tr_payment_verb),
        )
        .route(
            "/dashboards/{dashboard}/contacts",
            get(tr_list_contacts).post(tr_bulk_contacts),
        )
        .route("/dashboards/{dashboard}/tags", get(tr_list_tags))
        .route("/dashboards/{dashboard}/fields", get(tr_list_fields))
        .route(
            "/dashboards/{dashboard}/conversations",
            get(tr_list_conversations),
        )
        .route(
            "/dashboards/{dashboard}/groups",
            post(tr_create_group).get(tr_list_groups),
        )
        .route(
            "/dashboards/{dashboard}/groups/{group}",
            get(tr_get_group)
                .put(tr_update_group)
                .merge(delete(tr_delete_group)),
        )
}

fn describe(m: &Value) -> String {
    if let Some(archived) = m.get("archived").and_then(Value::as_bool) {
        return format!(
            "Text Request conversation with {} {}",
            field(m, "phone_number"),
            if archived { "archived" } else { "brought back" }
        );
    }
    if let Some(group) = m.get("group") {
        return format!(
            "Text Request group {group} {}",
            if m.get("deleted").is_some() {
                "deleted".to_string()
            } else {
                format!("named {}", field(m, "name"))
            }
        );
    }
    if let Some(payment) = m.get("payment") {
        return format!("Text Request payment {} {}", payment, field(m, "status"));
    }
    if m.get("deleted").is_some() {
        return format!("Text Request contact {} deleted", field(m, "phone_number"));
    }
    if m.get("body").is_none() {
        let name = ["display_name", "first_name"]
            .iter()
            .find_map(|k| m.get(*k).and_then(Value::as_str))
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        return format!(
            "Text Request contact {}{name} saved",
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
        page_of(vec![json!({"id": 121, "name": "Front desk (stand-in)"})]),
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

/// The bulk update: each contact of the list recorded as its own upsert.
async fn tr_bulk_contacts(
    State(recorder): State<Recorder>,
    Path(dashboard): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let Ok(Value::Array(contacts)) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!("Bad, missing, or invalid data: a list of contacts")),
        );
    };
    let mut answered = Vec::new();
    for contact in contacts {
        let Value::Object(mut contact) = contact else {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!(
                    "Bad, missing, or invalid data: each contact is an object"
                )),
            );
        };
        if !contact.get("phone_number").is_some_and(Value::is_string) {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!("Bad, missing, or invalid data: phone_number")),
            );
        }
        contact.insert("dashboard_id".into(), json!(dashboard));
        recorder.push("textrequest", Value::Object(contact.clone()));
        answered.push(Value::Object(contact));
    }
    (StatusCode::OK, Json(Value::Array(answered)))
}

async fn tr_archive(
    state: State<Recorder>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    conversation(state, path, headers, true).await
}

async fn tr_unarchive(
    state: State<Recorder>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    conversation(state, path, headers, false).await
}

/// A conversation archived, or brought back.
async fn conversation(
    State(recorder): State<Recorder>,
    Path((dashboard, phone)): Path<(String, String)>,
    headers: HeaderMap,
    archived: bool,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    recorder.push(
        "textrequest",
        json!({"dashboard_id": dashboard, "phone_number": phone, "archived": archived}),
    );
    let answer = if archived {
        "Conversation archived"
    } else {
        "Conversation unarchived"
    };
    (StatusCode::OK, Json(json!(answer)))
}

/// What the stand-in was sent for `phone` on `dashboard`, in order.
fn sent_for(recorder: &Recorder, dashboard: &str, phone: &str) -> Vec<Value> {
    recorder
        .messages()
        .into_iter()
        .filter(|m| {
            m["service"] == "textrequest"
                && m["dashboard_id"] == dashboard
                && m["phone_number"] == phone
        })
        .collect()
}

async fn tr_get_contact(
    State(recorder): State<Recorder>,
    Path((dashboard, phone)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    // The contact as the upserts sent made it; none: not found.
    let mut contact = serde_json::Map::new();
    for sent in sent_for(&recorder, &dashboard, &phone) {
        if sent.get("body").is_some() || sent.get("archived").is_some() {
            continue;
        }
        if sent.get("deleted").is_some() {
            contact.clear();
            continue;
        }
        if let Value::Object(fields) = sent {
            contact.extend(fields);
        }
    }
    contact.remove("service");
    if contact.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Contact not found"})),
        );
    }
    (StatusCode::OK, Json(Value::Object(contact)))
}

async fn tr_messages(
    State(recorder): State<Recorder>,
    Path((dashboard, phone)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let messages: Vec<Value> = sent_for(&recorder, &dashboard, &phone)
        .into_iter()
        .filter(|m| m.get("body").is_some())
        .map(|m| json!({"body": m["body"], "message_direction": "S"}))
        .rev()
        .take(50)
        .collect();
    (StatusCode::OK, Json(Value::Array(messages)))
}

async fn tr_delete(
    State(recorder): State<Recorder>,
    Path((dashboard, phone)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    // Text Request refuses to delete a contact with message history.
    if sent_for(&recorder, &dashboard, &phone)
        .iter()
        .any(|m| m.get("body").is_some())
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "A contact with message history cannot be deleted"})),
        );
    }
    recorder.push(
        "textrequest",
        json!({"dashboard_id": dashboard, "phone_number": phone, "deleted": true}),
    );
    (StatusCode::OK, Json(json!("Contact deleted")))
}

/// The latest word on payment `id` of `dashboard`.
fn payment(recorder: &Recorder, dashboard: &str, id: &str) -> Option<Value> {
    let number: u64 = id.parse().ok()?;
    recorder.messages().into_iter().rfind(|m| {
        m["service"] == "textrequest" && m["dashboard_id"] == dashboard && m["payment"] == number
    })
}

async fn tr_create_payment(
    State(recorder): State<Recorder>,
    Path(dashboard): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let request = body_object(&body).unwrap_or_default();
    let amount = request.get("amount_requested").and_then(Value::as_f64);
    if request.get("customer_phone").is_none() || amount.is_none_or(|a| a <= 0.0) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "customer_phone and a positive amount_requested are required"})),
        );
    }
    let id = next_id();
    let mut stored = request.clone();
    stored.insert("dashboard_id".into(), json!(dashboard));
    stored.insert("payment".into(), json!(id));
    stored.insert("status".into(), json!("requested"));
    recorder.push("textrequest", Value::Object(stored));
    (
        StatusCode::OK,
        Json(json!({"id": id, "status": "requested"})),
    )
}

async fn tr_get_payment(
    State(recorder): State<Recorder>,
    Path((dashboard, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    match payment(&recorder, &dashboard, &id) {
        Some(mut found) => {
            if let Some(map) = found.as_object_mut() {
                map.remove("service");
                map.insert("id".into(), map["payment"].clone());
            }
            (StatusCode::OK, Json(found))
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Payment not found"})),
        ),
    }
}

async fn tr_payment_verb(
    State(recorder): State<Recorder>,
    Path((dashboard, id, verb)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let status = match verb.as_str() {
        "mark_as_paid" => "paid",
        "resend" => "reminded",
        "cancel" => "cancelled",
        _ => return (StatusCode::NOT_FOUND, Json(json!({"message": "Not found"}))),
    };
    let Some(mut found) = payment(&recorder, &dashboard, &id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Payment not found"})),
        );
    };
    if let Some(map) = found.as_object_mut() {
        map.insert("status".into(), json!(status));
        map.remove("service");
    }
    recorder.push("textrequest", found);
    (StatusCode::OK, Json(json!({"id": id, "status": status})))
}

/// The dashboard's payments, each in its latest state, as Text Request pages them.
async fn tr_list_payments(
    State(recorder): State<Recorder>,
    Path(dashboard): Path<String>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let mut latest: std::collections::BTreeMap<u64, Value> = std::collections::BTreeMap::new();
    for m in recorder.messages() {
        if m["service"] == "textrequest" && m["dashboard_id"] == dashboard.as_str() {
            if let Some(id) = m["payment"].as_u64() {
                latest.insert(id, m);
            }
        }
    }
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let size: usize = query
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50)
        .max(1);
    let items: Vec<Value> = latest
        .iter()
        .skip(page * size)
        .take(size)
        .map(|(id, m)| {
            json!({
                "payment_id": id,
                "recipient": m.get("recipient").cloned().unwrap_or(Value::Null),
                "customer_phone": m["customer_phone"],
                "amount_requested": m["amount_requested"],
                "reference_number": m["reference_number"],
                "textrequest_payment_status": m["status"],
            })
        })
        .collect();
    (
        StatusCode::OK,
        Json(
            json!({"meta": {"page": page, "page_size": size, "total_items": latest.len()}, "items": items}),
        ),
    )
}

/// The latest word on group `id` of `dashboard` (none once deleted).
fn group(recorder: &Recorder, dashboard: &str, id: u64) -> Option<Value> {
    recorder
        .messages()
        .into_iter()
        .rfind(|m| {
            m["service"] == "textrequest" && m["dashboard_id"] == dashboard && m["group"] == id
        })
        .filter(|g| g.get("deleted").is_none())
}

async fn tr_create_group(
    State(recorder): State<Recorder>,
    Path(dashboard): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let mut stored = body_object(&body).unwrap_or_default();
    if stored
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(|n| n.trim().is_empty())
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "The name field is required."})),
        );
    }
    let id = next_id();
    stored.insert("dashboard_id".into(), json!(dashboard));
    stored.insert("group".into(), json!(id));
    recorder.push("textrequest", Value::Object(stored.clone()));
    (
        StatusCode::OK,
        Json(json!({"id": id, "name": stored["name"]})),
    )
}

async fn tr_get_group(
    State(recorder): State<Recorder>,
    Path((dashboard, id)): Path<(String, u64)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    match group(&recorder, &dashboard, id) {
        Some(found) => (
            StatusCode::OK,
            Json(json!({"id": id, "name": found["name"], "notes": found["notes"]})),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Group not found"})),
        ),
    }
}

async fn tr_update_group(
    State(recorder): State<Recorder>,
    Path((dashboard, id)): Path<(String, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let Some(Value::Object(mut stored)) = group(&recorder, &dashboard, id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Group not found"})),
        );
    };
    stored.remove("service");
    stored.extend(body_object(&body).unwrap_or_default());
    recorder.push("textrequest", Value::Object(stored.clone()));
    (
        StatusCode::OK,
        Json(json!({"id": id, "name": stored["name"]})),
    )
}

async fn tr_delete_group(
    State(recorder): State<Recorder>,
    Path((dashboard, id)): Path<(String, u64)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    if group(&recorder, &dashboard, id).is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Group not found"})),
        );
    }
    recorder.push(
        "textrequest",
        json!({"dashboard_id": dashboard, "group": id, "deleted": true}),
    );
    (StatusCode::OK, Json(json!("Group deleted")))
}

/// The dashboard's contacts as the upserts sent made them, paged as Text Request pages.
async fn tr_list_contacts(
    State(recorder): State<Recorder>,
    Path(dashboard): Path<String>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let mut contacts: std::collections::BTreeMap<String, serde_json::Map<String, Value>> =
        std::collections::BTreeMap::new();
    for m in recorder.messages() {
        let upsert = m["service"] == "textrequest"
            && m["dashboard_id"] == dashboard.as_str()
            && m.get("body").is_none()
            && m.get("archived").is_none()
            && m.get("payment").is_none()
            && m.get("group").is_none();
        let (true, Some(phone), Value::Object(fields)) = (
            upsert,
            m["phone_number"].as_str().map(String::from),
            m.clone(),
        ) else {
            continue;
        };
        if fields.contains_key("deleted") {
            contacts.remove(&phone);
            continue;
        }
        let contact = contacts.entry(phone).or_default();
        contact.extend(fields);
        contact.remove("service");
    }
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let size: usize = query
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50)
        .max(1);
    let items: Vec<Value> = contacts
        .values()
        .skip(page * size)
        .take(size)
        .map(|c| Value::Object(c.clone()))
        .collect();
    (
        StatusCode::OK,
        Json(
            json!({"meta": {"page": page, "page_size": size, "total_items": contacts.len()}, "items": items}),
        ),
    )
}

/// The latest word on dashboard `id` (the stand-in's own 121 is always there).
fn dashboard(recorder: &Recorder, id: u64) -> Option<Value> {
    let found = recorder
        .messages()
        .into_iter()
        .rfind(|m| m["service"] == "textrequest" && m["dashboard"] == id);
    match found {
        Some(d) if d.get("deleted").is_some() => None,
        Some(d) => Some(json!({"id": id, "name": d["name"], "phone": d["phone"]})),
        None if id == 121 => Some(json!({"id": 121, "name": "Front desk (stand-in)"})),
        None => None,
    }
}

async fn tr_create_dashboard(
    State(recorder): State<Recorder>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let mut stored = body_object(&body).unwrap_or_default();
    if stored
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(|n| n.trim().is_empty())
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "The name field is required."})),
        );
    }
    let id = next_id();
    stored.insert("dashboard".into(), json!(id));
    recorder.push("textrequest", Value::Object(stored.clone()));
    (
        StatusCode::OK,
        Json(json!({"id": id, "name": stored["name"]})),
    )
}

async fn tr_get_dashboard(
    State(recorder): State<Recorder>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    match dashboard(&recorder, id) {
        Some(found) => (StatusCode::OK, Json(found)),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Dashboard not found"})),
        ),
    }
}

async fn tr_rename_dashboard(
    State(recorder): State<Recorder>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let Some(Value::Object(mut stored)) = dashboard(&recorder, id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Dashboard not found"})),
        );
    };
    stored.remove("id");
    stored.extend(body_object(&body).unwrap_or_default());
    stored.insert("dashboard".into(), json!(id));
    recorder.push("textrequest", Value::Object(stored.clone()));
    (
        StatusCode::OK,
        Json(json!({"id": id, "name": stored["name"]})),
    )
}

async fn tr_delete_dashboard(
    State(recorder): State<Recorder>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    if dashboard(&recorder, id).is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Dashboard not found"})),
        );
    }
    recorder.push("textrequest", json!({"dashboard": id, "deleted": true}));
    (StatusCode::OK, Json(json!("Dashboard deleted")))
}

/// A page of `items`, as Text Request's lists answer.
fn page_of(items: Vec<Value>) -> Json<Value> {
    let total = items.len();
    Json(json!({"meta": {"page": 0, "page_size": 100, "total_items": total}, "items": items}))
}

/// The tags the contacts upserted carry.
async fn tr_list_tags(
    State(recorder): State<Recorder>,
    Path(dashboard): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let mut names: Vec<String> = recorder
        .messages()
        .iter()
        .filter(|m| m["service"] == "textrequest" && m["dashboard_id"] == dashboard.as_str())
        .flat_map(|m| m["contact_tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    names.sort();
    names.dedup();
    let items = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| json!({"id": i + 1, "name": name}))
        .collect();
    (StatusCode::OK, page_of(items))
}

/// The stand-in dashboard's custom fields.
async fn tr_list_fields(headers: HeaderMap) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    (
        StatusCode::OK,
        Json(json!([{"id": "f-1", "name": "Loyalty tier"}, {"id": "f-2", "name": "Birthday"}])),
    )
}

/// The groups created and not deleted.
async fn tr_list_groups(
    State(recorder): State<Recorder>,
    Path(dashboard): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let mut ids: Vec<u64> = recorder
        .messages()
        .iter()
        .filter(|m| m["service"] == "textrequest" && m["dashboard_id"] == dashboard.as_str())
        .filter_map(|m| m["group"].as_u64())
        .collect();
    ids.sort();
    ids.dedup();
    let items = ids
        .into_iter()
        .filter_map(|id| {
            group(&recorder, &dashboard, id).map(|g| json!({"id": id, "name": g["name"]}))
        })
        .collect();
    (StatusCode::OK, page_of(items))
}

/// One conversation per number texted, found by `search` in its messages.
async fn tr_list_conversations(
    State(recorder): State<Recorder>,
    Path(dashboard): Path<String>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = tr_check(&headers) {
        return refused;
    }
    let search = query
        .get("search")
        .map(|s| s.to_lowercase())
        .unwrap_or_default();
    let mut phones: Vec<String> = recorder
        .messages()
        .iter()
        .filter(|m| m["service"] == "textrequest" && m["dashboard_id"] == dashboard.as_str())
        .filter(|m| {
            m["body"]
                .as_str()
                .is_some_and(|b| b.to_lowercase().contains(&search))
        })
        .filter_map(|m| m["phone_number"].as_str().map(String::from))
        .collect();
    phones.sort();
    phones.dedup();
    let items = phones
        .into_iter()
        .map(|phone| json!({"contact_phone_number": phone}))
        .collect();
    (StatusCode::OK, page_of(items))
}
