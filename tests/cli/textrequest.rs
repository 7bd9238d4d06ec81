//! A Text Request trigger through the real daemon: the daemon registers a hook per event
//! on the dashboard (once — a restart does not register it again), queues the texts
//! Text Request posts, answers each once, and deletes the hook when the flow goes.

use std::time::Duration;

use serde_json::Value;

use super::*;

const REPLIES: &str = r#"source:
  connector: textrequest
  account: tr-main
  dashboard_id: 121
  events: [msg_received]
  public_url: https://hooks.example.com/hooks/replies
receiver:
  connector: textrequest
  action: send_message
  account: tr-main
  dashboard_id: 121
map:
  phone_number: "{{phone}}"
  body: "Thanks {{name}}, we got your message: {{message}}"
"#;

async fn until(server: &MockServer, method_name: &str, path_part: &str, n: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = requests_to(server, method_name, path_part).await;
        if seen.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

async fn stop(daemon: &mut Child) {
    let pid = daemon.0.id().unwrap_or_default().to_string();
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(40), daemon.0.wait()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_received_on_a_dashboard_get_one_reply_each() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/dashboards/121/hooks"))
        .and(header("x-api-key", "tr-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": 31, "target_url": format!("https://hooks.example.com/hooks/replies?event=msg_received&sb_token={}", token()), "event": "msg_received"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/dashboards/121/hooks/31"))
        .and(header("x-api-key", "tr-key"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/dashboards/121/contacts/%2B14239876543/messages"))
        .and(header("x-api-key", "tr-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message_id": 7})))
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/accounts.yaml",
        &format!(
            "tr-main:\n  connector: textrequest\n  api_key: tr-key\n  base_url: {}\n  rate_limit: off\n",
            server.uri()
        ),
    );
    dir.private("flows/accounts.yaml");
    dir.write("flows/replies.yaml", REPLIES);

    let mut daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let hooks = until(&server, "POST", "/hooks", 1).await;
    assert_eq!(
        hooks,
        [
            json!({"target_url": format!("https://hooks.example.com/hooks/replies?event=msg_received&sb_token={}", token()), "event": "msg_received", "httpVerb": "POST"})
        ]
    );

    let text = json!({"messageUniqueIdentifier": "m-1", "account": {"id": 77},
        "yourPhoneNumber": {"id": 121, "description": "Front desk", "phoneNumber": "+14235550100"},
        "conversation": {"id": 9001, "date": "2026-11-21T12:08:00Z", "consumerPhoneNumber": "+14239876543",
            "messageDirection": "Received", "message": "Is my order ready?", "consumerFriendlyName": "Olena"}});
    let http = reqwest::Client::new();
    let hook = format!(
        "{api}/hooks/replies?event=msg_received&sb_token={}",
        token()
    );
    // Without the token the URL carries, a post is refused: anyone could otherwise send.
    let forged = http
        .post(format!("{api}/hooks/replies?event=msg_received"))
        .json(&text)
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(forged.ok(), Some(401));
    for _ in 0..2 {
        let answer: Value = http
            .post(&hook)
            .json(&text)
            .send()
            .await
            .expect("the call is answered")
            .json()
            .await
            .unwrap_or_default();
        assert_eq!(answer["queued"], 1, "{answer}");
    }
    let bad = http
        .post(&hook)
        .json(&json!({"no": "conversation"}))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(bad.status().as_u16(), 400);

    let replies = until(&server, "POST", "/messages", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies_after = requests_to(&server, "POST", "/messages").await;
    assert_eq!(
        replies,
        [json!({"body": "Thanks Olena, we got your message: Is my order ready?"})]
    );
    assert_eq!(
        replies_after.len(),
        1,
        "the text posted twice is answered once"
    );

    // A restart keeps the registered hook: no second registration.
    stop(&mut daemon).await;
    let daemon = spawn_daemon(&dir);
    let _ = api_of(&dir, &daemon).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        requests_to(&server, "POST", "/hooks").await.len(),
        1,
        "registered once"
    );

    // The flow goes: its hook is deleted.
    std::fs::remove_file(dir.path().join("flows/replies.yaml")).expect("the test removes the file");
    let deleted = until(&server, "DELETE", "/hooks/31", 1).await;
    assert_eq!(
        deleted.len(),
        1,
        "the hook is deleted when the flow is removed"
    );
}

/// The token the daemon puts in the hook URLs it registers for the test's account.
fn token() -> String {
    runtime::connectors::push::hook_token("tr-key", "textrequest")
}
