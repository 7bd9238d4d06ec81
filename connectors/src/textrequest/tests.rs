use std::time::Duration;

use super::config::Account as TextRequestAccount;
use engine::{Receiver, SendError};
use flows::Secret;
use serde_json::{json, Map, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::config::Receiver as R;
use super::{Action, TextRequest};

/// The test account (`x-api-key: tr-key-1`, no rate limit) on `server`.
fn account(server: &MockServer) -> TextRequestAccount {
    TextRequestAccount {
        api_key: Secret::new("tr-key-1"),
        base_url: server.uri(),
        rate_limit: Some(flows::RateLimit::Off),
    }
}

fn receiver(server: &MockServer, action: Action) -> TextRequest {
    let account = account(server);
    TextRequest::new("tr", &account, 121, action, Duration::from_secs(5)).expect("it is made")
}

/// Receiver `action` of the test account, as a flow builds it.
fn built(account: &TextRequestAccount, action: R) -> std::sync::Arc<dyn Receiver> {
    action
        .build("tr", account, Duration::from_secs(5))
        .expect("it is built")
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn send_message_puts_the_encoded_phone_in_the_path_and_the_rest_in_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dashboards/121/contacts/%2B14239876543/messages"))
        .and(header("x-api-key", "tr-key-1"))
        .and(body_json(json!({"body": "Welcome Olena!", "sender_name": "Front desk"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "message_id": "m-77", "body": "Welcome Olena!", "message_direction": "S", "delivery_status": "sending"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = receiver(&server, Action::SendMessage);
    let request = r
        .prepare(fields(json!({"phone_number": "+1 (423) 987-6543", "body": "Welcome Olena!", "sender_name": "Front desk"})), "ref")
        .expect("the request is prepared");
    let delivered = r.send(&request).await.expect("the call is answered");
    assert_eq!(delivered.remote_id.as_deref(), Some("m-77"));
}

#[tokio::test]
async fn upsert_contact_sends_typed_fields() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dashboards/121/contacts/4239876543"))
        .and(body_json(
            json!({"first_name": "Olena", "groups": [3, 5], "is_archived": false}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 9001})))
        .expect(1)
        .mount(&server)
        .await;
    let r = receiver(&server, Action::UpsertContact);
    let request = r
        .prepare(fields(json!({"phone_number": "4239876543", "first_name": "Olena", "groups": [3, 5], "is_archived": false})), "ref")
        .expect("the request is prepared");
    assert_eq!(
        r.send(&request)
            .await
            .ok()
            .and_then(|d| d.remote_id)
            .as_deref(),
        Some("9001")
    );
}

#[tokio::test]
async fn each_response_class_is_told_apart() {
    let server = MockServer::start().await;
    let answer = |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
    for (phone, response) in [
        (
            "4230000400",
            answer(400, json!("Bad, missing, or invalid data")),
        ),
        (
            "4230000401",
            answer(401, json!({"message": "invalid api key"})),
        ),
        (
            "4230000429",
            ResponseTemplate::new(429).insert_header("Retry-After", "30"),
        ),
        ("4230000503", answer(503, json!({}))),
        (
            "4230000200",
            answer(
                200,
                json!({"message_id": "m", "delivery_status": "error", "delivery_error": "Landline number"}),
            ),
        ),
    ] {
        Mock::given(method("POST"))
            .and(path(format!("/dashboards/121/contacts/{phone}/messages")))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    let r = receiver(&server, Action::SendMessage);
    let r = &r;
    let send = |phone: &'static str| {
        let request = r
            .prepare(fields(json!({"phone_number": phone, "body": "hi"})), "ref")
            .expect("the request is prepared");
        async move { r.send(&request).await.err() }
    };
    assert!(matches!(
        send("4230000400").await,
        Some(SendError::Permanent { .. })
    ));
    assert!(matches!(
        send("4230000401").await,
        Some(SendError::Unauthorized { .. })
    ));
    assert!(
        matches!(send("4230000429").await, Some(SendError::Transient { retry_after: Some(d), .. }) if d == Duration::from_secs(30))
    );
    assert!(matches!(
        send("4230000503").await,
        Some(SendError::Transient { .. })
    ));
    assert_eq!(
        send("4230000200").await,
        Some(SendError::Permanent {
            code: Some("delivery_error".into()),
            message: "Landline number".into()
        })
    );
}

#[test]
fn local_checks_before_sending() {
    let account = TextRequestAccount {
        api_key: Secret::new("k"),
        base_url: "http://127.0.0.1:9".into(),
        rate_limit: None,
    };
    let r = TextRequest::new(
        "tr",
        &account,
        1,
        Action::SendMessage,
        Duration::from_secs(1),
    )
    .expect("it is made");
    assert!(r
        .prepare(
            fields(json!({"phone_number": "call me", "body": "hi"})),
            "r"
        )
        .is_err());
    assert!(r
        .prepare(
            fields(json!({"phone_number": "4239876543", "body": " "})),
            "r"
        )
        .is_err());
}

/// What Text Request POSTs to a hook (its swagger's `x-ms-notification-content`).
fn texting_event(direction: &str) -> Value {
    json!({
        "messageUniqueIdentifier": "m-5501",
        "account": {"id": 77, "externalAccountId": "ext"},
        "yourPhoneNumber": {"id": 121, "description": "Front desk", "phoneNumber": "+14235550100"},
        "conversation": {"id": 9001, "date": "2026-11-21T12:08:00Z", "consumerPhoneNumber": "+14239876543",
            "messageDirection": direction, "message": "Is my order ready?", "numSegments": 1,
            "status": "delivered", "claimedBy": "Ann", "consumerFriendlyName": "Olena K", "mmsAttachments": []}
    })
}

#[test]
fn texting_events_become_flat_records_keyed_by_the_message() {
    use super::trigger::{normalise, records_for};
    let (key, fields) =
        normalise(&texting_event("Received"), None).expect("the payload is understood");
    assert_eq!(key, "msg_received:m-5501");
    assert_eq!(fields["phone"], "+14239876543");
    assert_eq!(fields["name"], "Olena K");
    assert_eq!(fields["message"], "Is my order ready?");
    assert_eq!(fields["yourPhoneNumber"], "+14235550100");
    assert_eq!(fields["conversationId"], 9001);
    assert_eq!(fields["event"], "msg_received");
    // the hook's own event wins over a direction the connector cannot read
    let (key, _) =
        normalise(&texting_event("?"), Some("msg_sent")).expect("the payload is understood");
    assert_eq!(key, "msg_sent:m-5501");
    assert!(normalise(&texting_event("?"), None).is_err());
    assert!(normalise(&json!({"no": "conversation"}), None).is_err());

    let wanted = vec!["msg_received".to_string()];
    let both = json!([texting_event("Received"), texting_event("Outbound")]);
    let (records, ignored) = records_for(&both, &wanted, None).expect("records_for succeeds");
    assert_eq!(
        (records.len(), ignored),
        (1, 1),
        "the sent text is not this flow's"
    );
}

#[tokio::test]
async fn hooks_are_registered_per_event_and_deleted() {
    use super::trigger::{subscribe, target_url, unsubscribe};
    let server = MockServer::start().await;
    let url = target_url("https://hooks.example.com/hooks/replies", "msg_received");
    assert_eq!(
        url,
        "https://hooks.example.com/hooks/replies?event=msg_received"
    );
    Mock::given(method("POST"))
        .and(path("/dashboards/121/hooks"))
        .and(header("x-api-key", "tr-key-1"))
        .and(body_json(
            json!({"target_url": url, "event": "msg_received", "httpVerb": "POST"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 31, "target_url": url, "event": "msg_received"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/dashboards/121/hooks/31"))
        .and(header("x-api-key", "tr-key-1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let account = TextRequestAccount {
        api_key: Secret::new("tr-key-1"),
        base_url: server.uri(),
        rate_limit: None,
    };
    let hook = subscribe("tr", &account, 121, "msg_received", &url)
        .await
        .expect("subscribe succeeds");
    assert_eq!(hook.id, 31);
    unsubscribe("tr", &account, &hook)
        .await
        .expect("unsubscribe succeeds");

    Mock::given(method("POST"))
        .and(path("/dashboards/121/hooks"))
        .and(header("x-api-key", "wrong"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "Invalid API key"})),
        )
        .mount(&server)
        .await;
    let refused = subscribe(
        "tr",
        &TextRequestAccount {
            api_key: Secret::new("wrong"),
            base_url: server.uri(),
            rate_limit: None,
        },
        121,
        "msg_sent",
        &url,
    )
    .await
    .err()
    .unwrap_or_default();
    assert!(
        refused.contains("HTTP 401")
            && refused.contains("Invalid API key")
            && refused.contains("check the account's api_key"),
        "{refused}"
    );
}

#[tokio::test]
async fn an_account_moved_to_another_text_request_registers_its_hooks_there() {
    use crate::push::Push;
    let old = MockServer::start().await;
    let new = MockServer::start().await;
    let url = "https://hooks.example.com/hooks/replies";
    // The hook's URL carries the token of the account's (new) key.
    let target = crate::push::with_token(
        &super::trigger::target_url(url, "msg_received"),
        &crate::push::hook_token("tr-key-2", "textrequest"),
    );
    Mock::given(method("POST"))
        .and(path("/dashboards/121/hooks"))
        .and(header("x-api-key", "tr-key-2"))
        .and(body_json(
            json!({"target_url": target, "event": "msg_received", "httpVerb": "POST"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 44, "target_url": target, "event": "msg_received"})),
        )
        .expect(1)
        .mount(&new)
        .await;
    let account = TextRequestAccount {
        api_key: Secret::new("tr-key-2"),
        base_url: new.uri(),
        rate_limit: None,
    };
    let source = super::config::Source {
        account: "tr".into(),
        dashboard_id: 121,
        events: vec!["msg_received".into()],
        public_url: None,
        reads: None,
        status: None,
        filter: Default::default(),
        backlog: flows::Backlog::Send,
        pos: flows::Pos::new(1, 1),
    };
    let intake = super::TextRequestIntake::new("tr", &account, &source);
    let remembered = json!([{"dashboard_id": 121, "event": "msg_received", "url": target, "id": 31, "base_url": old.uri()}]);
    let synced = intake.subscribe(url, Some(remembered)).await;
    assert_eq!(synced.failed.len(), 1, "{synced:?}");
    assert!(
        synced.failed[0].contains(&format!(
            "hook 31 (msg_received) stays registered at {}",
            old.uri()
        )),
        "{synced:?}"
    );
    let kept = synced.remember.unwrap_or_default();
    assert_eq!(kept[0]["id"], 44, "{kept}");
    assert_eq!(kept[0]["base_url"], new.uri());
    assert!(
        old.received_requests().await.unwrap_or_default().is_empty(),
        "nothing is sent to the old host with the new key"
    );
}

#[tokio::test]
async fn archive_conversation_puts_to_the_contacts_conversation_without_a_body() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(
            "/dashboards/121/contacts/%2B14239876543/conversations/archive",
        ))
        .and(header("x-api-key", "tr-key-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!("Conversation archived")))
        .expect(1)
        .mount(&server)
        .await;
    let r = receiver(&server, Action::ArchiveConversation);
    let request = r
        .prepare(fields(json!({"phone_number": "+1 423 987 6543"})), "ref")
        .expect("the request is prepared");
    assert_eq!(request.method, "PUT");
    assert_eq!(request.body, Value::Null);
    r.send(&request).await.expect("the call is answered");
    let sent = server.received_requests().await.unwrap_or_default();
    assert!(sent[0].body.is_empty(), "no body: {:?}", sent[0].body);

    let bad = r.prepare(fields(json!({"phone_number": "call me"})), "ref");
    assert!(matches!(bad, Err(SendError::Permanent { .. })), "{bad:?}");
}

#[tokio::test]
async fn unarchive_and_delete_take_the_phone_in_the_path_and_no_body() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(
            "/dashboards/121/contacts/%2B14239876543/conversations/unarchive",
        ))
        .and(header("x-api-key", "tr-key-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!("Conversation unarchived")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/dashboards/121/contacts/%2B14239876543"))
        .and(header("x-api-key", "tr-key-1"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string("A contact with message history cannot be deleted"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let unarchive = receiver(&server, Action::UnarchiveConversation);
    let request = unarchive
        .prepare(fields(json!({"phone_number": "+14239876543"})), "ref")
        .expect("the request is prepared");
    assert_eq!(
        (request.method.as_str(), &request.body),
        ("PUT", &Value::Null)
    );
    unarchive
        .send(&request)
        .await
        .expect("the call is answered");

    let delete = receiver(&server, Action::DeleteContact);
    let request = delete
        .prepare(fields(json!({"phone_number": "+14239876543"})), "ref")
        .expect("the request is prepared");
    assert_eq!(request.method, "DELETE");
    match delete.send(&request).await {
        Err(SendError::Permanent { message, .. }) => {
            assert!(
                message.contains("message history cannot be deleted"),
                "{message}"
            )
        }
        other => panic!("a 400 is permanent, with Text Request's text: {other:?}"),
    }
}

#[tokio::test]
async fn upsert_contact_sends_custom_fields_as_the_swagger_has_them() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dashboards/121/contacts/4239876543"))
        .and(body_json(
            json!({"first_name": "Olena", "custom_fields": [{"id": "f-1", "value": "gold"}]}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"phone_number": "4239876543"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let r = receiver(&server, Action::UpsertContact);
    let request = r
        .prepare(fields(json!({"phone_number": "4239876543", "first_name": "Olena", "custom_fields": [{"id": "f-1", "value": "gold"}]})), "ref")
        .expect("the request is prepared");
    r.send(&request).await.expect("the call is answered");
}

#[tokio::test]
async fn upsert_contact_with_batch_sends_runs_through_the_bulk_update() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dashboards/121/contacts"))
        .and(header("x-api-key", "tr-key-1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!([
            {"phone_number": "+14239876543", "first_name": "Olena", "groups": [3]},
            {"phone_number": "4239876544", "first_name": "Tom", "custom_fields": [{"id": "f-1", "value": "gold"}]},
        ])))
        // Text Request answers with the contacts as it keeps them (its own number format).
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"phone_number": "423-987-6543", "first_name": "Olena"},
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let r = receiver(&server, Action::UpsertContact).with_batch(50);
    assert_eq!(r.batch_size(), 50);
    let requests = [
        json!({"phone_number": "+1 423 987 6543", "first_name": "Olena", "groups": [3]}),
        json!({"phone_number": "4239876544", "first_name": "Tom", "custom_fields": [{"id": "f-1", "value": "gold"}]}),
    ]
    .map(|f| r.prepare(fields(f), "ref").expect("the request is prepared"));
    let outcomes = r.send_batch(&requests).await;
    // Both were taken (a 2xx is never resent); the one the answer lists carries its number.
    let ids: Vec<Option<String>> = outcomes
        .into_iter()
        .map(|o| o.expect("it succeeds").remote_id)
        .collect();
    assert_eq!(ids, [Some("+14239876543".to_string()), None]);
    // Other actions have no bulk call.
    assert_eq!(
        receiver(&server, Action::SendMessage)
            .with_batch(50)
            .batch_size(),
        1
    );
}

#[tokio::test]
async fn a_refused_bulk_update_fails_each_contact_by_its_class() {
    let server = MockServer::start().await;
    let r = receiver(&server, Action::UpsertContact).with_batch(10);
    let requests = [
        json!({"phone_number": "4239876543", "first_name": "Olena"}),
        json!({"phone_number": "4239876544", "first_name": "Tom"}),
    ]
    .map(|f| {
        r.prepare(fields(f), "ref")
            .expect("the request is prepared")
    });
    for (status, body, transient) in [
        (400, json!("Bad, missing, or invalid data"), false),
        (429, json!({}), true),
        (503, json!({}), true),
    ] {
        server.reset().await;
        Mock::given(method("POST"))
            .and(path("/dashboards/121/contacts"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        let outcomes = r.send_batch(&requests).await;
        assert_eq!(outcomes.len(), 2);
        for outcome in outcomes {
            match outcome {
                Err(SendError::Transient { .. }) => assert!(transient, "{status}"),
                Err(SendError::Permanent { message, .. }) => {
                    assert!(!transient, "{status}");
                    assert!(message.contains("invalid data"), "{message}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn get_contact_and_get_messages_read_by_phone_and_say_when_there_is_nothing() {
    use engine::Lookup as _;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/dashboards/121/contacts/%2B14239876543"))
        .and(header("x-api-key", "tr-key-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"phone_number": "+14239876543", "first_name": "Olena", "groups": [3]}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/dashboards/121/contacts/%2B14239876543/messages"))
        .and(wiremock::matchers::query_param("page", "0"))
        .and(wiremock::matchers::query_param("page_size", "50"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"body": "Is my order ready?", "message_direction": "R"}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let account = account(&server);
    let dashboard = || super::config::Dashboard { dashboard_id: 121 };
    let timeout = Duration::from_secs(5);
    let contact = super::TextRequestLookup::new(
        "tr",
        &account,
        super::config::Lookup::Contact(dashboard()),
        timeout,
    );
    let found = contact
        .find("+1 423 987 6543")
        .await
        .expect("the look-up answers");
    assert_eq!(found.map(|c| c["first_name"].clone()), Some(json!("Olena")));
    assert_eq!(
        contact.find("+15550000000").await.ok(),
        Some(None),
        "404: not found"
    );
    assert!(matches!(
        contact.find("nobody").await,
        Err(SendError::Permanent { .. })
    ));
    let messages = super::TextRequestLookup::new(
        "tr",
        &account,
        super::config::Lookup::Messages(dashboard()),
        timeout,
    );
    let page = messages
        .find("+14239876543")
        .await
        .expect("the look-up answers");
    assert_eq!(
        page.and_then(|p| p[0]["body"].as_str().map(String::from))
            .as_deref(),
        Some("Is my order ready?")
    );
}

#[tokio::test]
async fn payments_are_created_marked_paid_reminded_and_cancelled_by_number() {
    use engine::Lookup as _;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dashboards/121/payments"))
        .and(header("x-api-key", "tr-key-1"))
        .and(body_json(json!({"customer_phone": "+14239876543", "amount_requested": 12.5, "message": "Your order", "reference_number": "A-1"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 88, "status": "requested"})))
        .expect(1)
        .mount(&server)
        .await;
    for verb in ["mark_as_paid", "resend", "cancel"] {
        Mock::given(method("POST"))
            .and(path(format!("/dashboards/121/payments/88/{verb}")))
            .and(header("x-api-key", "tr-key-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 88})))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/dashboards/121/payments/88"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 88, "status": "paid"})))
        .mount(&server)
        .await;
    let account = account(&server);
    let payments = |action: R| built(&account, action);
    let create = payments(R::CreatePayment(super::config::Dashboard {
        dashboard_id: 121,
    }));
    let request = create
        .prepare(fields(json!({"customer_phone": "+1 (423) 987-6543", "amount_requested": 12.5, "message": "Your order", "reference_number": "A-1"})), "r")
        .expect("the request is prepared");
    let sent = create.send(&request).await.expect("the call is answered");
    assert_eq!(sent.remote_id.as_deref(), Some("88"));
    for action in [
        R::MarkPaymentPaid(super::config::Dashboard { dashboard_id: 121 }),
        R::SendPaymentReminder(super::config::Dashboard { dashboard_id: 121 }),
        R::CancelPayment(super::config::Dashboard { dashboard_id: 121 }),
    ] {
        let r = payments(action);
        let request = r
            .prepare(fields(json!({"payment_id": "88"})), "r")
            .expect("the request is prepared");
        assert_eq!(request.body, Value::Null);
        r.send(&request).await.expect("the call is answered");
    }
    for (bad, why) in [
        (
            json!({"customer_phone": "+14239876543", "amount_requested": 0}),
            "more than 0",
        ),
        (json!({"amount_requested": 5}), "customer_phone is empty"),
    ] {
        let err = create
            .prepare(fields(bad), "r")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(why), "{err}");
    }
    let paid = payments(R::MarkPaymentPaid(super::config::Dashboard {
        dashboard_id: 121,
    }))
    .prepare(fields(json!({"payment_id": "x"})), "r");
    assert!(matches!(paid, Err(SendError::Permanent { .. })));
    let get = super::TextRequestLookup::new(
        "tr",
        &account,
        super::config::Lookup::Payment(super::config::Dashboard { dashboard_id: 121 }),
        Duration::from_secs(5),
    );
    let found = get.find("88").await.expect("the look-up answers");
    assert_eq!(found.map(|p| p["status"].clone()), Some(json!("paid")));
}

#[tokio::test]
async fn payments_are_read_page_by_page_keyed_by_number_and_status() {
    use engine::Source as _;
    let server = MockServer::start().await;
    let page = |n: u64, count: u64| {
        let items: Vec<Value> = (0..count)
            .map(|i| {
                let id = n * 100 + i;
                json!({"payment_id": id, "customer_phone": "+14239876543", "amount_requested": 5.0,
                       "textrequest_payment_status": if id.is_multiple_of(2) { "paid" } else { "requested" }})
            })
            .collect();
        json!({"meta": {"page": n, "page_size": 100, "total_items": 103}, "items": items})
    };
    for (n, count) in [(0, 100), (1, 3)] {
        Mock::given(method("GET"))
            .and(path("/dashboards/121/payments"))
            .and(wiremock::matchers::query_param("page", n.to_string()))
            .and(wiremock::matchers::query_param("page_size", "100"))
            .and(header("x-api-key", "tr-key-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(page(n, count)))
            .expect(1..)
            .mount(&server)
            .await;
    }
    let account = account(&server);
    let config = |status: Option<&str>| super::config::Source {
        account: "tr".into(),
        dashboard_id: 121,
        events: Vec::new(),
        public_url: None,
        reads: Some(super::config::Reads::Payments),
        status: status.map(String::from),
        filter: Default::default(),
        backlog: flows::Backlog::Skip,
        pos: flows::Pos::new(1, 1),
    };
    let all = super::ListSource::new("tr", &account, &config(None))
        .fetch()
        .await
        .expect("the source is read");
    assert_eq!(all.records.len(), 103, "both pages");
    assert_eq!(all.records[0].key, "0#paid");
    assert_eq!(all.records[1].key, "1#requested");
    let paid = super::ListSource::new("tr", &account, &config(Some("paid")))
        .fetch()
        .await
        .expect("the source is read");
    assert!(paid.records.iter().all(|r| r.key.ends_with("#paid")));
    assert_eq!(paid.records.len(), 52);
}

#[tokio::test]
async fn groups_are_created_renamed_deleted_and_read_by_number() {
    use engine::Lookup as _;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dashboards/121/groups"))
        .and(header("x-api-key", "tr-key-1"))
        .and(body_json(json!({"name": "VIP", "notes": "big spenders"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 7, "name": "VIP"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/dashboards/121/groups/7"))
        .and(body_json(json!({"name": "VIPs"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 7, "name": "VIPs"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/dashboards/121/groups/7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!("Group deleted")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/dashboards/121/groups/7"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": 7, "name": "VIPs", "contact_count": 3})),
        )
        .mount(&server)
        .await;
    let account = account(&server);
    let groups = |action: R| built(&account, action);
    for (action, given) in [
        (
            R::CreateGroup(super::config::Dashboard { dashboard_id: 121 }),
            json!({"name": "VIP", "notes": "big spenders"}),
        ),
        (
            R::UpdateGroup(super::config::Dashboard { dashboard_id: 121 }),
            json!({"group_id": 7, "name": "VIPs"}),
        ),
        (
            R::DeleteGroup(super::config::Dashboard { dashboard_id: 121 }),
            json!({"group_id": "7"}),
        ),
    ] {
        let r = groups(action);
        let request = r
            .prepare(fields(given), "r")
            .expect("the request is prepared");
        r.send(&request).await.expect("the call is answered");
    }
    assert!(groups(R::CreateGroup(super::config::Dashboard {
        dashboard_id: 121
    }))
    .prepare(fields(json!({"notes": "x"})), "r")
    .is_err());
    assert!(groups(R::DeleteGroup(super::config::Dashboard {
        dashboard_id: 121
    }))
    .prepare(fields(json!({"group_id": "seven"})), "r")
    .is_err());
    let get = super::TextRequestLookup::new(
        "tr",
        &account,
        super::config::Lookup::Group(super::config::Dashboard { dashboard_id: 121 }),
        Duration::from_secs(5),
    );
    let found = get.find("7").await.expect("the look-up answers");
    assert_eq!(found.map(|g| g["contact_count"].clone()), Some(json!(3)));
}

#[tokio::test]
async fn contacts_are_read_with_the_flows_filter_and_keyed_by_phone_and_content() {
    use engine::Source as _;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/dashboards/121/contacts"))
        .and(wiremock::matchers::query_param("page", "0"))
        .and(wiremock::matchers::query_param("page_size", "100"))
        .and(wiremock::matchers::query_param("tags", "vip"))
        .and(header("x-api-key", "tr-key-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "meta": {"page": 0, "page_size": 100, "total_items": 2},
            "items": [
                {"phone_number": "+14239876543", "first_name": "Olena", "is_archived": false},
                {"phone_number": "+14239876544", "first_name": "Tom", "groups": [3]}
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let account = account(&server);
    let config = super::config::Source {
        account: "tr".into(),
        dashboard_id: 121,
        events: Vec::new(),
        public_url: None,
        reads: Some(super::config::Reads::Contacts),
        status: None,
        filter: [("tags".to_string(), "vip".to_string())]
            .into_iter()
            .collect(),
        backlog: flows::Backlog::Skip,
        pos: flows::Pos::new(1, 1),
    };
    let fetched = super::ListSource::new("tr", &account, &config)
        .fetch()
        .await
        .expect("the source is read");
    assert_eq!(fetched.records.len(), 2);
    assert!(
        fetched.records[0].key.starts_with("+14239876543#"),
        "{}",
        fetched.records[0].key
    );
    assert_eq!(fetched.records[1].fields["first_name"], "Tom");
    assert!(
        !fetched.records[1].fields.contains_key("groups"),
        "plain fields only"
    );
}

#[tokio::test]
async fn dashboards_are_created_renamed_deleted_and_read_by_number() {
    use engine::Lookup as _;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dashboards"))
        .and(header("x-api-key", "tr-key-1"))
        .and(body_json(
            json!({"name": "Front desk", "phone": "+14235550100"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 130, "name": "Front desk"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/dashboards/130"))
        .and(body_json(json!({"name": "Reception"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 130})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/dashboards/130"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!("Dashboard deleted")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/dashboards/130"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 130, "name": "Reception"})),
        )
        .mount(&server)
        .await;
    let account = account(&server);
    let dashboards = |action: R| built(&account, action);
    for (action, given) in [
        (
            R::CreateDashboard,
            json!({"name": "Front desk", "phone": "+14235550100"}),
        ),
        (
            R::RenameDashboard,
            json!({"dashboard": 130, "name": "Reception"}),
        ),
        (R::DeleteDashboard, json!({"dashboard": "130"})),
    ] {
        let r = dashboards(action);
        let request = r
            .prepare(fields(given), "r")
            .expect("the request is prepared");
        r.send(&request).await.expect("the call is answered");
    }
    assert!(dashboards(R::CreateDashboard)
        .prepare(fields(json!({})), "r")
        .is_err());
    assert!(dashboards(R::DeleteDashboard)
        .prepare(fields(json!({"dashboard": "main"})), "r")
        .is_err());
    let get = super::TextRequestLookup::new(
        "tr",
        &account,
        super::config::Lookup::Dashboard,
        Duration::from_secs(5),
    );
    let found = get.find("130").await.expect("the look-up answers");
    assert_eq!(found.map(|d| d["name"].clone()), Some(json!("Reception")));
}

#[tokio::test]
async fn lists_are_read_and_narrowed_to_the_names_that_hold_the_query() {
    use engine::Lookup as _;
    let server = MockServer::start().await;
    let page = |items: Value| json!({"meta": {"page": 0, "page_size": 100, "total_items": 2}, "items": items});
    Mock::given(method("GET"))
        .and(path("/dashboards/121/tags"))
        .and(header("x-api-key", "tr-key-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            json!([{"id": 1, "name": "VIP"}, {"id": 2, "name": "late payer"}]),
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/dashboards/121/fields"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!([{"id": "f-1", "name": "Loyalty tier"}, {"id": "f-2", "name": "Birthday"}]),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/dashboards/121/conversations"))
        .and(wiremock::matchers::query_param("search", "order 42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            json!([{"id": 9001, "contact_phone_number": "+14239876543"}]),
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/dashboards"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            json!([{"id": 121, "name": "Front desk"}, {"id": 130, "name": "Support"}]),
        )))
        .mount(&server)
        .await;
    let account = account(&server);
    let dashboard = Some(super::config::Dashboard { dashboard_id: 121 });
    let list = |kind, dashboard| {
        super::TextRequestLookup::new(
            "tr",
            &account,
            super::config::Lookup::List(kind, dashboard),
            Duration::from_secs(5),
        )
    };
    let count = |found: Option<Value>| found.and_then(|v| v.as_array().map(Vec::len));
    let tags = list(super::config::List::Tags, dashboard.clone());
    assert_eq!(count(tags.find("vip").await.unwrap_or_default()), Some(1));
    assert_eq!(count(tags.find("*").await.unwrap_or_default()), Some(2));
    assert_eq!(tags.find("nothing like it").await.ok(), Some(None));
    let fields = list(super::config::List::CustomFields, dashboard.clone());
    let tier = fields.find("tier").await.unwrap_or_default();
    assert_eq!(tier.map(|f| f[0]["id"].clone()), Some(json!("f-1")));
    let conversations = list(super::config::List::Conversations, dashboard);
    assert_eq!(
        count(conversations.find("order 42").await.unwrap_or_default()),
        Some(1)
    );
    let dashboards = list(super::config::List::Dashboards, None);
    assert_eq!(
        count(dashboards.find("support").await.unwrap_or_default()),
        Some(1)
    );
}
