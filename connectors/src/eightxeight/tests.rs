use std::time::Duration;

use super::config::Account as EightXEightAccount;
use engine::{Receiver, SendError};
use flows::Secret;
use serde_json::{json, Map, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::client::destination;
use super::EightXEight;

fn receiver(server: &MockServer, timeout: Duration) -> EightXEight {
    let account = EightXEightAccount {
        subaccount_id: "shop_main".into(),
        api_key: Secret::new("test-key-123"),
        base_url: server.uri(),
        rate_limit: None,
    };
    EightXEight::new("test", &account, timeout).expect("it is made")
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

const MESSAGES: &str = "/api/v1/subaccounts/shop_main/messages";

fn queued() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "umid": "bda3d56d-1424-e711-813c-06ed3428fe67",
        "clientMessageId": "order-sms:A-1",
        "destination": "+380501234567",
        "encoding": "GSM7",
        "status": {"code": "QUEUED", "description": "SMS is accepted and queued for processing"}
    }))
}

async fn send(server: &MockServer, body: Value) -> Result<engine::Delivered, SendError> {
    let r = receiver(server, Duration::from_secs(5));
    let prepared = r.prepare(fields(body), "order-sms:A-1")?;
    r.send(&prepared).await
}

#[tokio::test]
async fn sends_the_documented_request_and_reads_the_umid() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(header("authorization", "Bearer test-key-123"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "destination": "+380501234567",
            "source": "MyShop",
            "text": "Tom & Jerry <3",
            "clientMessageId": "order-sms:A-1"
        })))
        .respond_with(queued())
        .expect(1)
        .mount(&server)
        .await;
    let delivered = send(
        &server,
        json!({"destination": "+380 50 123-45-67", "source": "MyShop", "text": "Tom & Jerry <3"}),
    )
    .await
    .expect("the call is answered");
    assert_eq!(
        delivered.remote_id.as_deref(),
        Some("bda3d56d-1424-e711-813c-06ed3428fe67")
    );
}

#[tokio::test]
async fn a_200_rejected_fails_the_row_permanently() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "umid": "u1", "destination": "+380501234567", "encoding": "GSM7",
            "status": {"code": "REJECTED", "description": "Invalid MSISDN format"}
        })))
        .mount(&server)
        .await;
    let err = send(
        &server,
        json!({"destination": "+380501234567", "text": "hi"}),
    )
    .await
    .err();
    assert_eq!(
        err,
        Some(SendError::Permanent {
            code: Some("REJECTED".into()),
            message: "Invalid MSISDN format".into()
        })
    );
}

