use std::time::Duration;

use super::config::Account as ArandaAccount;
use engine::{Receiver, SendError};
use flows::Secret;
use serde_json::{json, Map, Value};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Action, Aranda};

fn receiver(server: &MockServer, action: Action) -> Aranda {
    let account = ArandaAccount {
        api_key: Secret::new("asms-token"),
        instance_url: "https://help.example.com/ASMS".into(),
        base_url: server.uri(),
        rate_limit: None,
    };
    Aranda::new("asms", &account, action, Duration::from_secs(5)).expect("it is made")
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn create_case_posts_typed_fields_with_both_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/case"))
        .and(header("TokenAsms", "asms-token"))
        .and(header("UrlAsms", "https://help.example.com/ASMS"))
        .and(body_json(json!({"itemType": 1, "projectId": 4, "serviceId": 7, "categoryId": 3, "subject": "Missed enquiry 42"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 915, "idByProject": "RF-915"})))
        .expect(1)
        .mount(&server)
        .await;
    let r = receiver(&server, Action::CreateCase);
    let request = r
        .prepare(fields(json!({"itemType": 1, "projectId": 4, "serviceId": 7, "categoryId": 3, "subject": "Missed enquiry 42"})), "ref")
        .expect("the request is prepared");
    assert_eq!(
        r.send(&request)
            .await
            .ok()
            .and_then(|d| d.remote_id)
            .as_deref(),
        Some("RF-915")
    );
}

#[tokio::test]
async fn update_case_and_add_note_put_the_case_code_in_the_path() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/case/RF-915"))
        .and(body_json(
            json!({"stateId": 2, "commentary": "closed by the flow"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/case/RF-915/note"))
        .and(query_param("message", "Called back & solved"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let update = receiver(&server, Action::UpdateCase);
    let request = update
        .prepare(
            fields(json!({"ticketId": "RF-915", "stateId": 2, "commentary": "closed by the flow"})),
            "r",
        )
        .expect("the request is prepared");
    assert!(update.send(&request).await.is_ok());
    let note = receiver(&server, Action::AddNote);
    let request = note
        .prepare(
            fields(json!({"ticketId": "RF-915", "message": "Called back & solved"})),
            "r",
        )
        .expect("the request is prepared");
    assert!(note.send(&request).await.is_ok());
}

#[tokio::test]
async fn error_code_names_come_back_with_their_remedy() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!("ServiceIdIsEmpty")))
        .mount(&server)
        .await;
    let r = receiver(&server, Action::CreateCase);
    let request = r
        .prepare(fields(json!({"subject": "x"})), "r")
        .expect("the request is prepared");
    match r.send(&request).await {
        Err(SendError::Permanent { code, message }) => {
            assert_eq!(code.as_deref(), Some("ServiceIdIsEmpty"));
            assert!(
                message.contains("add the serviceId parameter, it is required"),
                "{message}"
            );
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn forbidden_and_server_failures_are_told_apart() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "DoNotHavePermissionForThisAction"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"message": "Failure saving the case"})),
        )
        .mount(&server)
        .await;
    let update = receiver(&server, Action::UpdateCase);
    let request = update
        .prepare(fields(json!({"ticketId": "1", "stateId": 2})), "r")
        .expect("the request is prepared");
    assert!(
        matches!(update.send(&request).await, Err(SendError::Permanent { code: Some(ref c), .. }) if c == "DoNotHavePermissionForThisAction")
    );
    let create = receiver(&server, Action::CreateCase);
    let request = create
        .prepare(fields(json!({"subject": "x"})), "r")
        .expect("the request is prepared");
    assert!(matches!(
        create.send(&request).await,
        Err(SendError::Transient { .. })
    ));
}

