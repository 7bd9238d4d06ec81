//! CINNOX payloads, in either shape, as flat records.

use serde_json::{Map, Value};

/// A normalised CINNOX event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `enquiry.missed`, `contact.created`, `sms.status`, …
    pub name: String,
    /// Identifies the event, so a redelivery is not handled twice — and a second edit,
    /// merge or status change of the same object is a new event ([`identity`]).
    pub key: String,
    /// The seed table's flat fields, plus `event`.
    pub fields: Map<String, Value>,
}

/// CINNOX's subscription handshake: the challenge to echo, if this is one.
pub fn challenge(body: &Value) -> Option<&str> {
    body.get("challenge").and_then(Value::as_str)
}

/// The subscription family an event belongs to (every event of
/// [`EVENTS`](super::config::EVENTS) has one; `None` for any other).
pub fn family_of(event: &str) -> Option<&'static str> {
    match event.split('.').next().unwrap_or_default() {
        "contact" => Some("external-contact-event-sub"),
        "enquiry" => Some("inquiry-event-sub"),
        "label" => Some("inquiry-label-event-sub"),
        "sms" => Some("outbound-sms-event-sub"),
        _ => None,
    }
}

fn text(map: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match map.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn put(out: &mut Map<String, Value>, name: &str, value: Option<String>) {
    if let Some(value) = value {
        out.insert(name.to_string(), Value::String(value));
    }
}

/// Everything else the payload carries, as Zapier passes it on: other text, number and
/// boolean fields under their own names (the seed's names above win), and the first of a
/// contact's `phones` / `emails` as `phone` / `email`.
fn carry_over(inner: &Map<String, Value>, out: &mut Map<String, Value>) {
    for (key, value) in inner {
        if out.contains_key(key) {
            continue;
        }
        match value {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    let first = |list: &str, field: &str| {
        inner
            .get(list)
            .and_then(Value::as_array)
            .and_then(|items| items.first())
            .and_then(|item| text(item.as_object()?, &[field]))
    };
    // CINNOX's contact lists: `{type, number}` and `{type, address}` (docs/apis/cinnox.md:
    // "phone type + number", "email type + address"); `phone` / `email` read too.
    if !out.contains_key("phone") {
        put(
            out,
            "phone",
            first("phones", "number").or_else(|| first("phones", "phone")),
        );
    }
    if !out.contains_key("email") {
        put(
            out,
            "email",
            first("emails", "address").or_else(|| first("emails", "email")),
        );
    }
}

/// What tells one delivery of an event from another: the event's own id when the
/// payload has one, else a digest of the whole payload. CINNOX documents no event id,
/// and a contact's or label's id is the object's, not the event's: keyed on it alone, a
/// second edit of the same contact was taken for a redelivery and dropped. A redelivery
/// repeats the payload byte for byte (same digest); but so do two real edits of one
/// contact in CINNOX's documented shape, which carries no edited field — so a payload
/// key ([`engine::payload_key`]) is one event only within the flow's
/// `redelivery_window`, and a new one after it.
fn identity(top: &Map<String, Value>, inner: &Map<String, Value>) -> String {
    const EVENT_IDS: [&str; 5] = ["eventId", "eventID", "event_id", "messageId", "msgId"];
    if let Some(id) = text(top, &EVENT_IDS).or_else(|| text(inner, &EVENT_IDS)) {
        return format!("#{id}");
    }
    use sha2::{Digest, Sha256};
    // The payload as compact JSON (what `Value::to_string` writes), without copying it.
    let digest = Sha256::digest(serde_json::to_vec(top).unwrap_or_default());
    let hex: String = digest[..6]
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect();
    engine::payload_key(&hex)
}

/// Statuses of the seed's flat contact events (`{status: create, name}`: no other field
/// tells them).
const CONTACT_STATUSES: [&str; 5] = ["create", "edit", "merge", "transfer", "delete"];

/// A contact event in the Zapier table's flat shape: a contact status and a name, and
/// nothing that marks a label (a colour) or an enquiry.
fn flat_contact(inner: &Map<String, Value>) -> bool {
    let status = text(inner, &["status"]).unwrap_or_default().to_lowercase();
    CONTACT_STATUSES.contains(&status.as_str())
        && inner.contains_key("name")
        && !inner.contains_key("colorCode")
        && !inner.contains_key("enquiryID")
        && !inner.contains_key("displayCaseNumber")
}

/// A label event in the flat shape without its colour: `{status: deleted, id, name}` (a
/// deleted label carries none), or an update.
fn flat_label(inner: &Map<String, Value>) -> bool {
    let status = text(inner, &["status"]).unwrap_or_default().to_lowercase();
    matches!(status.as_str(), "deleted" | "update") && inner.contains_key("id")
}

/// Turn a payload into an event, or say why it is not one.
pub fn normalise(body: &Value) -> Result<Event, String> {
    let Value::Object(top) = body else {
        return Err("a CINNOX event is a JSON object".into());
    };
    // The Open API wraps contacts (and other messages) as {type: "message", message: {…}}.
    let (inner, kind) = match top.get("message") {
        Some(Value::Object(message)) => (message, text(message, &["type"]).unwrap_or_default()),
        _ => (top, String::new()),
    };
    let mut out = Map::new();
    let lower = |s: Option<String>| s.map(|s| s.to_lowercase());
    let name;
    let id;
    if text(inner, &["Type", "type"]).as_deref() == Some("tdr")
        || inner.contains_key("TransactionID")
        || inner.contains_key("transactionId")
    {
        // SMS status: {Type: "tdr", TransactionID, RecipientNumber, …} or the flat names.
        put(
            &mut out,
            "transactionId",
            text(inner, &["transactionId", "TransactionID"]),
        );
        put(
            &mut out,
            "recipientNumber",
            text(inner, &["recipientNumber", "RecipientNumber"]),
        );
        put(
            &mut out,
            "recipientCountry",
            text(inner, &["recipientCountry", "RecipientCountry"]),
        );
        put(
            &mut out,
            "responseCode",
            text(inner, &["responseCode", "ResponseCode"]),
        );
        put(&mut out, "status", text(inner, &["status", "Status"]));
        put(
            &mut out,
            "exception",
            text(inner, &["exception", "Exception"]),
        );
        name = "sms.status".to_string();
        id = format!(
            "{}/{}",
            text(&out, &["transactionId"]).unwrap_or_default(),
            text(&out, &["status"]).unwrap_or_default()
        );
    } else if kind == "contact"
        || inner.contains_key("fullName")
        || inner.contains_key("fromOwnerID")
        || flat_contact(inner)
    {
        let status = lower(text(inner, &["status"])).unwrap_or_default();
        put(&mut out, "status", Some(status.clone()));
        put(&mut out, "name", text(inner, &["name", "fullName"]));
        put(&mut out, "id", text(inner, &["id", "contactId"]));
        put(&mut out, "fromOwnerID", text(inner, &["fromOwnerID"]));
        put(&mut out, "toOwnerID", text(inner, &["toOwnerID"]));
        let verb = match status.as_str() {
            "create" => "created",
            "edit" => "edited",
            "merge" => "merged",
            "transfer" => "transferred",
            "delete" => "deleted",
            other => return Err(format!("unknown contact status `{other}`")),
        };
        name = format!("contact.{verb}");
        id = format!(
            "{}/{status}",
            text(&out, &["id", "name"]).unwrap_or_default()
        );
    } else if inner.contains_key("enquiryID")
        || inner.contains_key("displayCaseNumber")
        || kind == "inquiry"
        || kind == "enquiry"
    {
        for (flat, sources) in [
            ("status", &["status"][..]),
            (
                "enquiryID",
                &["enquiryID", "inquiryID", "enquiryId", "inquiryId"],
            ),
            ("displayCaseNumber", &["displayCaseNumber"]),
            ("type", &["type"]),
            ("channel", &["channel"]),
            ("date", &["date"]),
            ("destination", &["destination"]),
            (
                "destination Types",
                &["destination Types", "destinationTypes", "destinationType"],
            ),
        ] {
            let value = if flat == "type" && kind == "inquiry" {
                text(inner, &["enquiryType", "inquiryType"])
            } else {
                text(inner, sources)
            };
            put(&mut out, flat, value);
        }
        let status = lower(text(&out, &["status"])).unwrap_or_default();
        if !["opened", "handling", "closed", "missed"].contains(&status.as_str()) {
            return Err(format!("unknown enquiry status `{status}`"));
        }
        name = format!("enquiry.{status}");
        id = format!(
            "{}/{status}",
            text(&out, &["enquiryID", "displayCaseNumber"]).unwrap_or_default()
        );
    } else if inner.contains_key("colorCode") || kind == "label" || flat_label(inner) {
        let status = lower(text(inner, &["status"])).unwrap_or_default();
        put(&mut out, "status", Some(status.clone()));
        put(&mut out, "id", text(inner, &["id"]));
        put(&mut out, "name", text(inner, &["name"]));
        put(&mut out, "colorCode", text(inner, &["colorCode"]));
        let verb = match status.as_str() {
            "create" => "created",
            "update" => "updated",
            "deleted" | "delete" => "deleted",
            other => return Err(format!("unknown label status `{other}`")),
        };
        name = format!("label.{verb}");
        id = format!("{}/{status}", text(&out, &["id"]).unwrap_or_default());
    } else {
        return Err(
            "not a CINNOX event this connector knows (contact, enquiry, label or SMS status)"
                .into(),
        );
    }
    carry_over(inner, &mut out);
    out.insert("event".into(), Value::String(name.clone()));
    Ok(Event {
        key: format!("{name}:{id}{}", identity(top, inner)),
        name,
        fields: out,
    })
}

/// The events of a webhook body (one event or a list); an event that cannot be read
/// fails the whole body.
pub fn events_of(body: &Value) -> Result<Vec<crate::push::Pushed>, String> {
    crate::push::read_events(body, |item| {
        let event = normalise(item)?;
        Ok((event.name, event.key, event.fields))
    })
}

/// The events of a webhook body that a flow takes, as records, and how many others it
/// ignored.
pub fn records_for(
    body: &Value,
    wanted: &[String],
) -> Result<(Vec<engine::Record>, usize), String> {
    Ok(crate::push::select(&events_of(body)?, wanted))
}
