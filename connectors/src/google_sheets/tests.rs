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

/// Sheets' answer for `range`: these rows.
fn page(range: &str, rows: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"range": range, "majorDimension": "ROWS", "values": rows}))
}

/// The answer for the tests' usual range, `Orders!A1:D6`.
fn values(rows: serde_json::Value) -> ResponseTemplate {
    page("Orders!A1:D6", rows)
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
        .expect("it is made");
    let fetched = sheet.fetch().await.expect("the source is read");
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
    let sheet = Sheet::new("google", &api_key_account(&server), &config(&[])).expect("it is made");
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
    let sheet = Sheet::new("google", &api_key_account(&denied), &config(&[])).expect("it is made");
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
    let dir = tempfile::tempdir().expect("a temporary directory");
    let key_file = dir.path().join("sa.json");
    let body = json!({"type": "service_account", "client_email": "flows@project.iam.gserviceaccount.com", "private_key": TEST_KEY});
    std::fs::write(&key_file, body.to_string()).expect("the test writes its file");
    let account = GoogleAccount {
        api_key: None,
        service_account_file: Some(key_file),
        token_url: format!("{}/token", server.uri()),
        base_url: server.uri(),
        rate_limit: None,
    };
    let sheet = Sheet::new("google", &account, &config(&["id"])).expect("it is made");
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
    assert_eq!(range::origin("Orders!A1:D6").row, 1);
    assert_eq!(range::origin("'My Sheet'!B3:F").row, 3);
    assert_eq!(range::origin("A:ZZ").row, 1);
}

/// A service account (its key file in `dir`) whose tokens come from `server`; each test
/// names its own `email`, as tokens are cached per service account in the process.
fn service_account(server: &MockServer, dir: &tempfile::TempDir, email: &str) -> GoogleAccount {
    let key_file = dir.path().join("sa.json");
    let body = json!({"type": "service_account", "client_email": email, "private_key": TEST_KEY});
    std::fs::write(&key_file, body.to_string()).expect("the test writes its file");
    GoogleAccount {
        api_key: None,
        service_account_file: Some(key_file),
        token_url: format!("{}/token", server.uri()),
        base_url: server.uri(),
        rate_limit: None,
    }
}

fn token_mount(token: &str) -> Mock {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
        ))
}

fn keyed(id: &str) -> super::config::Keyed {
    super::config::Keyed {
        spreadsheet_id: id.into(),
        range: "Orders!A1:D".into(),
        key: "order_id".into(),
        input: None,
    }
}