/// Every code of the page's error table comes back named, with the page's remedy.
#[test]
fn every_code_of_the_error_table_comes_back_with_its_remedy() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "CriteriaNeedsSomeArguments",
            "CriteriaNeedsSomeArguments",
            "search parameters must not be empty",
        ),
        (
            "InvalidAdditionalFieldId",
            "InvalidAdditionalFieldId",
            "additional fields' ids",
        ),
        (
            "InvalidItemType",
            "InvalidItemType",
            "change the itemType id",
        ),
        ("InvalidProjectId", "InvalidProjectId", "projectId must be"),
        ("InvalidStateId", "InvalidStateId", "check the stateId"),
        (
            "InvalidUploadType",
            "InvalidUploadType",
            "attaching a file failed",
        ),
        (
            "RequestNeedsSomeArguments",
            "RequestNeedsSomeArguments",
            "required fields",
        ),
        (
            "SearchListIsRequired",
            "SearchListIsRequired",
            "ask an ASMS administrator",
        ),
        (
            "Value cannot be null. Parameter name: subject",
            "Parameter name",
            "not null",
        ),
        (
            "Null parameter name: ticketId",
            "Parameter name",
            "not null",
        ),
        (
            "ItemTypeIsRequired",
            "ItemTypeIsRequired",
            "add the itemType parameter",
        ),
        (
            "ModelIdIsEmpty",
            "ModelIdIsEmpty",
            "add the modelId parameter",
        ),
        (
            "StateIdIsEmpty",
            "StateIdIsEmpty",
            "add the stateId parameter",
        ),
        (
            "ServiceIdIsEmpty",
            "ServiceIdIsEmpty",
            "add the serviceId parameter",
        ),
        (
            "CategoryIdIsEmpty",
            "CategoryIdIsEmpty",
            "add the categoryId parameter",
        ),
        (
            "TypesListNeedsSomeArguments",
            "TypesListNeedsSomeArguments",
            "needs the case type",
        ),
        (
            "\"Priority\" AdditionalFieldIsRequired",
            "AdditionalFieldIsRequired",
            "additional field is required",
        ),
        ("ModelNotActive", "ModelNotActive", "not active"),
        (
            "FailedToCloseTaskPendingCloseTasksPredecessors",
            "FailedToCloseTaskPendingCloseTasksPredecessors",
            "cannot be closed",
        ),
        ("DuplicatedObject", "DuplicatedObject", "already exists"),
        (
            "EmptyValue Parameter name: stateId",
            "EmptyValue",
            "is required: give it a value",
        ),
        (
            "EmptyEnumeration Parameter name: filters",
            "EmptyEnumeration",
            "is a list",
        ),
        (
            "DoNotHavePermissionForThisAction",
            "DoNotHavePermissionForThisAction",
            "assign it",
        ),
        (
            "FailureExportExcel",
            "FailureExportExcel",
            "exporting to Excel",
        ),
        (
            "FailureGetAdditionalFields",
            "FailureGetAdditionalFields",
            "additional fields",
        ),
        (
            "FailureGetCategoriesByService",
            "FailureGetCategoriesByService",
            "categories",
        ),
        (
            "FailureGetChangeFSC",
            "FailureGetChangeFSC",
            "forward schedule",
        ),
        ("FailureGetFields", "FailureGetFields", "reading the fields"),
        (
            "FailureGetFieldsList",
            "FailureGetFieldsList",
            "list of fields",
        ),
        ("FailureGetFiles", "FailureGetFiles", "files"),
        (
            "FailureGetLookupValues",
            "FailureGetLookupValues",
            "lookup values",
        ),
        (
            "FailureGetMailTemplates",
            "FailureGetMailTemplates",
            "mail templates",
        ),
        (
            "FailureGetModelByCategory",
            "FailureGetModelByCategory",
            "category's model",
        ),
        ("FailureGetOperators", "FailureGetOperators", "operators"),
        (
            "FailureGetReassignmentReasons",
            "FailureGetReassignmentReasons",
            "reassignment reasons",
        ),
        (
            "FailureGetSimilarItems",
            "FailureGetSimilarItems",
            "similar items",
        ),
        (
            "FailureSearchQuickManagement",
            "FailureSearchQuickManagement",
            "quick-management",
        ),
        (
            "Failure saving the case",
            "Failure",
            "ask an ASMS administrator",
        ),
    ];
    for (body, code, remedy) in cases {
        let (got_code, message) =
            super::client::explain(json!({"message": body}).to_string().as_bytes());
        assert_eq!(got_code.as_deref(), Some(*code), "{body}");
        assert!(message.contains(remedy), "{body}: {message}");
    }
}

fn account(server: &MockServer) -> ArandaAccount {
    ArandaAccount {
        api_key: Secret::new("asms-token"),
        instance_url: "https://help.example.com/ASMS".into(),
        base_url: server.uri(),
        rate_limit: None,
    }
}

