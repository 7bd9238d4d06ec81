use super::config::{Account as GoogleAccount, Source as SheetsSource};
use flows::{Backlog, Pos, Secret};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

/// A throwaway RSA key made for these tests only.
const TEST_KEY: &str = include_str!("test-key.pem");

fn config(key: &[&str]) -> SheetsSource {
    SheetsSource {
        account: "g".into(),
        spreadsheet_id: "1AbC".into(),
        range: "Orders!A1:D".into(),
        key: key.iter().map(|k| k.to_string()).collect(),
        backlog: Backlog::Skip,
        pos: Pos::default(),
    }
}

fn api_key_account(server: &MockServer) -> GoogleAccount {
    GoogleAccount {
        api_key: Some(Secret::new("AIza-test")),
        service_account_file: None,
        token_url: String::new(),
        base_url: server.uri(),
        rate_limit: None,
    }
}

fn values(rows: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"range": "Orders!A1:D6", "majorDimension": "ROWS", "values": rows}))
}

#[tokio::test]
async fn the_header_names_fields_blank_rows_are_skipped_and_short_rows_padded() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v4/spreadsheets/1AbC/values/Orders%21A1%3AD"))
        .and(query_param("key", "AIza-test"))
        .and(query_param("majorDimension", "ROWS"))
        .respond_with(values(json!([
            ["order_id", "name", "phone", "note"],
            ["A-1", "Olena", "+380501234567"],
            [],
            ["A-3", "Tom", "+12025550175", "vip"],
            ["", "no key", "+1"]
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let sheet = Sheet::new("google", &api_key_account(&server), &config(&["order_id"]))
        .unwrap_or_else(|e| panic!("{e}"));
    let fetched = sheet.fetch().await.unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<&str> = fetched.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        ["A-1", "A-3"],
        "never the header, the blank row skipped"
    );
    assert_eq!(
        fetched.records[0].fields["note"], "",
        "a short row is padded"
    );
    assert_eq!(fetched.rejects.len(), 1);
    assert_eq!(fetched.rejects[0].key, "row 5");
}

#[tokio::test]
async fn the_quota_429_backs_off_and_a_403_says_how_to_share_the_sheet() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0").set_body_json(json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded"}})))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(values(json!([["id"], ["1"]])))
        .mount(&server)
        .await;
    let sheet = Sheet::new("google", &api_key_account(&server), &config(&[]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sheet.fetch().await.map(|f| f.records.len()).ok(), Some(1));
    assert_eq!(
        server.received_requests().await.map(|r| r.len()),
        Some(3),
        "two 429s, then the read"
    );

    let denied = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "The caller does not have permission"}})))
        .mount(&denied)
        .await;
    let sheet = Sheet::new("google", &api_key_account(&denied), &config(&[]))
        .unwrap_or_else(|e| panic!("{e}"));
    let err = sheet.fetch().await.err().map(|e| e.0).unwrap_or_default();
    assert!(
        err.contains(
            "HTTP 403: PERMISSION_DENIED: The caller does not have permission (share the sheet"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_service_account_trades_a_signed_jwt_for_a_cached_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "ya29.test", "expires_in": 3599, "token_type": "Bearer"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer ya29.test"))
        .respond_with(values(json!([["id"], ["1"], ["2"]])))
        .expect(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key_file = dir.path().join("sa.json");
    let body = json!({"type": "service_account", "client_email": "flows@project.iam.gserviceaccount.com", "private_key": TEST_KEY});
    std::fs::write(&key_file, body.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let account = GoogleAccount {
        api_key: None,
        service_account_file: Some(key_file),
        token_url: format!("{}/token", server.uri()),
        base_url: server.uri(),
        rate_limit: None,
    };
    let sheet = Sheet::new("google", &account, &config(&["id"])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sheet.fetch().await.map(|f| f.records.len()).ok(), Some(2));
    assert_eq!(
        sheet.fetch().await.map(|f| f.records.len()).ok(),
        Some(2),
        "the second read reuses the token"
    );
    let requests = server.received_requests().await.unwrap_or_default();
    let form = String::from_utf8_lossy(&requests[0].body).to_string();
    assert!(
        form.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey"
        ),
        "{form}"
    );
}

#[test]
fn ranges_name_their_first_row() {
    assert_eq!(first_row("Orders!A1:D6"), 1);
    assert_eq!(first_row("'My Sheet'!B3:F"), 3);
    assert_eq!(first_row("A:ZZ"), 1);
}

#[tokio::test]
async fn append_row_posts_the_cells_with_a_write_scoped_token() {
    use engine::Receiver as _;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "ya29.write", "expires_in": 3599, "token_type": "Bearer"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v4/spreadsheets/sheet-1/values/Contacts%21A%3AC:append"))
        .and(wiremock::matchers::query_param("valueInputOption", "USER_ENTERED"))
        .and(wiremock::matchers::query_param("insertDataOption", "INSERT_ROWS"))
        .and(header("authorization", "Bearer ya29.write"))
        .and(wiremock::matchers::body_json(json!({"values": [["Olena", "+380501234567", 3]]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "spreadsheetId": "sheet-1", "updates": {"updatedRange": "Contacts!A7:C7", "updatedRows": 1}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v4/spreadsheets/locked/values/Contacts%21A%3AC:append"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key_file = dir.path().join("sa.json");
    let body = json!({"type": "service_account", "client_email": "writer@project.iam.gserviceaccount.com", "private_key": TEST_KEY});
    std::fs::write(&key_file, body.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let account = GoogleAccount {
        api_key: None,
        service_account_file: Some(key_file),
        token_url: format!("{}/token", server.uri()),
        base_url: server.uri(),
        rate_limit: None,
    };
    let append = |id: &str| {
        super::AppendRow::new(
            "google",
            &account,
            &super::config::Append {
                spreadsheet_id: id.into(),
                range: "Contacts!A:C".into(),
            },
            std::time::Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let fields = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let row = append("sheet-1");
    let request = row
        .prepare(
            fields(json!({"values": ["Olena", "+380501234567", 3]})),
            "r",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = row.send(&request).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sent.remote_id.as_deref(), Some("Contacts!A7:C7"));
    let locked = append("locked");
    let request = locked
        .prepare(fields(json!({"values": ["x"]})), "r")
        .unwrap_or_else(|e| panic!("{e}"));
    match locked.send(&request).await {
        Err(e) => assert!(
            e.to_string().contains("share the sheet, as an editor"),
            "{e}"
        ),
        Ok(_) => panic!("a 403 fails"),
    }
    assert!(
        matches!(
            row.prepare(fields(json!({})), "r"),
            Err(engine::SendError::Permanent { .. })
        ),
        "no cells, no row"
    );
    let read_only = super::AppendRow::new(
        "public",
        &api_key_account(&server),
        &super::config::Append {
            spreadsheet_id: "s".into(),
            range: "Sheet1".into(),
        },
        std::time::Duration::from_secs(5),
    );
    assert!(
        read_only
            .err()
            .is_some_and(|e| e.contains("appending rows needs a service account")),
        "an API key cannot write"
    );
}
