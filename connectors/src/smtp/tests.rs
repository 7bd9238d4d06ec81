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
        .expect("the port is free");
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
    .expect("it is made");
    let request = smtp
        .prepare(
            fields(json!({"to": "ops@example.com, Olena <olena@example.com>", "subject": "Замовлення A-1 сплачено", "body": "Line one\n.dot line\nЛист"})),
            "orders:A-1",
        )
        .expect("the request is prepared");
    assert_eq!(request.method, "SMTP");
    assert_eq!(request.url, format!("smtp://127.0.0.1:{port}"));
    let sent = smtp.send(&request).await.expect("the call is answered");
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
            .expect("it is made");
        let request = smtp
            .prepare(fields(json!({"to": to, "subject": "s", "body": "b"})), "r")
            .expect("the request is prepared");
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
    let closed = Smtp::new("mail", &account(1, "pw"), Duration::from_secs(2)).expect("it is made");
    let request = closed
        .prepare(
            fields(json!({"to": "a@example.com", "subject": "s", "body": "b"})),
            "r",
        )
        .expect("the request is prepared");
    assert!(matches!(
        closed.send(&request).await,
        Err(SendError::Transient { .. })
    ));
}

#[test]
fn a_record_that_cannot_be_an_email_fails_before_sending() {
    let smtp = Smtp::new("mail", &account(25, "pw"), Duration::from_secs(1)).expect("it is made");
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

/// What a hostile server does once the client has sent the message data.
#[derive(Clone, Copy, PartialEq)]
enum After {
    /// Closes the connection without answering.
    Drop,
    /// Answers nothing, ever.
    Stall,
    /// Answers 250, and records the data it got.
    Accept,
}

/// A minimal SMTP server that behaves as `after` says once the data is in; the raw data
/// it received comes back through the channel.
async fn hostile(after: After) -> (u16, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the port is free");
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                let _ = write.write_all(b"220 hostile ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let command = line.to_ascii_uppercase();
                    let answer: &[u8] = if command.starts_with("EHLO") {
                        b"250-hostile\r\n250 AUTH PLAIN LOGIN\r\n"
                    } else if command.starts_with("AUTH") {
                        b"235 ok\r\n"
                    } else if command.starts_with("DATA") {
                        let _ = write.write_all(b"354 go on\r\n").await;
                        let mut data = Vec::new();
                        let mut byte = [0u8; 1];
                        while !data.ends_with(b"\r\n.\r\n") {
                            if read.read(&mut byte).await.unwrap_or(0) == 0 {
                                return;
                            }
                            data.push(byte[0]);
                        }
                        let _ = tx.send(data);
                        match after {
                            After::Drop => return,
                            After::Stall => {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                                return;
                            }
                            After::Accept => b"250 2.0.0 queued as Q1\r\n",
                        }
                    } else if command.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = write.write_all(answer).await;
                }
            });
        }
    });
    (port, rx)
}

fn email(body: &str) -> Map<String, Value> {
    fields(json!({"to": "ops@example.com", "subject": "Disk", "body": body}))
}

/// A server that drops the connection, or goes silent, once the message is on the wire
/// leaves the e-mail's fate unknown: an uncertain send (never retried into a second
/// copy), within the delivery timeout — not a transient failure, and not a hang.
#[tokio::test]
async fn a_server_lost_after_the_data_makes_an_uncertain_send_within_the_timeout() {
    for after in [After::Drop, After::Stall] {
        let (port, mut got) = hostile(after).await;
        let smtp = Smtp::new(
            "mail",
            &account(port, "app-password"),
            Duration::from_millis(800),
        )
        .expect("it is made");
        let request = smtp
            .prepare(email("hello"), "r")
            .expect("the request is prepared");
        let started = std::time::Instant::now();
        let sent = tokio::time::timeout(Duration::from_secs(10), smtp.send(&request))
            .await
            .unwrap_or_else(|_| panic!("the send hung"));
        assert!(
            matches!(sent, Err(SendError::Uncertain { .. })),
            "{:?}",
            sent.err()
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(got.recv().await.is_some(), "the data reached the server");
    }
}

/// A bare CR in a field never reaches the message data (SMTP smuggling: `\r.\r` ends
/// the data for some servers, and what follows becomes a second e-mail).
#[tokio::test]
async fn a_bare_cr_never_reaches_the_message_data() {
    let (port, mut got) = hostile(After::Accept).await;
    let smtp = Smtp::new(
        "mail",
        &account(port, "app-password"),
        Duration::from_secs(5),
    )
    .expect("it is made");
    let body = "hi\r.\rMAIL FROM:<ceo@example.com>\rRCPT TO:<all@example.com>\n.\nend";
    let request = smtp
        .prepare(email(body), "r")
        .expect("the request is prepared");
    let sent = smtp.send(&request).await;
    assert!(sent.is_ok(), "{:?}", sent.err());
    let data = got.recv().await.unwrap_or_default();
    for (i, byte) in data.iter().enumerate() {
        if *byte == b'\r' {
            assert_eq!(data.get(i + 1), Some(&b'\n'), "a bare CR at byte {i}");
        }
        if *byte == b'\n' {
            assert_eq!(
                i.checked_sub(1).map(|j| data[j]),
                Some(b'\r'),
                "a bare LF at {i}"
            );
        }
    }
    // The line that was `.` alone is dot-stuffed, so only the real end ends the data.
    assert_eq!(data.windows(5).filter(|w| *w == b"\r\n.\r\n").count(), 1);
}
