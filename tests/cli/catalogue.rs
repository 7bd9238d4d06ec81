//! The catalogue as users see it: `switchboard connectors`, `switchboard schema` and the
//! committed copies in `schema/`, the examples checked against the schema, and the
//! README's connector reference checked against the catalogue.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Dir, Run};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn connectors_lists_every_connector_action_and_field() {
    let dir = Dir::new("http://127.0.0.1:9");
    let run = dir.run(&["connectors", "--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let all = run.json();
    let listed: Vec<String> = all
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}: {}; actions [{}]; lookups [{}]; account {}",
                c["name"].as_str().unwrap_or_default(),
                if c["source"].is_null() {
                    "no source"
                } else {
                    "source"
                },
                names(&c["actions"]).join(", "),
                names(&c["lookups"]).join(", "),
                if c["account"].is_null() { "no" } else { "yes" },
            )
        })
        .collect();
    // What the catalogue holds, read from the code.
    let expected: Vec<String> = runtime::connectors::catalogue::cards()
        .map(|c| {
            let list = |actions: &[runtime::connectors::card::Action]| {
                actions
                    .iter()
                    .map(|a| a.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "{}: {}; actions [{}]; lookups [{}]; account {}",
                c.name,
                if c.source.is_some() {
                    "source"
                } else {
                    "no source"
                },
                list(c.actions),
                list(c.lookups),
                if c.account.is_some() { "yes" } else { "no" },
            )
        })
        .collect();
    assert_eq!(expected.len(), 12, "{expected:#?}");
    assert!(
        expected.contains(
            &"8x8: no source; actions [send_sms]; lookups [get_message]; account yes".to_string()
        ),
        "{expected:#?}"
    );
    assert_eq!(listed, expected);

    // One connector in full: every field with its type, whether required, its default
    // and its doc; the HTTP call.
    let sms = dir.run(&["connectors", "8x8", "--json"]).await.json();
    let action = &sms["actions"][0];
    assert_eq!(
        action["calls"][0],
        serde_json::json!({"method": "POST", "path": "/api/v1/subaccounts/{subaccount_id}/messages"})
    );
    let destination = &action["fields"][0];
    assert_eq!(destination["name"], "destination");
    assert_eq!(destination["type"], "phone number");
    assert_eq!(destination["required"], true);
    assert!(destination["doc"].as_str().is_some_and(|d| !d.is_empty()));
    let account = &sms["account"]["options"];
    let base_url = account
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == "base_url"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(base_url["default"], "https://sms.8x8.com", "{account}");
    assert_eq!(base_url["required"], false);

    let text = dir.run(&["connectors", "textrequest"]).await;
    assert_eq!(text.code, 0, "{text:?}");
    for line in [
        "receiver: {connector: textrequest, action: send_message}",
        "POST /dashboards/{dashboard_id}/contacts/{phone_number}/messages",
        "phone_number       required; phone number.",
        "base_url    default `https://api.textrequest.com/api/v3`; string.",
    ] {
        assert!(text.stdout.contains(line), "{line:?} in {text:?}");
    }
    let overview = dir.run(&["connectors"]).await;
    assert!(
        overview
            .stdout
            .contains("receiver (create_case, update_case, add_note, attach_file)"),
        "{overview:?}"
    );

    let typo = dir.run(&["connectors", "cinox"]).await;
    assert_eq!(typo.code, 2, "{typo:?}");
    assert!(
        typo.stderr.contains("no connector `cinox`")
            && typo.stderr.contains("did you mean `cinnox`?"),
        "{typo:?}"
    );
}

/// `SWITCHBOARD_BLESS=1 cargo test` rewrites the committed copies from the binary.
fn committed(run: &Run, file: &str) {
    let path = root().join("schema").join(file);
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        std::fs::write(&path, &run.stdout).expect("the test writes its file");
    }
    let copy = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        copy == run.stdout,
        "schema/{file} is stale: regenerate it with `switchboard schema … > schema/{file}` \
         (or SWITCHBOARD_BLESS=1 cargo test)"
    );
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(schema)
        .unwrap_or_else(|e| panic!("the schema itself is invalid: {e}"))
}