#[tokio::test]
async fn find_row_gives_the_first_row_whose_key_column_holds_the_query() {
    use engine::Lookup as _;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v4/spreadsheets/1AbC/values/Orders%21A1%3AD"))
        .and(query_param("key", "AIza-test"))
        .respond_with(values(json!([
            ["order_id", "name", "phone", "status"],
            ["A-1", "Olena", "+380501234567", "paid"],
            [],
            [" A-3 ", "Tom"],
            ["A-3", "Second Tom"]
        ])))
        .mount(&server)
        .await;
    let find = super::FindRow::new(
        "google",
        &api_key_account(&server),
        &keyed("1AbC"),
        std::time::Duration::from_secs(5),
    );
    let found = find.find("A-3").await.expect("the look-up answers");
    // Cells Sheets left out are empty; `_row` is the row number on the sheet.
    assert_eq!(
        found,
        Some(json!({"order_id": " A-3 ", "name": "Tom", "phone": "", "status": "", "_row": 4}))
    );
    assert_eq!(find.find("Z-9").await.ok(), Some(None), "no such row");
    let wrong = super::FindRow::new(
        "google",
        &api_key_account(&server),
        &super::config::Keyed {
            key: "order".into(),
            ..keyed("1AbC")
        },
        std::time::Duration::from_secs(5),
    );
    match wrong.find("A-1").await {
        Err(engine::SendError::Permanent { message, .. }) => assert!(
            message.contains("no column `order` (its header: order_id, name, phone, status)"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn update_row_changes_only_the_named_cells_of_the_row_found_by_key() {
    use engine::Receiver as _;
    let server = MockServer::start().await;
    token_mount("ya29.update").expect(1).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/v4/spreadsheets/sheet-2/values/Orders%21A1%3AD"))
        .and(header("authorization", "Bearer ya29.update"))
        .respond_with(values(json!([
            ["order_id", "name", "phone", "status"],
            ["A-1", "Olena", "+380501234567", "new"],
            ["A-2", "Tom", "+12025550175", "new"]
        ])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v4/spreadsheets/sheet-2/values:batchUpdate"))
        .and(header("authorization", "Bearer ya29.update"))
        .and(wiremock::matchers::body_json(json!({
            "valueInputOption": "RAW",
            "data": [
                // in the order the flow names them
                {"range": "Orders!D3", "majorDimension": "ROWS", "values": [["paid"]]},
                {"range": "Orders!B3", "majorDimension": "ROWS", "values": [["Tom K."]]}
            ]
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"spreadsheetId": "sheet-2", "totalUpdatedCells": 2})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let account = service_account(&server, &dir, "updater@project.iam.gserviceaccount.com");
    let update = super::UpdateRow::new(
        "google",
        &account,
        &keyed("sheet-2"),
        std::time::Duration::from_secs(5),
    )
    .expect("it is made");
    let fields = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let request = update
        .prepare(
            fields(json!({"find": "A-2", "values": {"status": "paid", "name": "Tom K."}})),
            "r",
        )
        .expect("the request is prepared");
    let sent = update.send(&request).await.expect("the call is answered");
    assert_eq!(sent.remote_id.as_deref(), Some("Orders!A3"));
    // No such row, no such column: the record fails with what the sheet has.
    let missing = update
        .prepare(
            fields(json!({"find": "A-9", "values": {"status": "paid"}})),
            "r",
        )
        .expect("the request is prepared");
    match update.send(&missing).await {
        Err(engine::SendError::Permanent { code, message }) => {
            assert_eq!(code.as_deref(), Some("not_found"));
            assert!(
                message.contains("no row of Orders!A1:D has order_id `A-9`"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let unknown = update
        .prepare(
            fields(json!({"find": "A-1", "values": {"state": "paid"}})),
            "r",
        )
        .expect("the request is prepared");
    assert!(
        matches!(update.send(&unknown).await, Err(engine::SendError::Permanent { message, .. }) if message.contains("no column `state`")),
    );
    for bad in [
        json!({"values": {"status": "paid"}}),
        json!({"find": "A-1", "values": {}}),
        json!({"find": "A-1", "values": ["paid"]}),
    ] {
        assert!(update.prepare(fields(bad.clone()), "r").is_err(), "{bad}");
    }
    // Writing needs a service account.
    assert!(super::UpdateRow::new(
        "public",
        &api_key_account(&server),
        &keyed("s"),
        std::time::Duration::from_secs(5)
    )
    .is_err());
}

#[tokio::test]
async fn update_row_failures_keep_their_class() {
    use engine::Receiver as _;
    let server = MockServer::start().await;
    token_mount("ya29.classes").mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/v4/spreadsheets/busy/values/Orders%21A1%3AD"))
        .respond_with(values(json!([["order_id", "status"], ["A-1", "new"]])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v4/spreadsheets/busy/values:batchUpdate"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"code": 503, "message": "Backend Error", "status": "UNAVAILABLE"}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v4/spreadsheets/gone/values/Orders%21A1%3AD"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let account = service_account(&server, &dir, "classes@project.iam.gserviceaccount.com");
    let fields = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let send = |id: &str| {
        let update = super::UpdateRow::new(
            "google",
            &account,
            &keyed(id),
            std::time::Duration::from_secs(5),
        )
        .expect("it is made");
        async move {
            let request = update
                .prepare(
                    fields(json!({"find": "A-1", "values": {"status": "paid"}})),
                    "r",
                )
                .expect("the request is prepared");
            update.send(&request).await
        }
    };
    assert!(matches!(
        send("busy").await,
        Err(engine::SendError::Transient { .. })
    ));
    match send("gone").await {
        Err(engine::SendError::Permanent { message, .. }) => {
            assert!(message.contains("check spreadsheet_id"), "{message}")
        }
        other => panic!("{other:?}"),
    }
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
        .and(wiremock::matchers::query_param("valueInputOption", "RAW"))
        .and(wiremock::matchers::query_param("insertDataOption", "INSERT_ROWS"))
        .and(header("authorization", "Bearer ya29.write"))
        .and(wiremock::matchers::body_json(json!({"values": [["Olena", "+380501234567", 3]]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "spreadsheetId": "sheet-1", "updates": {"updatedRange": "Contacts!A7:C7", "updatedRows": 1}
        })))
        .expect(1)
        .mount(&server)
        .await;
    // A flow that writes formulas on purpose says so: the sheet takes them as typed.
    Mock::given(method("POST"))
        .and(path("/v4/spreadsheets/formulas/values/Contacts%21A%3AC:append"))
        .and(wiremock::matchers::query_param("valueInputOption", "USER_ENTERED"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "spreadsheetId": "formulas", "updates": {"updatedRange": "Contacts!A8:C8", "updatedRows": 1}
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
    let dir = tempfile::tempdir().expect("a temporary directory");
    let account = service_account(&server, &dir, "writer@project.iam.gserviceaccount.com");
    let append_with = |id: &str, input: super::config::Input| {
        super::AppendRow::new(
            "google",
            &account,
            &super::config::Append {
                spreadsheet_id: id.into(),
                range: "Contacts!A:C".into(),
                input,
            },
            std::time::Duration::from_secs(5),
        )
        .expect("it is made")
    };
    let append = |id: &str| append_with(id, super::config::Input::Raw);
    let fields = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let formulas = append_with("formulas", super::config::Input::UserEntered);
    let request = formulas
        .prepare(fields(json!({"values": ["=SUM(1,2)", "x", 1]})), "r")
        .expect("the request is prepared");
    formulas.send(&request).await.expect("the call is answered");
    let row = append("sheet-1");
    let request = row
        .prepare(
            fields(json!({"values": ["Olena", "+380501234567", 3]})),
            "r",
        )
        .expect("the request is prepared");
    let sent = row.send(&request).await.expect("the call is answered");
    assert_eq!(sent.remote_id.as_deref(), Some("Contacts!A7:C7"));
    let locked = append("locked");
    let request = locked
        .prepare(fields(json!({"values": ["x"]})), "r")
        .expect("the request is prepared");
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
            input: Default::default(),
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

/// Everything a stream hands over: its chunks, and the error that ended it.
async fn drain(sheet: &Sheet) -> (Vec<Fetched>, Option<String>) {
    let mut chunks = sheet.stream(5_000).await;
    let mut got = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        match chunk {
            Ok(chunk) => got.push(chunk),
            Err(e) => return (got, Some(e.0)),
        }
    }
    (got, None)
}

#[tokio::test]
async fn a_run_reads_the_sheet_in_pages_as_far_as_its_grid_goes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v4/spreadsheets/1AbC"))
        .and(query_param("key", "AIza-test"))
        .and(query_param("ranges", "Orders!A1:D"))
        .and(query_param(
            "fields",
            "sheets.properties.gridProperties.rowCount",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"sheets": [{"properties": {"gridProperties": {"rowCount": 25000}}}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let pages = [
        (
            "Orders!A1:D10000",
            json!([
                ["order_id", "name", "phone"],
                ["A-1", "Olena", "+380501234567"],
                [],
                ["A-3", "Tom"]
            ]),
        ),
        // A page of blank rows is not the end: the grid goes on.
        ("Orders!A10001:D20000", json!([])),
        (
            "Orders!A20001:D25000",
            json!([[], ["A-20002", "Ana", "+34600000000"], ["", "no key"]]),
        ),
    ];
    for (range, rows) in pages {
        Mock::given(method("GET"))
            .and(path(format!(
                "/v4/spreadsheets/1AbC/values/{}",
                crate::http::encode_component(range)
            )))
            .and(query_param("key", "AIza-test"))
            .and(query_param("majorDimension", "ROWS"))
            .respond_with(page(range, rows))
            .expect(1)
            .mount(&server)
            .await;
    }
    let sheet = Sheet::new("google", &api_key_account(&server), &config(&["order_id"]))
        .expect("it is made");
    let (chunks, error) = drain(&sheet).await;
    assert_eq!(error, None);
    let keys: Vec<Vec<&str>> = chunks
        .iter()
        .map(|c| c.records.iter().map(|r| r.key.as_str()).collect())
        .collect();
    assert_eq!(keys, [vec!["A-1", "A-3"], vec![], vec!["A-20002"]]);
    assert_eq!(
        chunks[0].records[1].fields["phone"], "",
        "short rows padded"
    );
    assert_eq!(
        chunks[2]
            .rejects
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>(),
        ["row 20003"],
        "rows are numbered as on the sheet, page after page"
    );
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(4));
}

#[tokio::test]
async fn a_range_that_names_its_last_row_is_paged_to_it_and_a_failed_page_ends_the_read() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/v4/spreadsheets/1AbC/values/{}",
            crate::http::encode_component("Orders!B3:C10002")
        )))
        .respond_with(page(
            "Orders!B3:C10002",
            json!([["id", "phone"], ["7", "+380501234567"]]),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/v4/spreadsheets/1AbC/values/{}",
            crate::http::encode_component("Orders!B10003:C12000")
        )))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!({"error": {"code": 500, "status": "INTERNAL", "message": "Internal error encountered."}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config(&["id"]);
    config.range = "Orders!B3:C12000".into();
    let sheet = Sheet::new("google", &api_key_account(&server), &config).expect("it is made");
    let (chunks, error) = drain(&sheet).await;
    assert_eq!(chunks.len(), 1, "the first page went before the failure");
    assert_eq!(chunks[0].records[0].key, "7");
    assert!(
        error
            .as_deref()
            .unwrap_or_default()
            .contains("HTTP 500: INTERNAL: Internal error encountered."),
        "{error:?}"
    );
    let asked: Vec<String> = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert!(
        asked.iter().all(|p| p.contains("/values/")),
        "a range with its last row needs no grid size: {asked:?}"
    );
}