#[tokio::test]
async fn a_400_carries_8x8s_code_and_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 1002, "message": "Invalid MSISDN format", "errorId": "e-1", "timestamp": "2026-11-21T10:00:00Z"
        })))
        .mount(&server)
        .await;
    match send(
        &server,
        json!({"destination": "+380501234567", "text": "hi"}),
    )
    .await
    {
        Err(SendError::Permanent { code, message }) => {
            assert_eq!(code.as_deref(), Some("1002"));
            assert_eq!(message, "Invalid MSISDN format (HTTP 400)");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_401_marks_the_account_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 1200, "message": "Unauthorized"})),
        )
        .mount(&server)
        .await;
    let err = send(
        &server,
        json!({"destination": "+380501234567", "text": "hi"}),
    )
    .await
    .err();
    assert!(
        matches!(err, Some(SendError::Unauthorized { ref code, .. }) if code.as_deref() == Some("1200")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_429_is_transient_and_carries_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3"))
        .mount(&server)
        .await;
    match send(
        &server,
        json!({"destination": "+380501234567", "text": "hi"}),
    )
    .await
    {
        Err(SendError::Transient { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("expected transient, got {other:?}"),
    }
}

#[tokio::test]
async fn a_5xx_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": 2000, "message": "Internal error"})),
        )
        .mount(&server)
        .await;
    let err = send(
        &server,
        json!({"destination": "+380501234567", "text": "hi"}),
    )
    .await
    .err();
    assert!(
        matches!(err, Some(SendError::Transient { ref reason, .. }) if reason.contains("2000: Internal error")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_timeout_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(queued().set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    let r = receiver(&server, Duration::from_millis(100));
    let prepared = r
        .prepare(
            fields(json!({"destination": "+380501234567", "text": "hi"})),
            "ref",
        )
        .expect("the request is prepared");
    let err = r.send(&prepared).await.err();
    assert!(
        matches!(err, Some(SendError::Transient { ref reason, .. }) if reason.contains("timed out")),
        "{err:?}"
    );
}

#[test]
fn checks_before_sending_and_previews_encoding_and_parts() {
    let account = EightXEightAccount {
        subaccount_id: "shop_main".into(),
        api_key: Secret::new("k"),
        base_url: "http://127.0.0.1:9".into(),
        rate_limit: None,
    };
    let r = EightXEight::new("test", &account, Duration::from_secs(1)).expect("it is made");
    let bad = r.prepare(
        fields(json!({"destination": "call me", "text": "hi"})),
        "ref",
    );
    assert!(
        matches!(bad, Err(SendError::Permanent { ref message, .. }) if message.contains("`call me` is not a phone number"))
    );
    let empty = r.prepare(
        fields(json!({"destination": "+380501234567", "text": "  "})),
        "ref",
    );
    assert!(empty.is_err());
    let ok = r
        .prepare(
            fields(json!({"destination": "+380501234567", "text": "Привіт, Олена!"})),
            "ref",
        )
        .expect("the request is prepared");
    assert_eq!(ok.notes["encoding"], "UCS-2");
    assert_eq!(ok.notes["parts"], 1);
    assert_eq!(ok.body["clientMessageId"], "ref");
    let long_ref = "x".repeat(400);
    let ok = r
        .prepare(
            fields(json!({"destination": "+380501234567", "text": "a"})),
            &long_ref,
        )
        .expect("the request is prepared");
    assert_eq!(ok.body["clientMessageId"].as_str().map(str::len), Some(350));
}

#[test]
fn destinations_follow_the_spec_pattern() {
    assert_eq!(
        destination("+380 (50) 123-45-67"),
        Ok("+380501234567".into())
    );
    assert_eq!(destination("12025550175"), Ok("12025550175".into()));
    assert!(destination("0501234567").is_err());
    assert!(destination("+12").is_err());
    assert!(destination("").is_err());
}

#[tokio::test]
async fn sends_wait_for_the_accounts_rate_limit_shared_by_every_client() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(queued())
        .mount(&server)
        .await;
    let account = EightXEightAccount {
        subaccount_id: "shop_main".into(),
        api_key: Secret::new("k"),
        base_url: server.uri(),
        rate_limit: Some(flows::RateLimit::Every {
            calls: 2,
            per: Duration::from_millis(500),
        }),
    };
    // Two clients (two flows) on the same account share one bucket.
    let a = EightXEight::new("limited", &account, Duration::from_secs(5)).expect("it is made");
    let b = EightXEight::new("limited", &account, Duration::from_secs(5)).expect("it is made");
    let request = a
        .prepare(
            fields(json!({"destination": "+380501234567", "text": "hi"})),
            "r",
        )
        .expect("the request is prepared");
    let started = std::time::Instant::now();
    for client in [&a, &b, &a, &b, &a, &b] {
        client.send(&request).await.expect("the call is answered");
    }
    // 2 at once, then one every 250 ms: the sixth cannot go before 1 s.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "six sends in {:?}",
        started.elapsed()
    );
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(6));
}

#[tokio::test]
async fn a_batch_is_one_request_with_an_outcome_per_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/subaccounts/shop_main/messages/batch"))
        .and(header("authorization", "Bearer test-key-123"))
        .and(body_json(json!({
            "messages": [
                {"destination": "+380501234567", "text": "one", "clientMessageId": "f:1"},
                {"destination": "+380501234568", "text": "two", "clientMessageId": "f:2"},
                {"destination": "+380501234569", "text": "three", "clientMessageId": "f:3"}
            ],
            "includeMessagesInResponse": true
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "batchId": "f1ea5276-a824-e711-8146-022a22cc1c71", "acceptedCount": 2, "rejectedCount": 1,
            "messages": [
                {"umid": "u-3", "clientMessageId": "f:3", "destination": "+380501234569", "encoding": "GSM7", "status": {"code": "QUEUED", "description": ""}},
                {"umid": "u-1", "clientMessageId": "f:1", "destination": "+380501234567", "encoding": "GSM7", "status": {"code": "QUEUED", "description": ""}},
                {"umid": "u-2", "clientMessageId": "f:2", "destination": "+380501234568", "encoding": "GSM7", "status": {"code": "REJECTED", "description": "Invalid MSISDN format"}}
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let r = receiver(&server, Duration::from_secs(5)).with_batch(100);
    assert_eq!(r.batch_size(), 100);
    let requests: Vec<_> = [
        ("+380501234567", "one", "f:1"),
        ("+380501234568", "two", "f:2"),
        ("+380501234569", "three", "f:3"),
    ]
    .iter()
    .map(|(d, t, id)| {
        r.prepare(fields(json!({"destination": d, "text": t})), id)
            .expect("the request is prepared")
    })
    .collect();
    let results = r.send_batch(&requests).await;
    assert_eq!(
        results[0]
            .as_ref()
            .ok()
            .and_then(|d| d.remote_id.clone())
            .as_deref(),
        Some("u-1")
    );
    assert_eq!(
        results[1].as_ref().err(),
        Some(&SendError::Permanent {
            code: Some("REJECTED".into()),
            message: "Invalid MSISDN format".into()
        })
    );
    assert_eq!(
        results[2]
            .as_ref()
            .ok()
            .and_then(|d| d.remote_id.clone())
            .as_deref(),
        Some("u-3")
    );
}

#[tokio::test]
async fn a_failed_batch_call_fails_every_message_the_same_way() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/subaccounts/shop_main/messages/batch"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": 2000, "message": "Internal error"})),
        )
        .mount(&server)
        .await;
    let r = receiver(&server, Duration::from_secs(5)).with_batch(10);
    let request = r
        .prepare(
            fields(json!({"destination": "+380501234567", "text": "x"})),
            "f:1",
        )
        .expect("the request is prepared");
    let results = r.send_batch(&[request.clone(), request]).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(SendError::Transient { .. }))),
        "{results:?}"
    );
}

