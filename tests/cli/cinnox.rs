//! The seed's first scenario through the real daemon: a CINNOX "missed enquiry" creates an
//! Aranda ticket. The daemon registers its webhook with CINNOX's event subscription, answers
//! the challenge, normalises the event, and switches the subscription off when the flow goes.

use std::time::Duration;

use serde_json::Value;

use super::*;

const MISSED: &str = r#"source:
  connector: cinnox
  account: cinnox-main
  events: [enquiry.missed]
receiver:
  connector: aranda
  action: create_case
  account: asms
map:
  itemType: 1
  projectId: 4
  serviceId: 7
  categoryId: 3
  subject: "Missed enquiry {{displayCaseNumber}}"
  description: "{{type}} on {{channel}} to {{destination}} at {{date}}"
"#;

/// The token the daemon puts in the hook URLs it registers for the test's CINNOX account
/// (CINNOX posts to exactly that URL; anyone else gets 401).
fn token() -> String {
    runtime::connectors::push::hook_token("cinnox-token", "cinnox app-1")
}

/// A mock CINNOX (its enquiry subscription echoes what it is sent) and Aranda (cases get
/// id 915), and a flows directory with their accounts and no flow yet.
async fn cinnox_and_aranda() -> (MockServer, Dir) {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/v1/api/apps/app-1/inquiry-event-sub"))
        .and(header("authorization", "Bearer cinnox-token"))
        .respond_with(|r: &Request| {
            ResponseTemplate::new(200).set_body_raw(r.body.clone(), "application/json")
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/case"))
        .and(header("TokenAsms", "asms-token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 915, "idByProject": "RF-915"})),
        )
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write(
        "flows/accounts.yaml",
        &format!(
            "cinnox-main:\n  connector: cinnox\n  app_id: app-1\n  app_token: cinnox-token\n  base_url: {0}\nasms:\n  connector: aranda\n  api_key: asms-token\n  instance_url: https://help.example.com/ASMS\n  base_url: {0}\n",
            server.uri()
        ),
    );
    dir.private("flows/accounts.yaml");
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_cinnox_enquiry_becomes_an_aranda_ticket() {
    let (server, dir) = cinnox_and_aranda().await;
    dir.write("flows/missed.yaml", MISSED);
    let validate = dir.run(&["validate"]).await;
    assert_eq!(validate.code, 0, "{validate:?}");

    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let hook = format!("{api}/hooks/missed?sb_token={}", token());

    // The daemon registered its URL, with its token, with CINNOX's enquiry subscription.
    let mut subscriptions = Vec::new();
    for _ in 0..50 {
        subscriptions = requests_to(&server, "PATCH", "inquiry-event-sub").await;
        if !subscriptions.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        subscriptions.first(),
        Some(&json!({"enabled": true, "url": hook}))
    );

    let http = reqwest::Client::new();
    // Only the registered URL may post: without its token, or with another, 401.
    for forged in [
        format!("{api}/hooks/missed"),
        format!("{api}/hooks/missed?sb_token=0000"),
    ] {
        let refused = http
            .post(&forged)
            .json(&json!({"status": "Missed", "enquiryID": "e-1"}))
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert_eq!(refused.ok(), Some(401), "{forged}");
    }
    let post = |body: Value| http.post(&hook).json(&body).send();
    let challenge: Value = post(json!({"challenge": "xyz"}))
        .await
        .expect("the POST is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(
        challenge,
        json!({"code": 0, "result": {"challenge": "xyz"}})
    );

    let missed = json!({"status": "Missed", "enquiryID": "e-9", "displayCaseNumber": "42", "type": "Direct Call", "channel": "Virtual Number", "date": "2026-11-21 12:08", "destination": "+85230001234", "destination Types": "PSTN"});
    let queued: Value = post(missed)
        .await
        .expect("the POST is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(queued["queued"], 1, "{queued}");
    let closed = json!({"status": "Closed", "enquiryID": "e-8", "displayCaseNumber": "41"});
    let ignored: Value = post(closed)
        .await
        .expect("the POST is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(
        (ignored["queued"].as_u64(), ignored["ignored"].as_u64()),
        (Some(0), Some(1)),
        "{ignored}"
    );
    let garbage = http
        .post(&hook)
        .body("{nope")
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(garbage.status().as_u16(), 400);

    let mut cases = Vec::new();
    for _ in 0..100 {
        cases = requests_to(&server, "POST", "/case").await;
        if !cases.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cases,
        [
            json!({"itemType": 1, "projectId": 4, "serviceId": 7, "categoryId": 3, "subject": "Missed enquiry 42", "description": "Direct Call on Virtual Number to +85230001234 at 2026-11-21 12:08"})
        ]
    );

    // The account's token is regenerated: the subscription is set again with the new
    // one (an account change re-syncs, not only a flow change).
    Mock::given(method("PATCH"))
        .and(path("/v1/api/apps/app-1/inquiry-event-sub"))
        .and(header("authorization", "Bearer cinnox-token-2"))
        .respond_with(|r: &Request| {
            ResponseTemplate::new(200).set_body_raw(r.body.clone(), "application/json")
        })
        .mount(&server)
        .await;
    let accounts = std::fs::read_to_string(dir.path().join("flows/accounts.yaml"))
        .unwrap_or_default()
        .replace("app_token: cinnox-token", "app_token: cinnox-token-2");
    dir.write("flows/accounts.yaml", &accounts);
    dir.private("flows/accounts.yaml");
    let mut resynced = false;
    for _ in 0..100 {
        resynced = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .any(|r| {
                r.method.as_str() == "PATCH"
                    && r.headers
                        .get("authorization")
                        .is_some_and(|v| v.as_bytes() == b"Bearer cinnox-token-2")
            });
        if resynced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resynced, "the subscription is set again with the new token");

    // The flow goes: its subscription is switched off.
    std::fs::remove_file(dir.path().join("flows/missed.yaml")).expect("the test removes the file");
    let mut off = false;
    for _ in 0..100 {
        off = requests_to(&server, "PATCH", "inquiry-event-sub")
            .await
            .iter()
            .any(|b| b["enabled"] == false);
        if off {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(off, "the subscription is disabled when the flow is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_flows_on_one_cinnox_account_both_get_its_events() {
    let (server, dir) = cinnox_and_aranda().await;
    dir.write("flows/tickets.yaml", MISSED);
    dir.write(
        "flows/escalations.yaml",
        &MISSED.replace(
            "Missed enquiry {{displayCaseNumber}}",
            "Escalate {{displayCaseNumber}}",
        ),
    );
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;

    // CINNOX holds one URL for the family; an event sent to it reaches both flows.
    let missed = json!({"status": "Missed", "enquiryID": "e-9", "displayCaseNumber": "42", "type": "Direct Call", "channel": "Virtual Number", "date": "2026-11-21 12:08", "destination": "+85230001234"});
    let answer: Value = reqwest::Client::new()
        .post(format!("{api}/hooks/tickets?sb_token={}", token()))
        .json(&missed)
        .send()
        .await
        .expect("the call is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(answer["queued"], 2, "{answer}");
    let mut subjects = Vec::new();
    for _ in 0..100 {
        subjects = requests_to(&server, "POST", "/case")
            .await
            .iter()
            .map(|c| c["subject"].as_str().unwrap_or_default().to_string())
            .collect();
        if subjects.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    subjects.sort();
    assert_eq!(subjects, ["Escalate 42", "Missed enquiry 42"]);

    // One flow goes: the family is handed to the other flow's URL, not switched off.
    std::fs::remove_file(dir.path().join("flows/tickets.yaml")).expect("the test removes the file");
    let mut handed = Vec::new();
    for _ in 0..100 {
        handed = requests_to(&server, "PATCH", "inquiry-event-sub").await;
        if handed.iter().any(|b| {
            b["url"] == format!("{api}/hooks/escalations?sb_token={}", token())
                && b["enabled"] == true
        }) && handed.len() >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = handed.last().cloned().unwrap_or_default();
    assert_eq!(
        last,
        json!({"enabled": true, "url": format!("{api}/hooks/escalations?sb_token={}", token())}),
        "{handed:#?}"
    );
    assert!(
        !handed.iter().any(|b| b["enabled"] == false),
        "never switched off while a flow takes the family: {handed:#?}"
    );
}

/// A CSV of names, each looked up in CINNOX, each welcomed through Text Request at the
/// contact's mobile number.
const WELCOME_FROM_CSV: &str = r#"source: {connector: csv, path: people.csv, key: name, backlog: send}
lookup:
  connector: cinnox
  account: cinnox-main
  action: get_contact
  query: "{{name}}"
receiver: {connector: textrequest, action: send_message, account: tr, dashboard_id: 121}
map:
  phone_number: "{{contact.mobilePhone}}"
  body: "Welcome {{contact.firstName}}!"
"#;

#[tokio::test]
async fn a_lookup_feeds_validate_test_and_the_map_of_a_csv_flow() {
    let (server, dir) = cinnox_and_aranda().await;
    Mock::given(method("GET"))
        .and(path("/v1/api/apps/app-1/contacts/extcontact-list"))
        .and(header("authorization", "Bearer cinnox-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"code": 0, "result": [
            {"id": "c-1", "firstName": "Olena", "lastName": "Kovalenko", "mobilePhone": "+380501234567"}
        ]})))
        .mount(&server)
        .await;
    dir.append(
        "flows/accounts.yaml",
        &format!(
            "tr:\n  connector: textrequest\n  api_key: tr-key\n  base_url: {}\n",
            server.uri()
        ),
    );
    dir.write("flows/people.csv", "name\nOlena Kovalenko\nNobody Known\n");
    dir.write("flows/welcome.yaml", WELCOME_FROM_CSV);

    // The map may use the look-up's result: no unknown-field problem, let alone 32.
    let validate = dir.run(&["validate"]).await;
    assert_eq!(validate.code, 0, "{validate:?}");

    // The preview asks CINNOX, as a run would: the first record's request carries the
    // contact's number; the second fails with the look-up's reason.
    let test = dir.run(&["test", "welcome", "--json"]).await;
    assert_eq!(test.code, 1, "{test:?}");
    let previews = test.json()["previews"].clone();
    assert_eq!(
        previews[0]["request"]["url"],
        format!(
            "{}/dashboards/121/contacts/%2B380501234567/messages",
            server.uri()
        ),
        "{previews:#}"
    );
    assert_eq!(previews[0]["request"]["body"]["body"], "Welcome Olena!");
    assert!(
        previews[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("found nothing for `Nobody Known`")),
        "{previews:#}"
    );

    // A look-up query that does not compile is a problem of the file, before any run.
    dir.write(
        "flows/welcome.yaml",
        &WELCOME_FROM_CSV.replace("query: \"{{name}}\"", "query: \"{{#if name}}\""),
    );
    let broken = dir.run(&["validate"]).await;
    assert_eq!(broken.code, 1, "{broken:?}");
    assert!(
        broken
            .stdout
            .contains("welcome.yaml:6:10: the template of `lookup.query` does not parse"),
        "{broken:?}"
    );
    let count = |run: &Run| {
        format!("{}{}", run.stdout, run.stderr)
            .matches("lookup.query")
            .count()
    };
    assert_eq!(count(&broken), 1, "reported once: {broken:?}");
}

/// Five edits of one contact are five events, each handled once; a redelivery of one of
/// them is recorded as a duplicate and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_edits_of_one_contact_are_five_events_and_a_redelivery_is_one() {
    let (server, dir) = cinnox_and_aranda().await;
    Mock::given(method("PATCH"))
        .and(path("/v1/api/apps/app-1/external-contact-event-sub"))
        .respond_with(|r: &Request| {
            ResponseTemplate::new(200).set_body_raw(r.body.clone(), "application/json")
        })
        .mount(&server)
        .await;
    dir.write(
        "flows/edited.yaml",
        &MISSED
            .replace("events: [enquiry.missed]", "events: [contact.edited]")
            .replace(
                "subject: \"Missed enquiry {{displayCaseNumber}}\"",
                "subject: \"Contact {{id}} is now {{name}}\"",
            )
            .replace(
                "  description: \"{{type}} on {{channel}} to {{destination}} at {{date}}\"\n",
                "",
            )
            // One send at a time: the events leave in the order they arrived.
            .replace("receiver:", "delivery: {concurrency: 1}\nreceiver:"),
    );
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let hook = format!("{api}/hooks/edited?sb_token={}", token());
    let http = reqwest::Client::new();
    let edit = |name: &str| json!({"type": "message", "message": {"type": "contact", "status": "edit", "fullName": name, "id": "c-7"}});
    for name in [
        "Olena",
        "Olena K.",
        "Olena Kovalenko",
        "O. Kovalenko",
        "Olena Kovalenko-Shevchenko",
    ] {
        let answer = http
            .post(&hook)
            .json(&edit(name))
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert_eq!(answer.ok(), Some(200));
    }
    for _ in 0..100 {
        if requests_to(&server, "POST", "/case").await.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // CINNOX delivers the second edit again, after it was handled.
    let again = http
        .post(&hook)
        .json(&edit("Olena K."))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(again.ok(), Some(200), "a redelivery is answered too");
    let mut skipped = 0;
    for _ in 0..50 {
        let history = dir.run(&["history", "edited", "--json"]).await.json();
        skipped = history
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|run| run["counts"]["skipped"].as_u64())
            .sum();
        if skipped > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(skipped, 1, "the redelivery is recorded as a duplicate");
    let cases = requests_to(&server, "POST", "/case").await;
    let subjects: Vec<&str> = cases.iter().filter_map(|c| c["subject"].as_str()).collect();
    assert_eq!(
        subjects,
        [
            "Contact c-7 is now Olena",
            "Contact c-7 is now Olena K.",
            "Contact c-7 is now Olena Kovalenko",
            "Contact c-7 is now O. Kovalenko",
            "Contact c-7 is now Olena Kovalenko-Shevchenko"
        ],
        "one ticket per edit, in order, none twice"
    );
}

/// Off means off for a pushed flow: switching it off unregisters its subscription, and an
/// event that still arrives is answered, recorded as skipped, and never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switched_off_cinnox_flow_unsubscribes_and_sends_nothing() {
    let (server, dir) = cinnox_and_aranda().await;
    dir.write("flows/missed.yaml", MISSED);
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let hook = format!("{api}/hooks/missed?sb_token={}", token());
    let patches = || requests_to(&server, "PATCH", "inquiry-event-sub");
    for _ in 0..50 {
        if !patches().await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dir.write("flows/missed.yaml", &format!("enabled: false\n{MISSED}"));
    let mut last = Value::Null;
    for _ in 0..60 {
        last = patches().await.last().cloned().unwrap_or_default();
        if last["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        last,
        json!({"enabled": false, "url": hook}),
        "unsubscribed when switched off"
    );

    let missed = json!({"status": "Missed", "enquiryID": "e-1", "displayCaseNumber": "7"});
    let answer = reqwest::Client::new()
        .post(&hook)
        .json(&missed)
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(answer.ok(), Some(200), "answered, so CINNOX does not retry");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        requests_to(&server, "POST", "/case").await.is_empty(),
        "nothing sent"
    );
    let history = dir.run(&["history", "missed", "--run", "1"]).await;
    assert!(
        history.stdout.contains("skipped 1")
            && history
                .stdout
                .contains("not sent: the flow is switched off (`enabled: false`)"),
        "{history:?}"
    );
}
