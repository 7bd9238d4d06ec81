//! No key leaks, even when a service echoes it: a stand-in that quotes every request's
//! URL and headers in its error bodies, one flow per account kind, and every channel a
//! user or an operator reads — run output and JSON, `-vv` logs, history and its JSON,
//! `test --send`, `accounts check --json`, the state files on disk, the daemon's API and
//! its log — searched for every secret.

use super::*;

/// An error answer quoting the request: method, URL (with any key in its query) and
/// every header (with any key in them), in the shapes each service's errors take.
struct Echo;

impl wiremock::Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut seen = format!("{} {}", request.method, request.url);
        for (name, value) in request.headers.iter() {
            seen.push_str(&format!(" {name}: {}", value.to_str().unwrap_or_default()));
        }
        let path = request.url.path();
        let status = if path.contains("/subaccounts/") {
            401
        } else if path.contains("/case") {
            500
        } else if path.contains("/spreadsheets/") {
            403
        } else {
            400
        };
        ResponseTemplate::new(status).set_body_json(json!({
            "code": "E42",
            "message": format!("echo {seen}"),
            "error": {"status": "PERMISSION_DENIED", "message": format!("echo {seen}")},
        }))
    }
}

const KEYS: [(&str, &str); 7] = [
    ("K_8X8", "k8x8-SECRET-1111111"),
    ("K_TR", "ktr-SECRET-2222222"),
    ("K_ARANDA", "karanda-SECRET-3333333"),
    ("K_HTTP", "khttp-SECRET-4444444"),
    ("K_CINNOX", "kcinnox-SECRET-5555555"),
    ("K_SHEETS", "ksheets-SECRET/+6666666"),
    ("K_WEBHOOK", "kwebhook-SECRET-7777777"),
];

fn flow(receiver: &str, map: &str) -> String {
    format!(
        "source: {{connector: csv, path: rows.csv, key: id, backlog: send}}\nreceiver: {receiver}\nmap:\n{map}delivery: {{attempts: 1}}\n"
    )
}

fn setup(uri: &str) -> Dir {
    let dir = Dir::new(uri);
    dir.write(
        "flows/accounts.yaml",
        &format!(
            "sms:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${{K_8X8}}\n  base_url: {uri}\n\
             tr:\n  connector: textrequest\n  api_key: ${{K_TR}}\n  base_url: {uri}/api/v3\n\
             asms:\n  connector: aranda\n  api_key: ${{K_ARANDA}}\n  instance_url: https://help.example.com/ASMS\n  base_url: {uri}/asms\n\
             hook:\n  connector: http\n  base_url: {uri}\n  headers:\n    Authorization: \"Bearer ${{K_HTTP}}\"\n\
             cx:\n  connector: cinnox\n  app_id: app1\n  app_token: ${{K_CINNOX}}\n  base_url: {uri}\n\
             sheets:\n  connector: google_sheets\n  api_key: ${{K_SHEETS}}\n  base_url: {uri}\n\
             wh:\n  connector: webhook\n  secret: ${{K_WEBHOOK}}\n"
        ),
    );
    dir.private("flows/accounts.yaml");
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write("flows/rows.csv", "id,name,phone\nR-1,Olena,+380501234567\n");
    dir.write(
        "flows/f-8x8.yaml",
        &flow(
            "{connector: 8x8, action: send_sms, account: sms}",
            "  destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"\n",
        ),
    );
    dir.write(
        "flows/f-tr.yaml",
        &flow(
            "{connector: textrequest, action: send_message, account: tr, dashboard_id: 7}",
            "  phone_number: \"{{phone}}\"\n  body: \"Hi {{name}}\"\n",
        ),
    );
    dir.write(
        "flows/f-aranda.yaml",
        &flow(
            "{connector: aranda, action: create_case, account: asms}",
            "  itemType: 1\n  projectId: 2\n  serviceId: 3\n  categoryId: 4\n  subject: \"Call {{name}}\"\n",
        ),
    );
    dir.write(
        "flows/f-http.yaml",
        &flow(
            "{connector: http, action: request, account: hook}",
            "  url: /echo\n  body:\n    who: \"{{name}}\"\n",
        ),
    );
    dir.write(
        "flows/f-cinnox.yaml",
        &flow(
            "{connector: cinnox, action: send_im_room, account: cx}",
            "  roomID: room-1\n  text: \"Hi {{name}}\"\n",
        ),
    );
    dir.write(
        "flows/f-sheets.yaml",
        "source: {connector: google_sheets, account: sheets, spreadsheet_id: sheet-1, range: \"A:C\", key: id, backlog: send}\n\
         receiver: {connector: 8x8, action: send_sms, account: sms}\n\
         map:\n  destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"\n",
    );
    dir.write(
        "flows/f-webhook.yaml",
        "source: {connector: webhook, account: wh}\n\
         receiver: {connector: http, action: request, account: hook}\n\
         map:\n  url: /echo\n",
    );
    dir
}

