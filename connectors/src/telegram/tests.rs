use std::time::Duration;

use engine::{Receiver, SendError};
use flows::Secret;
use serde_json::{json, Map, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::config::Account;
use super::Telegram;

const TOKEN: &str = "123456789:AAtest-token_xyz";
const SEND: &str = "/bot123456789:AAtest-token_xyz/sendMessage";

fn account(server: &MockServer) -> Account {
    Account {
        bot_token: Secret::new(TOKEN),
        base_url: server.uri(),
        rate_limit: None,
    }
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

async fn send(server: &MockServer, body: Value) -> Result<engine::Delivered, SendError> {
    let bot = Telegram::new("ops-bot", &account(server), Duration::from_secs(5));
    let prepared = bot.prepare(fields(body), "alerts:A-1")?;
    bot.send(&prepared).await
}

fn refusal(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

#[tokio::test]
async fn sends_the_documented_request_and_keeps_the_message_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEND))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "chat_id": -1001234567890_i64,
            "text": "Run <b>failed</b>",
            "parse_mode": "HTML",
            "disable_notification": true
        })))
        .respond_with(refusal(
            200,
            json!({"ok": true, "result": {"message_id": 42, "chat": {"id": -1001234567890_i64}, "date": 1, "text": "Run failed"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let delivered = send(
        &server,
        json!({"chat_id": " -1001234567890 ", "text": "Run <b>failed</b>", "parse_mode": "HTML", "disable_notification": true}),
    )
    .await
    .expect("the call is answered");
    assert_eq!(delivered.remote_id.as_deref(), Some("42"));
}

#[tokio::test]
async fn the_token_is_only_on_the_wire_never_in_what_people_see() {
    let server = MockServer::start().await;
    let bot = Telegram::new("ops-bot", &account(&server), Duration::from_secs(5));
    let prepared = bot
        .prepare(
            fields(json!({"chat_id": "@shop_orders", "text": "hi"})),
            "r",
        )
        .expect("the request is prepared");
    assert_eq!(prepared.url, format!("{}/sendMessage", server.uri()));
    assert_eq!(
        prepared.body,
        json!({"chat_id": "@shop_orders", "text": "hi"})
    );
    // Nothing answers: the transport error names no token either.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("it succeeds");
    let gone = Account {
        base_url: format!("http://{nobody}"),
        ..account(&server)
    };
    let bot = Telegram::new("ops-bot", &gone, Duration::from_secs(5));
    let prepared = bot
        .prepare(
            fields(json!({"chat_id": "@shop_orders", "text": "hi"})),
            "r",
        )
        .expect("the request is prepared");
    let failed = bot.send(&prepared).await;
    assert!(
        matches!(&failed, Err(SendError::Transient { reason, .. }) if !reason.contains("AAtest")),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_chat_that_is_no_chat_or_a_text_too_long_fails_before_any_request() {
    let server = MockServer::start().await;
    for body in [
        json!({"chat_id": "", "text": "hi"}),
        json!({"chat_id": "shop orders", "text": "hi"}),
        json!({"chat_id": "@ab", "text": "hi"}),
        json!({"chat_id": "123", "text": "  "}),
        json!({"chat_id": "123", "text": "x".repeat(4097)}),
    ] {
        let failed = send(&server, body.clone()).await;
        assert!(
            matches!(failed, Err(SendError::Permanent { .. })),
            "{body}: {failed:?}"
        );
    }
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}

#[tokio::test]
async fn each_refusal_is_classified_as_the_bot_api_means_it() {
    let cases = [
        // The chat: this record fails, the next goes on.
        (
            refusal(
                400,
                json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
            ),
            "permanent",
        ),
        (
            refusal(
                403,
                json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
            ),
            "permanent",
        ),
        // The account: runs stop sending with it.
        (
            refusal(
                401,
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ),
            "account",
        ),
        (
            refusal(
                404,
                json!({"ok": false, "error_code": 404, "description": "Not Found"}),
            ),
            "account",
        ),
        // Later.
        (
            refusal(
                500,
                json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}),
            ),
            "transient",
        ),
    ];
    for (answer, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(SEND))
            .respond_with(answer)
            .mount(&server)
            .await;
        let failed = send(&server, json!({"chat_id": 5, "text": "hi"})).await;
        let kind = match &failed {
            Err(SendError::Permanent { code, message }) => {
                assert_eq!(
                    code.as_deref().map(|c| c.len() == 3),
                    Some(true),
                    "{failed:?}"
                );
                assert!(message.contains("(HTTP 4"), "{failed:?}");
                "permanent"
            }
            Err(SendError::Unauthorized { .. }) => "account",
            Err(SendError::Transient { .. }) => "transient",
            other => panic!("{other:?}"),
        };
        assert_eq!(kind, expected, "{failed:?}");
    }
}

#[tokio::test]
async fn too_many_requests_waits_as_long_as_the_body_asks() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SEND))
        .respond_with(refusal(
            429,
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}}),
        ))
        .mount(&server)
        .await;
    let failed = send(&server, json!({"chat_id": 5, "text": "hi"})).await;
    assert!(
        matches!(&failed, Err(SendError::Transient { reason, retry_after: Some(wait) })
            if *wait == Duration::from_secs(7) && reason.contains("Too Many Requests")),
        "{failed:?}"
    );
    // A `Retry-After` header wins over the body.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            refusal(429, json!({"ok": false, "error_code": 429, "description": "Too Many Requests", "parameters": {"retry_after": 7}}))
                .insert_header("retry-after", "3"),
        )
        .mount(&server)
        .await;
    let failed = send(&server, json!({"chat_id": 5, "text": "hi"})).await;
    assert!(
        matches!(&failed, Err(SendError::Transient { retry_after: Some(wait), .. }) if *wait == Duration::from_secs(3)),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_taken_message_whose_answer_cannot_be_read_is_sent_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>ok</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let delivered = send(&server, json!({"chat_id": 5, "text": "hi"})).await;
    assert_eq!(delivered, Ok(engine::Delivered { remote_id: None }));
}

#[tokio::test]
async fn the_account_check_asks_get_me() {
    use crate::Connector as _;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/bot123456789:AAtest-token_xyz/getMe"))
        .respond_with(refusal(
            200,
            json!({"ok": true, "result": {"id": 1, "is_bot": true, "username": "ops_bot"}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/botinvalid:x/getMe"))
        .respond_with(refusal(
            401,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
        ))
        .mount(&server)
        .await;
    let as_account = |account: Account| flows::Account {
        name: "ops-bot".into(),
        pos: flows::Pos::new(1, 1),
        connector: "telegram",
        secrets: account.secrets(),
        section: flows::Section::new(account),
        fingerprint: 0,
    };
    let good = as_account(account(&server));
    let checked = super::TelegramConnector.check_account(&good).await;
    assert!(
        matches!(&checked, Ok(said) if said.contains("getMe")),
        "{checked:?}"
    );
    let bad = as_account(Account {
        bot_token: Secret::new("invalid:x"),
        ..account(&server)
    });
    let checked = super::TelegramConnector.check_account(&bad).await;
    assert!(
        matches!(&checked, Err(said) if said.to_string().contains("refused (HTTP 401): 401: Unauthorized")),
        "{checked:?}"
    );
}
