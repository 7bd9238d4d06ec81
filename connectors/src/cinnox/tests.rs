use super::config::Account as CinnoxAccount;
use flows::Secret;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

#[test]
fn other_payload_fields_and_a_contacts_first_phone_come_along() {
    let contact = normalise(&json!({"type": "message", "message": {"type": "contact", "status": "create", "fullName": "Olena Kovalenko", "id": "c-7", "companyName": "Kovalenko LLC", "phones": [{"type": "mobile", "number": "+380501234567"}, {"type": "work", "number": "+380441112233"}], "emails": [{"type": "work", "address": "olena@example.com"}], "tags": ["vip"]}}))
        .expect("the payload is understood");
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

/// A redelivery of one event has its key; a second edit (or merge, or reopening) of the
/// same object is another event, with a key of its own; an event id, when the payload
/// has one, is the identity.
#[test]
fn each_event_has_its_own_identity_and_a_redelivery_the_same() {
    let edit = |name: &str| json!({"type": "message", "message": {"type": "contact", "status": "edit", "fullName": name, "id": "c-7"}});
    let key = |body: &serde_json::Value| normalise(body).map(|e| e.key).unwrap_or_default();
    assert_eq!(
        key(&edit("Olena K.")),
        key(&edit("Olena K.")),
        "a redelivery"
    );
    let keys: std::collections::BTreeSet<String> = ["A", "B", "C", "D", "E"]
        .iter()
        .map(|n| key(&edit(n)))
        .collect();
    assert_eq!(keys.len(), 5, "five edits, five events: {keys:?}");
    assert!(keys
        .iter()
        .all(|k| k.starts_with("contact.edited:c-7/edit#")));
    let reopened = |at: &str| json!({"status": "Opened", "enquiryID": "e-9", "date": at});
    assert_ne!(
        key(&reopened("2026-11-21T10:00:00Z")),
        key(&reopened("2026-11-22T09:00:00Z"))
    );
    let with_id = json!({"eventId": "ev-1", "status": "Opened", "enquiryID": "e-9"});
    assert_eq!(key(&with_id), "enquiry.opened:e-9/opened#ev-1");
    // Without an event id the payload is the identity, and the run knows it (identical
    // payloads are one event only within the flow's redelivery window); with one, not.
    assert!(engine::is_payload_keyed(&key(&edit("Olena K."))));
    assert!(!engine::is_payload_keyed(&key(&with_id)));
    // The payload's key is pinned: an upgraded daemon must know a redelivery of an event
    // an older one took (the first 6 bytes of SHA-256 over the compact JSON, as hex).
    let missed = json!({"status": "Missed", "enquiryID": "enq-1"});
    assert!(
        key(&missed).ends_with(&engine::payload_key("c6b59a8ab5a1")),
        "{}",
        key(&missed)
    );
}

/// Every one of the seed's 13 triggers, in the Zapier table's flat shape (the fields it
/// lists and nothing else), is read as its event.
#[test]
fn each_of_the_thirteen_triggers_in_the_flat_zapier_shape_is_read() {
    let enquiry = |status: &str| {
        json!({"status": status, "enquiryID": "e-9", "displayCaseNumber": "1042", "type": "Direct Call",
               "channel": "Virtual Number", "date": "2026-11-21T10:00:00Z", "destination": "d-1",
               "destination Types": "PSTN"})
    };
    for (body, event) in [
        (
            json!({"status": "create", "name": "Olena K"}),
            "contact.created",
        ),
        (
            json!({"status": "edit", "name": "Olena K"}),
            "contact.edited",
        ),
        (
            json!({"status": "merge", "name": "Olena K"}),
            "contact.merged",
        ),
        (
            json!({"status": "transfer", "name": "Olena K", "fromOwnerID": "s-1", "toOwnerID": "s-2"}),
            "contact.transferred",
        ),
        (
            json!({"status": "delete", "name": "Olena K"}),
            "contact.deleted",
        ),
        (enquiry("Opened"), "enquiry.opened"),
        (enquiry("Handling"), "enquiry.handling"),
        (enquiry("Closed"), "enquiry.closed"),
        (enquiry("Missed"), "enquiry.missed"),
        (
            json!({"transactionId": "t-1", "recipientNumber": "+85291234567", "recipientCountry": "HK",
                   "responseCode": "0", "status": "delivered"}),
            "sms.status",
        ),
        (
            json!({"status": "create", "id": "l-1", "name": "VIP", "colorCode": "#ff0000"}),
            "label.created",
        ),
        (
            json!({"status": "update", "id": "l-1", "name": "VIP", "colorCode": "#00ff00"}),
            "label.updated",
        ),
        (
            json!({"status": "deleted", "id": "l-1", "name": "VIP"}),
            "label.deleted",
        ),
    ] {
        let read = normalise(&body).map(|e| e.name);
        assert_eq!(read.as_deref(), Ok(event), "{body}");
    }
}

#[test]
fn language_codes_with_a_script_and_staff_messages_without_a_room_are_taken() {
    let language = super::config::CONTACT_FIELDS
        .iter()
        .find(|f| f.name == "language")
        .and_then(|f| f.max_chars);
    assert!(
        language.is_some_and(|max| max >= "zh-hant".len()),
        "{language:?}"
    );
    let room = super::config::IM_STAFF_FIELDS
        .iter()
        .find(|f| f.name == "roomID");
    assert!(room.is_some_and(|f| !f.required));
}

#[test]
fn both_documented_shapes_normalise_to_the_seed_tables_names() {
    let flat = normalise(&json!({"status": "Missed", "enquiryID": "e-9", "displayCaseNumber": "42", "type": "Direct Call", "channel": "Virtual Number", "date": "2026-11-21", "destination": "+85230001234", "destination Types": "PSTN"}))
        .expect("the payload is understood");
    assert_eq!(flat.name, "enquiry.missed");
    assert_eq!(flat.fields["displayCaseNumber"], "42");
    assert_eq!(flat.fields["channel"], "Virtual Number");
    assert!(
        flat.key.starts_with("enquiry.missed:e-9/missed#"),
        "{}",
        flat.key
    );

    let contact = normalise(&json!({"type": "message", "message": {"type": "contact", "status": "create", "fullName": "Olena Kovalenko", "id": "c-1"}}))
        .expect("the payload is understood");
    assert_eq!(
        (contact.name.as_str(), contact.fields["name"].as_str()),
        ("contact.created", Some("Olena Kovalenko"))
    );

    let sms = normalise(&json!({"Type": "tdr", "TransactionID": "t-1", "RecipientNumber": "+85291234567", "Status": "DELIVERED", "ResponseCode": "0"}))
        .expect("the payload is understood");
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
            .expect("the payload is understood");
    assert_eq!(label.name, "label.updated");
    let transfer = normalise(
        &json!({"status": "transfer", "name": "Tom", "fromOwnerID": "a", "toOwnerID": "b"}),
    )
    .expect("the payload is understood");
    assert_eq!(transfer.name, "contact.transferred");

    assert!(normalise(&json!({"hello": "world"})).is_err());
    assert!(normalise(&json!([1, 2])).is_err());
    assert_eq!(challenge(&json!({"challenge": "abc"})), Some("abc"));
    assert_eq!(family_of("enquiry.missed"), Some("inquiry-event-sub"));
    assert_eq!(
        family_of("contact.created"),
        Some("external-contact-event-sub")
    );
    assert_eq!(family_of("sms.status"), Some("outbound-sms-event-sub"));
    assert_eq!(family_of("call.ended"), None, "no family is guessed");
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
        "cinnox",
        &account,
        "inquiry-event-sub",
        "https://hooks.example.com/hooks/missed",
        true,
    )
    .await
    .expect("subscribe succeeds");
    let refused = subscribe(
        "cinnox",
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
    let push = MessagePush::new(
        "c",
        &cinnox_account(&server),
        std::time::Duration::from_secs(5),
    )
    .expect("it is made");
    let staff = push
        .prepare(fields(json!({"roomID": "r-1", "receiverEID": "staff-7", "text": "Missed call from +85230001234"})), "r")
        .expect("the request is prepared");
    assert!(push.send(&staff).await.is_ok());
    let busy = push
        .prepare(fields(json!({"roomID": "busy", "text": "x"})), "r")
        .expect("the request is prepared");
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

fn cinnox_account(server: &MockServer) -> CinnoxAccount {
    CinnoxAccount {
        app_id: "app-1".into(),
        app_token: Secret::new("tok-1"),
        base_url: server.uri(),
        rate_limit: Some(flows::RateLimit::Off),
    }
}

fn action(server: &MockServer, action: Action) -> CinnoxAction {
    CinnoxAction::new(
        "c",
        &cinnox_account(server),
        action,
        std::time::Duration::from_secs(5),
    )
    .expect("it is made")
}

fn fields(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn contacts_are_created_and_updated_with_nested_phones_emails_and_addresses() {
    use engine::Receiver;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/api/apps/app-1/management/create_externalcontact"))
        .and(header("authorization", "Bearer tok-1"))
        .and(body_json(json!({
            "firstName": "Olena", "lastName": "Kovalenko", "type": "Customer",
            "phones": [{"type": "Mobile", "number": "+380501234567"}],
            "emails": [{"type": "Personal", "address": "olena@example.com"}],
            "addresses": [{"city": "Kyiv", "country": "UA"}]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "id": "ec-77"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(
            "/v1/api/apps/app-1/management/update_externalcontact/ec%2077",
        ))
        .and(header("authorization", "Bearer tok-1"))
        .and(body_json(
            json!({"jobTitle": "CTO", "phones": [{"type": "Work", "number": "+380441112233"}]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "id": "ec 77"})))
        .expect(1)
        .mount(&server)
        .await;
    let create = action(&server, Action::CreateContact);
    let request = create
        .prepare(
            fields(json!({"firstName": "Olena", "lastName": "Kovalenko", "type": "Customer", "phone": "+380501234567", "emailType": "Personal", "email": "olena@example.com", "city": "Kyiv", "country": "UA"})),
            "r",
        )
        .expect("the request is prepared");
    let sent = create.send(&request).await.expect("the call is answered");
    assert_eq!(sent.remote_id.as_deref(), Some("ec-77"));
    assert!(
        create
            .prepare(fields(json!({"company": "X"})), "r")
            .is_err(),
        "a contact without a name fails before sending"
    );

    let update = action(&server, Action::UpdateContact);
    let request = update
        .prepare(
            fields(json!({"contactID": "ec 77", "jobTitle": "CTO", "phoneType": "Work", "phone": "+380441112233"})),
            "r",
        )
        .expect("the request is prepared");
    assert_eq!(request.method, "PUT");
    assert!(update.send(&request).await.is_ok());
    assert!(update
        .prepare(fields(json!({"jobTitle": "CTO"})), "r")
        .is_err());
}

#[tokio::test]
async fn sms_goes_to_the_configured_path_and_errors_keep_their_class() {
    use engine::{Receiver, SendError};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/api/apps/app-1/send_sms"))
        .and(header("authorization", "Bearer tok-1"))
        .and(body_json(json!({"senderNumber": "SHOP", "recipientNumber": "+85294667788", "text": "您的訂單已發貨"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "transactionID": "t-1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/api/apps/app-1/sms/v2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": 6451000, "message": "wrong parameter"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/api/apps/app-1/refused"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 401, "message": "invalid token"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/api/apps/app-1/down"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let body = json!({"senderNumber": "SHOP", "recipientNumber": "+85294667788", "text": "您的訂單已發貨"});
    let sms = action(
        &server,
        Action::SendSms {
            path: "send_sms".into(),
        },
    );
    let request = sms
        .prepare(fields(body.clone()), "r")
        .expect("the request is prepared");
    assert_eq!(request.notes["encoding"], "UCS-2", "{:?}", request.notes);
    assert_eq!(request.notes["parts"], 1);
    let sent = sms.send(&request).await.expect("the call is answered");
    assert_eq!(sent.remote_id.as_deref(), Some("t-1"));

    let outcome = |path: &str| {
        let receiver = action(&server, Action::SendSms { path: path.into() });
        let request = receiver.prepare(fields(body.clone()), "r");
        async move {
            match request {
                Ok(request) => receiver.send(&request).await,
                Err(e) => Err(e),
            }
        }
    };
    assert!(
        matches!(outcome("sms/v2").await, Err(SendError::Permanent { ref code, .. }) if code.as_deref() == Some("6451000")),
        "a 200 with an error code fails the row with CINNOX's code"
    );
    assert!(matches!(
        outcome("refused").await,
        Err(SendError::Unauthorized { .. })
    ));
    assert!(matches!(
        outcome("down").await,
        Err(SendError::Transient { .. })
    ));
    assert!(sms
        .prepare(
            fields(json!({"senderNumber": "S", "recipientNumber": "+1", "text": ""})),
            "r"
        )
        .is_err());
}

#[tokio::test]
async fn contacts_are_found_by_full_name_across_pages_and_enquiries_by_case_number() {
    use engine::{Lookup, SendError};
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    let others: Vec<serde_json::Value> = (0..100)
        .map(|i| json!({"id": format!("ec-{i}"), "firstName": "Someone", "lastName": format!("{i}")}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/contacts/extcontact-list"))
        .and(query_param("offset", "0"))
        .and(query_param("limit", "100"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"code": 0, "result": others})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/contacts/extcontact-list"))
        .and(query_param("offset", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "result": [
            {"id": "ec-olena", "firstName": "Olena", "lastName": "Kovalenko", "mobilePhone": "+380501234567", "address": {"city": "Kyiv"}}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/data/enquiry-detail"))
        .and(query_param("displayCaseNumber", "42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"code": 0, "result": {"enquiryID": "e-9", "staffName": "Ann", "duration": 0}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/data/enquiry-detail"))
        .and(query_param("displayCaseNumber", "404"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "result": []})))
        .mount(&server)
        .await;
    let account = cinnox_account(&server);
    let timeout = std::time::Duration::from_secs(5);
    let contacts = CinnoxLookup::new("c", &account, Find::Contact, timeout).expect("it is made");
    let olena = contacts
        .find("  olena   KOVALENKO ")
        .await
        .expect("the look-up answers")
        .unwrap_or_default();
    assert_eq!(
        olena["mobilePhone"], "+380501234567",
        "found on the second page"
    );
    assert_eq!(olena["address"]["city"], "Kyiv");
    assert_eq!(
        contacts.find("Nobody Here").await.ok(),
        Some(None),
        "a name on no page is nothing found"
    );

    let enquiries = CinnoxLookup::new("c", &account, Find::Enquiry, timeout).expect("it is made");
    let enquiry = enquiries.find("42").await.expect("the look-up answers");
    assert_eq!(enquiry.unwrap_or_default()["staffName"], "Ann");
    assert_eq!(enquiries.find("404").await.ok(), Some(None));

    let refused = CinnoxLookup::new(
        "c",
        &CinnoxAccount {
            base_url: format!("{}/nowhere", server.uri()),
            ..account.clone()
        },
        Find::Enquiry,
        timeout,
    )
    .expect("it is made");
    assert!(
        matches!(refused.find("42").await, Err(SendError::Permanent { .. })),
        "a 404 from CINNOX is a permanent failure"
    );
}

#[tokio::test]
async fn numbers_of_a_type_come_back_as_a_list_from_the_configured_path() {
    use engine::Lookup;
    use wiremock::matchers::query_param;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/numbers"))
        .and(query_param("type", "sms-numbers"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"code": 0, "result": [{"number": "+85230001234", "type": "DID"}]}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/operations/number-list/cli"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let account = cinnox_account(&server);
    let timeout = std::time::Duration::from_secs(5);
    let numbers = |path: &str| {
        CinnoxLookup::new("c", &account, Find::Numbers { path: path.into() }, timeout)
            .expect("it is made")
    };
    let found = numbers(DEFAULT_NUMBERS_PATH)
        .find("sms-numbers")
        .await
        .expect("the look-up answers");
    assert_eq!(
        found,
        Some(json!([{"number": "+85230001234", "type": "DID"}]))
    );
    let none = numbers("operations/number-list/{query}")
        .find("cli")
        .await
        .expect("the look-up answers");
    assert_eq!(none, None, "an empty list is nothing found");
    assert!(numbers(DEFAULT_NUMBERS_PATH).find("phones").await.is_err());
}
