use flows::{CinnoxAccount, Secret};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

#[test]
fn other_payload_fields_and_a_contacts_first_phone_come_along() {
    let contact = normalise(&json!({"type": "message", "message": {"type": "contact", "status": "create", "fullName": "Olena Kovalenko", "id": "c-7", "companyName": "Kovalenko LLC", "phones": [{"type": "mobile", "number": "+380501234567"}, {"type": "work", "number": "+380441112233"}], "emails": [{"type": "work", "address": "olena@example.com"}], "tags": ["vip"]}}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(contact.fields["phone"], "+380501234567", "the first phone");
    assert_eq!(contact.fields["email"], "olena@example.com");
    assert_eq!(contact.fields["companyName"], "Kovalenko LLC");
    assert_eq!(
        contact.fields["name"], "Olena Kovalenko",
        "the seed's name wins"
    );
    assert!(
        !contact.fields.contains_key("tags"),
        "lists are not flattened"
    );
}

#[test]
fn both_documented_shapes_normalise_to_the_seed_tables_names() {
    let flat = normalise(&json!({"status": "Missed", "enquiryID": "e-9", "displayCaseNumber": "42", "type": "Direct Call", "channel": "Virtual Number", "date": "2026-11-21", "destination": "+85230001234", "destination Types": "PSTN"}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(flat.name, "enquiry.missed");
    assert_eq!(flat.fields["displayCaseNumber"], "42");
    assert_eq!(flat.fields["channel"], "Virtual Number");
    assert_eq!(flat.key, "enquiry.missed:e-9/missed");

    let contact = normalise(&json!({"type": "message", "message": {"type": "contact", "status": "create", "fullName": "Olena Kovalenko", "id": "c-1"}}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (contact.name.as_str(), contact.fields["name"].as_str()),
        ("contact.created", Some("Olena Kovalenko"))
    );

    let sms = normalise(&json!({"Type": "tdr", "TransactionID": "t-1", "RecipientNumber": "+85291234567", "Status": "DELIVERED", "ResponseCode": "0"}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sms.name, "sms.status");
    assert_eq!(
        (
            sms.fields["transactionId"].as_str(),
            sms.fields["recipientNumber"].as_str()
        ),
        (Some("t-1"), Some("+85291234567"))
    );

    let label =
        normalise(&json!({"status": "update", "id": "l-1", "name": "VIP", "colorCode": "#ff0000"}))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(label.name, "label.updated");
    let transfer = normalise(
        &json!({"status": "transfer", "name": "Tom", "fromOwnerID": "a", "toOwnerID": "b"}),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(transfer.name, "contact.transferred");

    assert!(normalise(&json!({"hello": "world"})).is_err());
    assert!(normalise(&json!([1, 2])).is_err());
    assert_eq!(challenge(&json!({"challenge": "abc"})), Some("abc"));
    assert_eq!(family_of("enquiry.missed"), "inquiry-event-sub");
    assert_eq!(family_of("contact.created"), "external-contact-event-sub");
    assert_eq!(family_of("sms.status"), "outbound-sms-event-sub");
}

#[tokio::test]
async fn the_webhook_url_is_registered_with_the_event_family() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/v1/api/apps/app-1/inquiry-event-sub"))
        .and(header("authorization", "Bearer tok-1"))
        .and(body_json(json!({"enabled": true, "url": "https://hooks.example.com/hooks/missed"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"enabled": true, "url": "https://hooks.example.com/hooks/missed", "updatedAt": 1})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v1/api/apps/app-1/external-contact-event-sub"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 401, "message": "invalid token"})),
        )
        .mount(&server)
        .await;
    let account = CinnoxAccount {
        app_id: "app-1".into(),
        app_token: Secret::new("tok-1"),
        base_url: server.uri(),
        rate_limit: None,
    };
    subscribe(
        &account,
        "inquiry-event-sub",
        "https://hooks.example.com/hooks/missed",
        true,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let refused = subscribe(
        &account,
        "external-contact-event-sub",
        "https://x/hooks/c",
        true,
    )
    .await
    .err()
    .unwrap_or_default();
    assert!(
        refused.contains("HTTP 401") && refused.contains("was the App Token regenerated?"),
        "{refused}"
    );
}

#[tokio::test]
async fn instant_messages_go_through_message_push() {
    use engine::Receiver;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/api/apps/app-1/message-push"))
        .and(header("authorization", "Bearer tok-1"))
        .and(body_json(json!({"roomID": "r-1", "receiverEID": "staff-7", "messages": [{"type": "text", "text": "Missed call from +85230001234"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/api/apps/app-1/message-push"))
        .and(body_json(
            json!({"roomID": "busy", "messages": [{"type": "text", "text": "x"}]}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": 6451010, "message": "too many requests"})),
        )
        .mount(&server)
        .await;
    let account = CinnoxAccount {
        app_id: "app-1".into(),
        app_token: Secret::new("tok-1"),
        base_url: server.uri(),
        rate_limit: Some(flows::RateLimit::Off),
    };
    let push = MessagePush::new("c", &account, std::time::Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let fields = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let staff = push
        .prepare(fields(json!({"roomID": "r-1", "receiverEID": "staff-7", "text": "Missed call from +85230001234"})), "r")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(push.send(&staff).await.is_ok());
    let busy = push
        .prepare(fields(json!({"roomID": "busy", "text": "x"})), "r")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(
            push.send(&busy).await,
            Err(engine::SendError::Transient { .. })
        ),
        "6451010 is CINNOX's 429"
    );
    assert!(push
        .prepare(fields(json!({"roomID": "r", "text": " "})), "r")
        .is_err());
}