#[tokio::test]
async fn get_message_reads_a_message_by_umid_and_says_when_there_is_none() {
    use engine::Lookup as _;
    let server = MockServer::start().await;
    let details = json!({
        "umid": "bda3d56d-1424-e711-813c-06ed3428fe67", "subAccountId": "shop_main", "direction": "outbound",
        "status": {"state": "delivered", "detail": "delivered_to_recipient", "timestamp": "2026-11-28T10:00:00Z"},
        "msisdn": "+380501234567", "body": "**MASKED**", "encoding": "GSM7", "smsCount": 1
    });
    let answers = [
        (
            "bda3d56d-1424-e711-813c-06ed3428fe67",
            ResponseTemplate::new(200).set_body_json(details.clone()),
        ),
        (
            "gone",
            ResponseTemplate::new(404).set_body_json(json!({"code": 1404, "message": "Not found"})),
        ),
        (
            "refused",
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": 1200, "message": "Unauthorized"})),
        ),
        (
            "busy",
            ResponseTemplate::new(429).insert_header("Retry-After", "1"),
        ),
    ];
    for (umid, answer) in answers.clone() {
        Mock::given(method("GET"))
            .and(path(format!("{MESSAGES}/{umid}")))
            .and(header("authorization", "Bearer test-key-123"))
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
    }
    // 8x8 allows one such call a second per sub-account: each case is its own account
    // here, so the test does not wait on the pace.
    let lookup = |name: &str| {
        let account = EightXEightAccount {
            subaccount_id: "shop_main".into(),
            api_key: Secret::new("test-key-123"),
            base_url: server.uri(),
            rate_limit: None,
        };
        super::MessageLookup::new(name, &account, Duration::from_secs(5))
    };
    let found = lookup("a").find(answers[0].0).await;
    assert_eq!(found, Ok(Some(details)));
    assert_eq!(lookup("b").find("gone").await, Ok(None));
    assert!(matches!(
        lookup("c").find("refused").await,
        Err(SendError::Unauthorized { .. })
    ));
    assert!(matches!(
        lookup("d").find("busy").await,
        Err(SendError::Transient { .. })
    ));
    assert!(lookup("e").find("  ").await.is_err(), "an empty umid");
}
