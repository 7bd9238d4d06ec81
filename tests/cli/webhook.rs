//! The generic webhook source through the real daemon: a signed event is queued durably,
//! answered 200 and sent; a resent event is not sent twice; bad JSON (400), a wrong
//! signature (401) and an oversize body (413) are refused with a reason and never reach
//! a run.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::*;

pub(crate) const SECRET: &str = "hook-secret-0123456789abcdef";

pub(crate) fn sign(body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("new_from_slice succeeds");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_are_queued_sent_once_and_bad_requests_never_reach_a_run() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/accounts.yaml",
        &format!(
            "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${{EIGHTX8_API_KEY}}\n  base_url: {}\nhook:\n  connector: webhook\n  secret: {SECRET}\n  signature: hmac\n",
            server.uri()
        ),
    );
    dir.private("flows/accounts.yaml");
    dir.write(
        "flows/signup.yaml",
        "source: {connector: webhook, account: hook, key: id, max_body: 300}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{customer.name}}\"\n",
    );
    let validate = dir.run(&["validate"]).await;
    assert_eq!(validate.code, 0, "{validate:?}");

    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let hook = format!("{api}/hooks/signup");
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, signature: Option<String>| {
        let mut request = http
            .post(&hook)
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-signature-256", signature);
        }
        request.send()
    };

    let event =
        br#"{"id": "c-1", "phone": "+380501234567", "customer": {"name": "Olena"}}"#.to_vec();
    let ok = post(event.clone(), Some(sign(&event)))
        .await
        .expect("the POST is answered");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(
        ok.json::<Value>().await.unwrap_or_default(),
        json!({"queued": 1, "keys": ["c-1"]})
    );

    let refusals: Vec<(Vec<u8>, Option<String>, u16, &str)> = vec![
        (
            b"{\"id\": \"c-2\",".to_vec(),
            None,
            400,
            "the body is not valid JSON",
        ),
        (
            br#"["not an object"]"#.to_vec(),
            None,
            400,
            "event 0 is not a JSON object",
        ),
        (
            br#"{"phone": "+380501234567"}"#.to_vec(),
            None,
            400,
            "event 0 has no `id` (the flow's key)",
        ),
        (
            br#"{"id": "c-3", "phone": "+380501234567"}"#.to_vec(),
            Some("sha256=00".into()),
            401,
            "wrong signature",
        ),
        (
            br#"{"id": "c-4", "phone": "+380501234567"}"#.to_vec(),
            Some(String::new()),
            401,
            "missing signature",
        ),
        (
            format!("{{\"id\": \"c-5\", \"pad\": \"{}\"}}", "x".repeat(400)).into_bytes(),
            None,
            413,
            "accepts at most 300",
        ),
    ];
    for (body, signature, status, reason) in refusals {
        let signature = match signature {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(s),
            None => Some(sign(&body)),
        };
        let response = post(body, signature).await.expect("the POST is answered");
        assert_eq!(response.status().as_u16(), status, "{reason}");
        let error = response.json::<Value>().await.unwrap_or_default()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(reason), "{error:?} should say {reason:?}");
    }

    // The same event again (a sender's retry): accepted, not sent twice.
    let again = post(event.clone(), Some(sign(&event)))
        .await
        .expect("the POST is answered");
    assert_eq!(again.status().as_u16(), 200);
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = bodies(&server).await;
        let runs: Value = reqwest::get(format!("{api}/api/flows/signup/runs"))
            .await
            .expect("the GET is answered")
            .json()
            .await
            .unwrap_or_default();
        if !sent.is_empty()
            && runs["runs"]
                .as_array()
                .is_some_and(|r| r.len() >= 2 && r.iter().all(|r| r["status"] != "running"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sent.len(), 1, "one event, one SMS: {sent:?}");
    assert_eq!(sent[0]["text"], "Welcome Olena");
    assert_eq!(sent[0]["clientMessageId"], "signup:c-1");
    let runs: Value = reqwest::get(format!("{api}/api/flows/signup/runs"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .unwrap_or_default();
    assert!(
        runs["runs"].as_array().map(Vec::len).unwrap_or(0) <= 2,
        "refused requests start no run: {runs:#}"
    );
    drop(daemon);
}
