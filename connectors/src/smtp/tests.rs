use std::time::Duration;

use engine::{Receiver, SendError};
use flows::Secret;
use serde_json::{json, Map, Value};

use super::config::{Account, Tls};
use super::Smtp;
use crate::standin::Recorder;

/// The stand-in on a free port, and what it records.
async fn server() -> (u16, Recorder) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let recorder = Recorder::default();
    tokio::spawn(super::standin::serve(listener, recorder.clone()));
    (port, recorder)
}

fn account(port: u16, password: &str) -> Account {
    Account {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: Tls::None,
        username: Some("alerts".into()),
        password: Some(Secret::new(password)),
        from: "Switchboard <alerts@example.com>".into(),
        rate_limit: None,
    }
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_email_goes_through_the_smtp_conversation_as_written() {
    let (port, recorder) = server().await;
    let smtp = Smtp::new(
        "mail",
        &account(port, "app-password"),
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let request = smtp
        .prepare(
            fields(json!({"to": "ops@example.com, Olena <olena@example.com>", "subject": "Замовлення A-1 сплачено", "body": "Line one\n.dot line\nЛист"})),
            "orders:A-1",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(request.method, "SMTP");
    assert_eq!(request.url, format!("smtp://127.0.0.1:{port}"));
    let sent = smtp.send(&request).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        sent.remote_id
            .as_deref()
            .is_some_and(|id| id.starts_with("2.0.0 OK: queued as sandbox-")),
        "{sent:?}"
    );
    let got = recorder.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["from"], "alerts@example.com");
    assert_eq!(
        got[0]["to"],
        json!(["ops@example.com", "olena@example.com"])
    );
    assert_eq!(got[0]["subject"], "Замовлення A-1 сплачено");
    assert_eq!(
        got[0]["body"].as_str().map(str::trim_end),
        Some("Line one\n.dot line\nЛист")
    );
}

#[tokio::test]
async fn each_refusal_keeps_its_class() {
    let (port, _) = server().await;
    let send = |password: &'static str, to: &'static str| async move {
        let smtp = Smtp::new("mail", &account(port, password), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}"));
        let request = smtp
            .prepare(fields(json!({"to": to, "subject": "s", "body": "b"})), "r")
            .unwrap_or_else(|e| panic!("{e}"));
        smtp.send(&request).await
    };
    assert!(matches!(
        send("invalid-password", "ops@example.com").await,
        Err(SendError::Unauthorized { code: Some(code), .. }) if code == "535"
    ));
    assert!(matches!(
        send("pw", "invalid@example.com").await,
        Err(SendError::Permanent { code: Some(code), .. }) if code == "550"
    ));
    assert!(matches!(
        send("pw", "busy@example.com").await,
        Err(SendError::Transient { .. })
    ));
    // Nobody listening: transient.
    let closed = Smtp::new("mail", &account(1, "pw"), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("{e}"));
    let request = closed
        .prepare(
            fields(json!({"to": "a@example.com", "subject": "s", "body": "b"})),
            "r",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        closed.send(&request).await,
        Err(SendError::Transient { .. })
    ));
}

#[test]
fn a_record_that_cannot_be_an_email_fails_before_sending() {
    let smtp = Smtp::new("mail", &account(25, "pw"), Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}"));
    for (record, why) in [
        (
            json!({"to": "not an address", "subject": "s", "body": "b"}),
            "`to`: `not an address` is not an e-mail address",
        ),
        (
            json!({"to": "", "subject": "s", "body": "b"}),
            "`to` is empty",
        ),
        (
            json!({"to": "a@example.com", "subject": " ", "body": "b"}),
            "subject is empty",
        ),
        (
            json!({"to": "a@example.com", "subject": "a\r\nBcc: x@evil.example", "body": "b"}),
            "subject holds a line break",
        ),
        (
            json!({"to": "a@example.com", "subject": "s", "body": ""}),
            "body is empty",
        ),
    ] {
        match smtp.prepare(fields(record.clone()), "r") {
            Err(e) => assert!(e.to_string().contains(why), "{record}: {e}"),
            Ok(_) => panic!("{record} was taken"),
        }
    }
}
