use std::collections::BTreeMap;
use std::time::Duration;

use super::config::Account as HttpAccount;
use engine::{Receiver, SendError};
use flows::Secret;
use serde_json::{json, Map, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::HttpRequest;

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn method_url_headers_and_body_come_from_the_map_and_secrets_from_the_account() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/v1/tickets/42"))
        .and(header("authorization", "Bearer s3cret"))
        .and(header("x-source", "switchboard"))
        .and(body_json(json!({"status": "closed", "tags": ["sms"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 42})))
        .expect(1)
        .mount(&server)
        .await;
    let account = HttpAccount {
        base_url: Some(format!("{}/v1", server.uri())),
        headers: BTreeMap::from([("Authorization".to_string(), Secret::new("Bearer s3cret"))]),
        rate_limit: None,
    };
    let r = HttpRequest::new("api", &account, Duration::from_secs(5)).expect("it is made");
    let request = r
        .prepare(
            fields(json!({"method": "put", "url": "tickets/42", "headers": {"X-Source": "switchboard"}, "body": {"status": "closed", "tags": ["sms"]}})),
            "r",
        )
        .expect("the request is prepared");
    assert!(
        !serde_json::to_string(&request)
            .unwrap_or_default()
            .contains("s3cret"),
        "previews never show account headers"
    );
    assert_eq!(
        r.send(&request)
            .await
            .ok()
            .and_then(|d| d.remote_id)
            .as_deref(),
        Some("42")
    );
}

#[tokio::test]
async fn errors_are_classified_like_every_other_receiver() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"code": "invalid", "message": "email is required"})),
        )
        .mount(&server)
        .await;
    let r = HttpRequest::new(
        "api",
        &HttpAccount {
            base_url: None,
            headers: BTreeMap::new(),
            rate_limit: None,
        },
        Duration::from_secs(5),
    )
    .expect("it is made");
    let request = r
        .prepare(
            fields(json!({"url": format!("{}/x", server.uri()), "body": {}})),
            "r",
        )
        .expect("the request is prepared");
    assert_eq!(
        r.send(&request).await.err(),
        Some(SendError::Permanent {
            code: Some("invalid".into()),
            message: "email is required (HTTP 422)".into()
        })
    );
    assert!(
        r.prepare(fields(json!({"url": "relative/path"})), "r")
            .is_err(),
        "a relative url needs a base_url"
    );
}