/// A YAML file as the JSON the schema describes (literals keep their type).
fn yaml(path: &Path, text: &str) -> Value {
    let node = runtime::flows::yaml::load(path, text).expect("it loads");
    runtime::flows::yaml::literal(&node)
}

fn problems(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[tokio::test]
async fn the_schemas_are_committed_and_every_example_validates_against_them() {
    let dir = Dir::new("http://127.0.0.1:9");
    let flow = dir.run(&["schema"]).await;
    assert_eq!(flow.code, 0, "{flow:?}");
    committed(&flow, "flow.schema.json");
    let accounts = dir.run(&["schema", "accounts"]).await;
    assert_eq!(accounts.code, 0, "{accounts:?}");
    committed(&accounts, "accounts.schema.json");

    let flow_schema = validator(&flow.json());
    let accounts_schema = validator(&accounts.json());
    let mut checked = 0;
    let examples =
        std::fs::read_dir(root().join("examples")).expect("the test lists the directory");
    for example in examples.flatten() {
        let files = std::fs::read_dir(example.path()).expect("the test lists the directory");
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("the test reads the file");
            let schema = if path.ends_with("accounts.yaml") {
                &accounts_schema
            } else {
                &flow_schema
            };
            let found = problems(schema, &yaml(&path, &text));
            assert!(found.is_empty(), "{}: {found:#?}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} example files");
}

#[tokio::test]
async fn the_schema_refuses_what_validate_refuses() {
    let dir = Dir::new("http://127.0.0.1:9");
    let schema = validator(&dir.run(&["schema"]).await.json());
    let good = std::fs::read_to_string(dir.path().join("flows/order-sms.yaml"))
        .expect("the test reads the file");
    let parsed = yaml(Path::new("order-sms.yaml"), &good);
    assert!(
        problems(&schema, &parsed).is_empty(),
        "{:#?}",
        problems(&schema, &parsed)
    );
    for (from, to, at) in [
        ("schedule:", "shedule:", ""),
        ("  key: order_id", "  kye: order_id", "/source"),
        ("connector: csv", "connector: cvs", "/source/connector"),
        ("action: send_sms", "action: send_mms", "/receiver/action"),
        ("  text: \"Hi", "  txt: \"Hi", "/map"),
        (
            "  source: \"MyShop\"",
            "  source: MyShop\n  encoding: utf8",
            "/map/encoding",
        ),
        ("backlog: send", "backlog: sometimes", "/source/backlog"),
    ] {
        assert!(good.contains(from), "{from:?}");
        let bad = good.replacen(from, to, 1);
        let found = problems(&schema, &yaml(Path::new("order-sms.yaml"), &bad));
        assert!(
            found.iter().any(|p| p.starts_with(&format!("{at}:"))),
            "{from:?} -> {to:?}: expected a problem at {at:?}, got {found:#?}"
        );
        dir.write("flows/order-sms.yaml", &bad);
        let validate = dir.run(&["validate"]).await;
        assert_eq!(validate.code, 1, "validate agrees on {to:?}: {validate:?}");
    }
}

/// The rows of the README's connector table, made from `connectors --json`.
fn reference(all: &Value) -> String {
    let mut table = String::from(
        "| connector | source | receiver actions | look-ups | account |\n|---|---|---|---|---|\n",
    );
    for c in all.as_array().into_iter().flatten() {
        let list = |key: &str| {
            let names = names(&c[key]);
            if names.is_empty() {
                "—".to_string()
            } else {
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let yes = |key: &str| if c[key].is_null() { "—" } else { "yes" };
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            c["name"].as_str().unwrap_or_default(),
            yes("source"),
            list("actions"),
            list("lookups"),
            yes("account"),
        ));
    }
    table
}

#[tokio::test]
async fn the_readme_connector_reference_matches_the_catalogue() {
    let dir = Dir::new("http://127.0.0.1:9");
    let all = dir.run(&["connectors", "--json"]).await.json();
    let expected = reference(&all);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    let begin =
        "<!-- connectors: generated from `switchboard connectors --json`; a test checks it -->\n";
    let block = readme
        .split_once(begin)
        .and_then(|(_, rest)| rest.split_once("<!-- /connectors -->"))
        .map(|(block, _)| block.to_string())
        .unwrap_or_default();
    assert!(
        block == expected,
        "README.md's connector table is stale; it should read:\n{expected}"
    );
    // Each connector and action named in the table has its prose section too.
    for c in all.as_array().into_iter().flatten() {
        for action in names(&c["actions"]).iter().chain(&names(&c["lookups"])) {
            assert!(
                readme.matches(&format!("`{action}`")).count() >= 2,
                "README.md describes `{action}` only in the table"
            );
        }
    }
}

/// The connector added to prove the registry (one folder, one registry line): a flow
/// texts each row's chat through a Telegram bot, with the token only on the wire.
#[tokio::test]
async fn a_telegram_flow_sends_through_the_bot_and_never_shows_its_token() {
    use wiremock::matchers::{body_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let token = "987654321:AAsecret-bot-token_for_test";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{token}/sendMessage")))
        .and(body_json(serde_json::json!({"chat_id": -1001234567890_i64, "text": "Order A-1 for Olena is paid"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"ok": true, "result": {"message_id": 4242, "chat": {"id": -1001234567890_i64}, "date": 1}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/bot{token}/sendMessage")))
        .and(body_json(serde_json::json!({"chat_id": 5, "text": "Order A-2 for Tom is paid"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            serde_json::json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/bot{token}/getMe")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"ok": true, "result": {"id": 987654321, "is_bot": true, "username": "shop_bot"}}),
        ))
        .mount(&server)
        .await;

    let dir = Dir::new("http://127.0.0.1:9");
    dir.write(
        "flows/accounts.yaml",
        &format!(
            "shop-bot:\n  connector: telegram\n  bot_token: ${{SHOP_BOT_TOKEN}}\n  base_url: {}\n",
            server.uri()
        ),
    );
    dir.private("flows/accounts.yaml");
    let _ = std::fs::remove_file(dir.path().join("flows/order-sms.yaml"));
    dir.write(
        "flows/paid.csv",
        "order_id,name,chat\nA-1,Olena,-1001234567890\nA-2,Tom,5\n",
    );
    dir.write(
        "flows/paid.yaml",
        "source: {connector: csv, path: paid.csv, key: order_id, backlog: send}\nreceiver: {connector: telegram, action: send_message, account: shop-bot}\nmap:\n  chat_id: \"{{chat}}\"\n  text: \"Order {{order_id}} for {{name}} is paid\"\ndelivery: {attempts: 1}\n",
    );
    let env = [("SHOP_BOT_TOKEN", token)];
    let validate = dir.run_with(&["validate"], &env).await;
    assert_eq!(validate.code, 0, "{validate:?}");
    let run = dir.run_with(&["run", "paid"], &env).await;
    assert!(
        run.stdout.contains("sent 1") && run.stdout.contains("failed 1"),
        "{run:?}"
    );
    let history = dir.run_with(&["history", "paid", "--run", "1"], &env).await;
    assert!(
        history.stdout.contains("4242") && history.stdout.contains("chat not found"),
        "{history:?}"
    );
    let check = dir.run_with(&["accounts", "check"], &env).await;
    assert!(check.stdout.contains("getMe"), "{check:?}");
    for shown in [&run, &history, &check, &validate] {
        assert!(
            !shown.stdout.contains("AAsecret") && !shown.stderr.contains("AAsecret"),
            "the token shows: {shown:?}"
        );
    }
    let preview = dir.run_with(&["test", "paid", "--all"], &env).await;
    assert!(
        preview.stdout.contains("/sendMessage") && !preview.stdout.contains("AAsecret"),
        "{preview:?}"
    );
}