#[tokio::test]
async fn attach_file_posts_the_file_in_base64_with_the_case_in_a_header() {
    use base64::Engine as _;
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("form.txt");
    std::fs::write(&file, b"vacation approved").expect("the test writes its file");
    let encoded = base64::engine::general_purpose::STANDARD.encode(b"vacation approved");
    Mock::given(method("POST"))
        .and(path("/attachment/file"))
        .and(header("TokenAsms", "asms-token"))
        .and(header("UrlAsms", "https://help.example.com/ASMS"))
        .and(header("ticketId", "RF-915"))
        .and(body_json(json!({"file": encoded, "fileName": "form.txt"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": true})))
        .expect(2)
        .mount(&server)
        .await;
    let r = receiver(&server, Action::AttachFile);
    for given in [
        json!({"ticketId": "RF-915", "fileName": "form.txt", "path": file.display().to_string()}),
        json!({"ticketId": "RF-915", "fileName": "form.txt", "content": encoded}),
    ] {
        let request = r
            .prepare(fields(given), "r")
            .expect("the request is prepared");
        assert_eq!(
            request.notes["ticketId"], "RF-915",
            "the preview shows the header"
        );
        r.send(&request).await.expect("the call is answered");
    }
    for (bad, why) in [
        (
            json!({"ticketId": "RF-915", "fileName": "x"}),
            "give `path` or `content`",
        ),
        (
            json!({"ticketId": "RF-915", "fileName": "x", "content": "not base64!"}),
            "not base64",
        ),
        (
            json!({"ticketId": "RF-915", "fileName": "x", "path": "/no/such/file"}),
            "cannot read `/no/such/file`",
        ),
        (
            json!({"fileName": "x", "content": "eA=="}),
            "ticketId is empty",
        ),
    ] {
        match r.prepare(fields(bad), "r") {
            Err(SendError::Permanent { message, .. }) => {
                assert!(message.contains(why), "{message}")
            }
            other => panic!("expected {why:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn get_case_and_search_cases_find_cases_and_say_when_there_are_none() {
    use engine::Lookup as _;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/case/RF-915"))
        .and(header("TokenAsms", "asms-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": 915, "idByProject": "RF-915", "stateName": "Solved", "applicantId": 7}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/case/RF-404"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/case/list"))
        .and(header("UrlAsms", "https://help.example.com/ASMS"))
        .and(body_json(json!({"logicOperator": "And", "filters": [{"field": "StateName", "operator": "EqualTo", "value": "Solved"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 915, "idByProject": "RF-915"}, {"id": 916, "idByProject": "RF-916"}])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/case/list"))
        .and(body_json(json!({"logicOperator": "And", "filters": [{"field": "StateName", "operator": "EqualTo", "value": "Nowhere"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/case/list"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"message": "CriteriaNeedsSomeArguments"})),
        )
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(5);
    let get = super::ArandaLookup::new(
        "asms",
        &account(&server),
        super::config::Lookup::Case,
        timeout,
    );
    let found = get.find("RF-915").await.expect("the look-up answers");
    assert_eq!(
        found
            .and_then(|c| c["stateName"].as_str().map(String::from))
            .as_deref(),
        Some("Solved")
    );
    assert_eq!(
        get.find("RF-404").await.ok(),
        Some(None),
        "a case that is not there is not found"
    );

    let search = |field| {
        super::ArandaLookup::new(
            "asms",
            &account(&server),
            super::config::Lookup::Search(super::config::LookupOptions {
                field,
                operator: super::config::SearchOperator::EqualTo,
            }),
            timeout,
        )
    };
    let solved = search(super::config::SearchField::StateName)
        .find("Solved")
        .await
        .expect("the look-up answers");
    assert_eq!(solved.and_then(|l| l.as_array().map(Vec::len)), Some(2));
    assert_eq!(
        search(super::config::SearchField::StateName)
            .find("Nowhere")
            .await
            .ok(),
        Some(None)
    );
    match search(super::config::SearchField::Subject).find("x").await {
        Err(SendError::Permanent { code, message }) => {
            assert_eq!(code.as_deref(), Some("CriteriaNeedsSomeArguments"));
            assert!(
                message.contains("search parameters must not be empty"),
                "{message}"
            );
        }
        other => panic!("expected the remedy, got {other:?}"),
    }
}

#[tokio::test]
async fn cases_of_a_search_are_keyed_by_id_and_content() {
    use engine::Source as _;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/case/list"))
        .and(header("TokenAsms", "asms-token"))
        .and(body_json(json!({"logicOperator": "Or", "filters": [
            {"field": "StateName", "operator": "EqualTo", "value": "Solved"},
            {"field": "Subject", "operator": "Like", "value": "printer"}
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": 915, "idByProject": "RF-915", "stateName": "Solved", "applicantId": 7, "tags": ["x"]},
            {"id": 916, "idByProject": "RF-916", "stateName": "Registered"},
            {"subject": "no id: not a case"}
        ])))
        .mount(&server)
        .await;
    let config = super::config::Source {
        account: "asms".into(),
        filters: vec![
            super::config::Filter {
                field: super::config::SearchField::StateName,
                operator: super::config::SearchOperator::EqualTo,
                value: "Solved".into(),
            },
            super::config::Filter {
                field: super::config::SearchField::Subject,
                operator: super::config::SearchOperator::Like,
                value: "printer".into(),
            },
        ],
        logic: super::config::Logic::Or,
        backlog: flows::Backlog::Skip,
        pos: flows::Pos::new(1, 1),
    };
    let cases = super::Cases::new("asms", &account(&server), &config);
    let fetched = cases.fetch().await.expect("the source is read");
    assert_eq!(fetched.records.len(), 2, "a case needs an id");
    assert!(
        fetched.records[0].key.starts_with("915#"),
        "{}",
        fetched.records[0].key
    );
    assert_eq!(fetched.records[0].fields["stateName"], "Solved");
    assert!(
        !fetched.records[0].fields.contains_key("tags"),
        "plain fields only"
    );

    let changed = super::cases_key_of(json!({"id": 915, "stateName": "Registered"}));
    let same = super::cases_key_of(json!({"id": 915, "stateName": "Registered"}));
    let other = super::cases_key_of(json!({"id": 915, "stateName": "Solved"}));
    assert_eq!(changed, same, "the same content, the same key");
    assert_ne!(changed, other, "a change is a new key");
}