async fn run_with_keys(dir: &Dir, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(args)
        .current_dir(dir.path())
        .env_remove("SWITCHBOARD_FLOWS")
        .env_remove("SWITCHBOARD_STATE")
        .env_remove("RUST_LOG");
    for (var, key) in KEYS {
        command.env(var, key);
    }
    Run::from(command.output().await.expect("the binary runs"))
}

/// Every file under `dir`, as text (lossy), for a search.
fn files_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text.push_str(&files_text(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

fn assert_no_key(seen: &str, channel: &str) {
    for (_, key) in KEYS {
        assert!(
            !seen.contains(key),
            "{channel}: the key {key} leaked:\n{seen}"
        );
        let encoded = key.replace('/', "%2F").replace('+', "%2B");
        assert!(
            !seen.contains(&encoded),
            "{channel}: the key {key} leaked URL-encoded:\n{seen}"
        );
    }
}

const FLOWS: [&str; 6] = [
    "f-8x8", "f-tr", "f-aranda", "f-http", "f-cinnox", "f-sheets",
];

#[tokio::test]
async fn a_key_a_service_echoes_reaches_no_output_log_history_file_or_api() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(Echo)
        .mount(&server)
        .await;
    let dir = setup(&server.uri());

    let mut cli = String::new();
    for name in FLOWS {
        for args in [
            vec!["-vv", "run", name],
            vec!["run", name, "--json"],
            vec!["history", name],
            vec!["history", name, "--json"],
            vec!["history", name, "--run", "1"],
            vec!["history", name, "--run", "1", "--json"],
            vec!["-vv", "test", name, "--send"],
            vec!["test", name, "--send", "--json"],
        ] {
            let r = run_with_keys(&dir, &args).await;
            assert!(!r.stderr.contains("panicked"), "{args:?} panicked: {r:?}");
            cli.push_str(&format!("$ {args:?}\n{}{}", r.stdout, r.stderr));
        }
    }
    let check = run_with_keys(&dir, &["-vv", "accounts", "check", "--json"]).await;
    cli.push_str(&check.stdout);
    cli.push_str(&check.stderr);
    // The echo reached every kind of output, scrubbed.
    for name in FLOWS {
        assert!(cli.contains(name), "{name} ran");
    }
    assert_no_key(&cli, "the command line");
    assert!(
        cli.matches("**REDACTED**").count() >= 20,
        "the stand-in's echo did not reach the outputs:\n{cli}"
    );
    assert_no_key(
        &files_text(&dir.path().join("flows/.switchboard")),
        "the state directory",
    );

    // The daemon: its API and its own log.
    let log = dir.path().join("daemon.log");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args(["-vv", "daemon", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("SWITCHBOARD_TOKEN")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("the test creates its file"))
        .kill_on_drop(true);
    for (var, key) in KEYS {
        command.env(var, key);
    }
    let child = Child(command.spawn().expect("the binary starts"));
    let api = api_of(&dir, &child).await;
    let http = reqwest::Client::new();
    let mut served = String::new();
    for name in FLOWS {
        for (verb, path) in [
            ("POST", format!("/api/flows/{name}/run")),
            ("GET", format!("/api/flows/{name}/runs")),
            ("GET", format!("/api/flows/{name}/runs/1")),
            ("GET", format!("/api/flows/{name}/runs/3")),
        ] {
            let request = match verb {
                "POST" => http.post(format!("{api}{path}")),
                _ => http.get(format!("{api}{path}")),
            };
            let text = request
                .send()
                .await
                .expect("the call is answered")
                .text()
                .await
                .unwrap_or_default();
            served.push_str(&text);
        }
    }
    served.push_str(
        &http
            .get(format!("{api}/api/flows"))
            .send()
            .await
            .expect("the call is answered")
            .text()
            .await
            .unwrap_or_default(),
    );
    assert!(served.contains("**REDACTED**"), "{served}");
    assert_no_key(&served, "the daemon's API");

    // The console: every page, a search for a key itself, and the live fragments.
    let mut pages = String::new();
    let mut paths = vec![
        "/".to_string(),
        "/accounts".into(),
        "/connectors".into(),
        "/search?q=Olena".into(),
        "/api/openapi.json".into(),
    ];
    for (_, key) in KEYS {
        paths.push(format!("/search?q={}", key.replace('+', "%2B")));
    }
    for name in FLOWS {
        paths.push(format!("/flows/{name}"));
        paths.push(format!("/flows/{name}/runs/1"));
        paths.push(format!("/flows/{name}/runs/3"));
        paths.push(format!("/flows/{name}?errors=true"));
        paths.push(format!("/flows/{name}/preview"));
    }
    for path in &paths {
        let response = http
            .get(format!("{api}{path}"))
            .send()
            .await
            .expect("the call is answered");
        // A preview may be refused (a source that answers with an error): the page says
        // why, and is searched like the others.
        let status = response.status();
        let page = response.text().await.unwrap_or_default();
        // A search for a secret looks like a search for anything else: no redaction in
        // the answer confirms the guess.
        if path.starts_with("/search?q=") && path != "/search?q=Olena" {
            assert!(!page.contains("REDACTED"), "{path}: {page}");
        }
        assert!(
            status.is_success() || (path.ends_with("/preview") && status == 422),
            "{path}: {status}"
        );
        // The rows a page asks for as it loads (each account's check) are read too.
        for fragment in page.split("hx-get=\"").skip(1) {
            let url = fragment.split('"').next().unwrap_or_default();
            if url.starts_with("/accounts/") {
                let row = http
                    .get(format!("{api}{url}"))
                    .send()
                    .await
                    .expect("the call is answered");
                pages.push_str(&row.text().await.unwrap_or_default());
            }
        }
        pages.push_str(&page);
    }
    for name in FLOWS {
        pages.push_str(&super::console::first_event(&api, &format!("/live/flows/{name}")).await);
    }
    pages.push_str(&super::console::first_event(&api, "/live/flows").await);
    assert!(pages.contains("**REDACTED**"), "the echo reached the pages");
    assert!(
        pages.contains("inactive"),
        "the accounts page shows the refusals"
    );
    assert_no_key(&pages, "the console's pages");
    drop(child);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_no_key(
        &std::fs::read_to_string(&log).unwrap_or_default(),
        "the daemon's log",
    );
}

#[tokio::test]
async fn a_secret_with_a_line_break_is_refused_by_validate_not_retried_forever() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.write(
        "flows/accounts.yaml",
        "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: \"line\\nbreak-key\"\n",
    );
    dir.private("flows/accounts.yaml");
    let r = dir.run(&["validate"]).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains(
            "accounts.yaml:4:3: `api_key` contains a line break or another control character"
        ),
        "{r:?}"
    );
}
