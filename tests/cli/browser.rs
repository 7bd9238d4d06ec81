//! The console in a real browser: headless Chromium, driven through chromedriver
//! (WebDriver), against the real daemon and a mock 8x8. A person switches a flow off and
//! on (the file changes, the schedule stops), clicks Run now and watches the counts rise,
//! opens the run, replays the failed record once the service is fixed, and searches a
//! phone number to land on its record. It needs Debian's `chromium` and
//! `chromium-driver` (`.ci/run` installs them; elsewhere the test is skipped, saying so).
//! `SWITCHBOARD_BLESS=1` writes the pages' screenshots to `docs/console/`.

use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use super::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver listening on a free port (the process and its URL), or `None` where
/// Chromium is not installed (the test is skipped).
async fn chromedriver() -> Option<(Child, String)> {
    let present = || Path::new(CHROMEDRIVER).exists();
    if !available(
        "browser",
        present,
        "Debian's chromium and chromium-driver are not installed: apt-get install chromium chromium-driver",
    ) {
        return None;
    }
    let port = free_port();
    let child = Child(
        tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromedriver: {e}")),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some((child, url));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

/// Headless Chromium through chromedriver, with more switches (`--force-dark-mode`: the
/// system asks pages for dark colours; `--host-resolver-rules`: a name made to resolve
/// here).
async fn headless_chromium_with(driver: &str, extra: &[&str]) -> Client {
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1360,860",
    ];
    args.extend_from_slice(extra);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), json!({ "args": args }));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver)
        .await
        .unwrap_or_else(|e| panic!("cannot open Chromium through chromedriver: {e}"))
}

/// The page as an image: into `docs/console/NAME.png` when blessing, else nowhere.
async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot succeeds");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::create_dir_all(&dir).expect("the test makes its directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the test writes its file");
    }
}

async fn text_of(browser: &Client, css: &str) -> Option<String> {
    match browser.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.ok(),
        Err(_) => None,
    }
}

/// Open everything the page folds away (the file, the records' requests), so that it is
/// checked too.
async fn open_folds(browser: &Client) {
    let _ = browser
        .execute(
            "document.querySelectorAll('details').forEach(d => d.open = true)",
            vec![],
        )
        .await;
}

/// axe-core, vendored from the npm registry (`tests/vendor/axe-core/`).
const AXE: &str = include_str!("../vendor/axe-core/axe.min.js");

/// What axe-core finds wrong with the page open now, rule by rule (`rule: n node(s)`,
/// with the first node's place and why).
async fn accessibility_violations(browser: &Client) -> Vec<String> {
    browser
        .execute(&format!("{AXE}\n;return true;"), vec![])
        .await
        .expect("axe-core loads");
    let found = browser
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            axe.run(document).then(r => done(r.violations.map(v =>
                v.id + ': ' + v.nodes.length + ' node(s), e.g. ' + v.nodes[0].target.join(' ') + ' — ' + v.nodes[0].failureSummary.replace(/\s+/g, ' ')
            ))).catch(e => done(['axe failed: ' + e]));"#,
            vec![],
        )
        .await
        .expect("axe-core runs");
    found
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Click `css`; a live swap may replace it between finding and clicking (a stale
/// element), so it is found again, for at most two seconds.
async fn click(browser: &Client, css: &str) {
    let mut last = String::new();
    for _ in 0..20 {
        match browser.find(Locator::Css(css)).await {
            Ok(element) => match element.click().await {
                Ok(()) => return,
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("click {css}: {last}");
}

/// Wait (at most 20 s) for `css` to hold `want`; every text seen on the way.
async fn until_text(browser: &Client, css: &str, want: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..200 {
        if let Some(text) = text_of(browser, css).await {
            if seen.last() != Some(&text) {
                seen.push(text.clone());
            }
            if text == want {
                return seen;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {want:?}; seen {seen:?}");
}

/// A mock 8x8 answering in 100 ms (so a run of 40 takes seconds); one number refused
/// until `fix`.
async fn slow_8x8(refused: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_partial_json(json!({"destination": refused})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 1003, "message": "Invalid destination"
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    accept_slowly(&server).await;
    server
}

async fn accept_slowly(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(move |request: &Request| {
            queued(request).set_delay(Duration::from_millis(100))
        })
        .with_priority(5)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_person_switches_runs_replays_and_searches_in_a_real_browser() {
    let refused = "+12025550013";
    let server = slow_8x8(refused).await;
    let dir = Dir::new(&server.uri());
    let mut csv = String::from("order_id,name,phone\n");
    for i in 1..=40 {
        csv.push_str(&format!("A-{i},Client {i},+1202555{i:04}\n"));
    }
    dir.write("flows/orders.csv", &csv);
    let file = dir.path().join("flows/order-sms.yaml");
    dir.write(
        "flows/order-sms.yaml",
        &format!("{FLOW}delivery:\n  concurrency: 1\n  attempts: 1\n"),
    );
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let Some((_driver, driver_url)) = chromedriver().await else {
        return;
    };
    // A name that resolves to this machine (as a rebinding attacker's would): the browser
    // reaches the daemon through it, and the daemon refuses to answer to it.
    let browser = headless_chromium_with(
        &driver_url,
        &["--host-resolver-rules=MAP rebind.evil.example 127.0.0.1"],
    )
    .await;
    let port = api.rsplit(':').next().unwrap_or_default().to_string();
    browser
        .goto(&format!("http://rebind.evil.example:{port}/"))
        .await
        .expect("the page loads");
    let rebound = text_of(&browser, "body").await.unwrap_or_default();
    assert!(
        rebound.contains("this daemon does not answer to that name"),
        "{rebound}"
    );
    let next_run = || async {
        reqwest::get(format!("{api}/api/flows"))
            .await
            .expect("the GET is answered")
            .json::<Value>()
            .await
            .unwrap_or(Value::Null)["flows"][0]["next_run"]
            .clone()
    };

    // The flows page; switch the flow off: the file says so and nothing is scheduled.
    browser
        .goto(&format!("{api}/"))
        .await
        .expect("the page loads");
    let row = "tr[data-flow='order-sms']";
    // The rows are swapped in live (SSE) as the page opens: read them as they settle.
    until_text(
        &browser,
        &format!("{row} button[data-test='toggle'] .state"),
        "on",
    )
    .await;
    click(&browser, &format!("{row} button[data-test='toggle']")).await;
    until_text(
        &browser,
        &format!("{row} button[data-test='toggle'] .state"),
        "off",
    )
    .await;
    // The page it lands on says what happened, once.
    until_text(
        &browser,
        "div[data-test='toast']",
        "order-sms switched off: it runs only when forced",
    )
    .await;
    assert!(std::fs::read_to_string(&file)
        .unwrap_or_default()
        .starts_with("enabled: false\n"));
    assert!(next_run().await.is_null(), "the schedule stopped");
    click(&browser, &format!("{row} button[data-test='toggle']")).await;
    until_text(
        &browser,
        &format!("{row} button[data-test='toggle'] .state"),
        "on",
    )
    .await;
    assert!(next_run().await.is_string(), "scheduled again");

    // Run now: the run log shows the counts rising while it sends.
    click(&browser, &format!("{row} button[data-test='run-now']")).await;
    until_text(
        &browser,
        "div[data-test='toast']",
        "order-sms: a run started; it shows below as it goes",
    )
    .await;
    // The run's own page is live while it runs: it follows its redraws.
    let (_, running) = crate::console::get(
        &reqwest::Client::new(),
        &format!("{api}/flows/order-sms/runs/1"),
    )
    .await;
    assert!(
        running.contains("sse-connect=\"/live/flows/order-sms/runs/1?"),
        "{running}"
    );
    let redrawn = crate::console::first_event(&api, "/live/flows/order-sms/runs/1").await;
    assert!(
        redrawn.starts_with("event: run") && redrawn.contains("run #1"),
        "{redrawn}"
    );
    let sent = "tr[data-run='1'] td[data-test='sent']";
    let seen = until_text(&browser, sent, "39").await;
    let counts: Vec<u64> = seen.iter().filter_map(|s| s.parse().ok()).collect();
    assert!(
        counts.iter().any(|n| *n > 0 && *n < 39),
        "the counts rose live, not only at the end: {seen:?}"
    );
    until_text(&browser, "tr[data-run='1'] td[data-test='failed']", "1").await;
    // A log drawn before the run began said it had none; that is gone once it arrived.
    if let Ok(none) = browser.find(Locator::Css("p[data-test='no-runs']")).await {
        assert!(
            !none.is_displayed().await.unwrap_or(true),
            "'No runs yet' beside a run"
        );
    }
    screenshot(&browser, "run-log").await;
    // Once it has ended, its page is drawn once, not followed.
    let mut ended = String::new();
    for _ in 0..100 {
        ended = crate::console::get(
            &reqwest::Client::new(),
            &format!("{api}/flows/order-sms/runs/1"),
        )
        .await
        .1;
        if !ended.contains("badge running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !ended.contains("sse-connect"),
        "an ended run is not redrawn: {ended}"
    );

    // The run: the refused record, with the service's reason.
    click(&browser, "tr[data-run='1'] a").await;
    let failed_row = "tr[data-key='A-13']";
    let status = text_of(&browser, &format!("{failed_row} td:nth-child(3)"))
        .await
        .unwrap_or_default();
    assert!(status.starts_with("failed"), "{status}");
    let why = text_of(&browser, &format!("{failed_row} td:nth-child(4)"))
        .await
        .unwrap_or_default();
    assert!(why.contains("Invalid destination"), "{why}");
    // Its timeline: when, how many tries, the call it made, what the service said.
    click(&browser, &format!("{failed_row} details summary")).await;
    let timeline = text_of(&browser, &format!("{failed_row} ol[data-test='timeline']"))
        .await
        .unwrap_or_default();
    for expected in [
        "into the run, after 1 attempt",
        "POST http://127.0.0.1:",
        "/api/v1/subaccounts/shop_main/messages",
        "the service answered: 1003: Invalid destination",
    ] {
        assert!(timeline.contains(expected), "{expected} not in {timeline}");
    }
    screenshot(&browser, "run").await;
    click(&browser, "a[data-test='only-failed']").await;
    until_text(&browser, "nav.filters b", "only failed records").await;
    let listed = browser
        .find_all(Locator::Css("tr[data-key]"))
        .await
        .unwrap_or_default();
    assert_eq!(listed.len(), 1, "only the failed record");

    // The service is fixed; Replay failed sends that one record again, and only it.
    server.reset().await;
    accept_slowly(&server).await;
    click(&browser, "button[data-test='replay-failed']").await;
    until_text(&browser, "tr[data-run='2'] td[data-test='sent']", "1").await;
    let resent = bodies(&server).await;
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0]["destination"], refused);

    // Run 1 says its failure was resent, and where; replaying it again says there is
    // nothing left to send. Run 2, which failed nothing, offers no replay.
    browser
        .goto(&format!("{api}/flows/order-sms/runs/1"))
        .await
        .expect("the page loads");
    assert_eq!(
        text_of(&browser, "tr[data-key='A-13'] a[data-test='resent']")
            .await
            .as_deref(),
        Some("resent in #2")
    );
    click(&browser, "button[data-test='replay-failed']").await;
    until_text(&browser, "h1", "Nothing to replay").await;
    assert_eq!(bodies(&server).await.len(), 1, "nothing was sent again");
    browser
        .goto(&format!("{api}/flows/order-sms/runs/2"))
        .await
        .expect("the page loads");
    assert!(
        browser
            .find(Locator::Css("button[data-test='replay-failed']"))
            .await
            .is_err(),
        "no replay of a run that failed nothing"
    );

    // Search the phone number as a person types it: both runs' records, and a click
    // lands on the record in its run.
    browser
        .goto(&format!("{api}/"))
        .await
        .expect("the page loads");
    screenshot(&browser, "flows").await;
    let search = browser
        .find(Locator::Css("form.find input[name='q']"))
        .await
        .expect("the look-up answers");
    search
        .send_keys("(202) 555-0013\u{e007}")
        .await
        .expect("send_keys succeeds");
    until_text(&browser, "h1", "Search").await;
    let hits = browser
        .find_all(Locator::Css("tr[data-test='hit']"))
        .await
        .unwrap_or_default();
    assert_eq!(hits.len(), 2, "run 1's failure and run 2's replay");
    // The box shows what was searched for (from the address: the page does not hold it).
    let typed = browser
        .execute(
            "return document.querySelector('form.filter input[name=q]').value",
            vec![],
        )
        .await
        .unwrap_or(Value::Null);
    assert_eq!(typed, json!("(202) 555-0013"));
    screenshot(&browser, "search").await;
    click(&browser, "tr[data-test='hit'] a[data-test='hit-link']").await;
    let found = browser
        .find(Locator::Css("tr.found"))
        .await
        .unwrap_or_else(|e| panic!("the record is marked: {e}"));
    assert_eq!(
        found.attr("data-key").await.ok().flatten().as_deref(),
        Some("A-13")
    );

    for (path, name) in [("/accounts", "accounts"), ("/connectors", "connectors")] {
        browser
            .goto(&format!("{api}{path}"))
            .await
            .expect("the page loads");
        assert!(text_of(&browser, "h1").await.is_some());
        screenshot(&browser, name).await;
    }
    // The page's own scripts ran without error (htmx and its SSE extension loaded).
    let loaded = browser
        .execute(
            "return typeof htmx === 'object' && !!htmx.ext || typeof htmx === 'object'",
            vec![],
        )
        .await
        .unwrap_or(Value::Null);
    assert_eq!(loaded, Value::Bool(true));

    // A keyboard user on the flows page keeps their place while the rows are redrawn
    // live (a run starts and ends meanwhile); the row's buttons name their flow.
    browser
        .goto(&format!("{api}/"))
        .await
        .expect("the page loads");
    until_text(
        &browser,
        &format!("{row} button[data-test='toggle'] .state"),
        "on",
    )
    .await;
    let named = browser
        .execute(
            "const b = document.getElementById('run-order-sms'); b.focus(); return [b.textContent, document.getElementById('toggle-order-sms').textContent];",
            vec![],
        )
        .await
        .unwrap_or(Value::Null);
    assert_eq!(named, json!(["▶ Run now order-sms", "on order-sms"]));
    let api_run = {
        let url = format!("{api}/api/flows/order-sms/run");
        tokio::spawn(async move { reqwest::Client::new().post(url).send().await })
    };
    until_text(
        &browser,
        &format!("{row} td[data-test='last-run'] a"),
        "#3 ok · sent 0, failed 0",
    )
    .await;
    let _ = api_run.await;
    let focused = browser
        .execute(
            "return document.activeElement && document.activeElement.id",
            vec![],
        )
        .await
        .unwrap_or(Value::Null);
    assert_eq!(
        focused,
        json!("run-order-sms"),
        "the focus stayed on Run now"
    );

    // The flow edited in the page: a problem shows at its line as it is typed, the fix
    // clears it, Save writes the file and the daemon runs the new version.
    browser
        .goto(&format!("{api}/flows/order-sms/edit"))
        .await
        .expect("the page loads");
    let editor = browser
        .find(Locator::Css("textarea#text"))
        .await
        .expect("the editor is there");
    let original = editor
        .prop("value")
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(original.contains("every: 15m"), "{original}");
    let set_text = |text: String| {
        let browser = browser.clone();
        async move {
            browser
                .execute(
                    "const t = document.getElementById('text'); t.value = arguments[0]; t.dispatchEvent(new Event('input', {bubbles: true}));",
                    vec![json!(text)],
                )
                .await
                .expect("the text is typed");
        }
    };
    set_text(original.replace("every: 15m", "every: 15 parsecs")).await;
    let line = original
        .lines()
        .position(|l| l.contains("every: 15m"))
        .map_or(0, |i| i + 1);
    let problem = format!("li.problem[data-line='{line}']");
    let mut shown = String::new();
    for _ in 0..100 {
        shown = text_of(&browser, &problem).await.unwrap_or_default();
        if !shown.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown.contains("is not a duration"),
        "at line {line}: {shown:?}"
    );
    let violations = accessibility_violations(&browser).await;
    assert!(violations.is_empty(), "the editor: {violations:#?}");
    set_text(original.replace("every: 15m", "every: 20m")).await;
    until_text(&browser, "p[data-test='no-problems']", "No problems.").await;
    click(&browser, "button[data-test='save']").await;
    until_text(&browser, "h1", "order-sms").await;
    assert!(std::fs::read_to_string(&file)
        .unwrap_or_default()
        .contains("every: 20m"));
    let schedule = reqwest::get(format!("{api}/api/flows"))
        .await
        .expect("the GET is answered")
        .json::<Value>()
        .await
        .unwrap_or(Value::Null)["flows"][0]["schedule"]
        .clone();
    assert!(
        schedule.as_str().is_some_and(|s| s.contains("20m")),
        "the daemon runs the new version: {schedule}"
    );

    // A new flow made from the cards: the file is written from them (with the 8x8
    // account that is there), completed in the editor, saved, and run.
    browser
        .goto(&format!("{api}/new"))
        .await
        .expect("the page loads");
    browser
        .execute(
            "document.getElementById('flow').value = 'welcome-sms'; document.getElementById('source').value = 'csv'; document.getElementById('path').value = 'orders.csv'; document.getElementById('receiver').value = '8x8/send_sms';",
            vec![],
        )
        .await
        .expect("the form is filled");
    // Each field mapped from the sample's columns, read from the file.
    click(&browser, "button[data-test='read-columns']").await;
    let options = browser
        .execute(
            "return Array.from(document.querySelectorAll('#map-destination option')).map(o => o.textContent)",
            vec![],
        )
        .await
        .unwrap_or(Value::Null);
    assert_eq!(
        options,
        json!(["fill in later, in the editor", "order_id", "name", "phone"])
    );
    let violations = accessibility_violations(&browser).await;
    assert!(violations.is_empty(), "the mapping form: {violations:#?}");
    browser
        .execute(
            "document.getElementById('map-destination').value = '{{phone}}'; document.getElementById('map-text').value = '{{name}}';",
            vec![],
        )
        .await
        .expect("the fields are mapped");
    click(&browser, "button[data-test='create']").await;
    until_text(&browser, "h1", "Edit welcome-sms").await;
    let written =
        std::fs::read_to_string(dir.path().join("flows/welcome-sms.yaml")).unwrap_or_default();
    assert!(
        written.contains("connector: csv")
            && written.contains("path: \"orders.csv\"")
            && written.contains("action: send_sms")
            && written.contains("account: shop-8x8")
            && written.contains("destination: \"{{phone}}\"")
            && written.contains("text: \"{{name}}\""),
        "{written}"
    );
    set_text(
        "enabled: true\nsource: {connector: csv, path: orders.csv, key: order_id, backlog: send}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Welcome {{name}}\"\n"
            .to_string(),
    )
    .await;
    until_text(&browser, "p[data-test='no-problems']", "No problems.").await;
    // What the edit, not saved yet, would send next.
    click(&browser, "button[data-test='try']").await;
    until_text(
        &browser,
        "#tried section[data-test='preview'] h2",
        "Record A-1",
    )
    .await;
    let tried = text_of(&browser, "#tried").await.unwrap_or_default();
    assert!(tried.contains("\"text\": \"Welcome Client 1\""), "{tried}");
    assert!(
        !dir.path().join("flows/welcome-sms.yaml").exists()
            || !std::fs::read_to_string(dir.path().join("flows/welcome-sms.yaml"))
                .unwrap_or_default()
                .contains("Welcome {{name}}"),
        "a preview saves nothing"
    );
    click(&browser, "button[data-test='save']").await;
    until_text(&browser, "h1", "welcome-sms").await;
    click(&browser, "button[data-test='run-now']").await;
    until_text(&browser, "tr[data-run='1'] td[data-test='sent']", "40").await;

    // Every page passes axe-core's checks (WCAG 2 A/AA and best practices it runs by
    // default): contrast, names, landmarks, headers.
    // (A run's page is visited before its run log's: from a run log, headless Chromium
    // once took 54 s to leave for a run's page that the daemon served in 5 ms — see the
    // note of this change.)
    // A row the runs have not taken yet, for the preview of what goes out next.
    let mut csv = std::fs::read_to_string(dir.path().join("flows/orders.csv")).unwrap_or_default();
    csv.push_str("A-41,Client 41,+12025550041\n");
    dir.write("flows/orders.csv", &csv);
    const PAGES: [&str; 9] = [
        "/",
        "/flows/order-sms/runs/1",
        "/search?q=555-0013",
        "/flows/order-sms",
        "/flows/order-sms/preview",
        "/accounts",
        "/connectors",
        "/new",
        "/flows/welcome-sms/edit",
    ];
    for path in PAGES {
        browser
            .goto(&format!("{api}{path}"))
            .await
            .expect("the page loads");
        // What folds away is checked open (the file, the records' requests).
        open_folds(&browser).await;
        let violations = accessibility_violations(&browser).await;
        assert!(violations.is_empty(), "{path}: {violations:#?}");
        match path {
            "/flows/order-sms/preview" => {
                assert!(text_of(&browser, "section[data-test='preview'] h2")
                    .await
                    .is_some_and(|t| t.contains("A-41")));
                screenshot(&browser, "preview").await;
            }
            "/flows/welcome-sms/edit" => screenshot(&browser, "edit").await,
            "/new" => screenshot(&browser, "new-flow").await,
            "/flows/order-sms" => screenshot(&browser, "flow").await,
            _ => {}
        }
    }

    // The same pages when the system asks for dark colours: axe checks their contrast too.
    let dark = headless_chromium_with(&driver_url, &["--force-dark-mode"]).await;
    for path in PAGES {
        dark.goto(&format!("{api}{path}"))
            .await
            .expect("the page loads");
        open_folds(&dark).await;
        let violations = accessibility_violations(&dark).await;
        assert!(violations.is_empty(), "{path}, dark: {violations:#?}");
        match path {
            "/" => screenshot(&dark, "dark-flows").await,
            "/flows/order-sms" => screenshot(&dark, "dark-run-log").await,
            "/flows/order-sms/preview" => screenshot(&dark, "dark-preview").await,
            "/flows/welcome-sms/edit" => screenshot(&dark, "dark-edit").await,
            _ => {}
        }
    }
    dark.set_window_size(390, 844)
        .await
        .expect("the window is resized");
    dark.goto(&format!("{api}/flows/order-sms"))
        .await
        .expect("the page loads");
    screenshot(&dark, "dark-phone-run-log").await;
    let _ = dark.close().await;

    // On a phone (390 px wide) every page fits the screen: nothing scrolls sideways.
    browser
        .set_window_size(390, 844)
        .await
        .expect("the window is resized");
    for path in [
        "/",
        "/flows/order-sms",
        "/flows/order-sms/runs/1",
        "/flows/order-sms/preview",
        "/flows/welcome-sms/edit",
        "/new",
        "/search?q=555-0013",
        "/accounts",
        "/connectors",
    ] {
        browser
            .goto(&format!("{api}{path}"))
            .await
            .expect("the page loads");
        let widths = browser
            .execute(
                "const d = document.documentElement; return [d.scrollWidth, d.clientWidth];",
                vec![],
            )
            .await
            .unwrap_or(Value::Null);
        let (scroll, client) = (widths[0].as_u64(), widths[1].as_u64());
        assert!(
            scroll.is_some() && scroll <= client && client <= Some(400),
            "{path} is {widths} wide at 390 px"
        );
        let violations = accessibility_violations(&browser).await;
        assert!(violations.is_empty(), "{path} at 390 px: {violations:#?}");
        match path {
            "/" => screenshot(&browser, "phone-flows").await,
            "/flows/order-sms" => screenshot(&browser, "phone-run-log").await,
            "/flows/order-sms/preview" => screenshot(&browser, "phone-preview").await,
            "/flows/welcome-sms/edit" => screenshot(&browser, "phone-edit").await,
            _ => {}
        }
    }

    // The daemon stops answering: the open page says so rather than showing stale rows as
    // if they were live.
    browser
        .set_window_size(1360, 900)
        .await
        .expect("the window is resized");
    browser
        .goto(&format!("{api}/"))
        .await
        .expect("the page loads");
    until_text(
        &browser,
        &format!("{row} button[data-test='toggle'] .state"),
        "on",
    )
    .await;
    assert_eq!(
        text_of(&browser, "div[data-test='offline']")
            .await
            .as_deref(),
        Some(""),
        "no banner while it answers"
    );
    drop(daemon);
    until_text(
        &browser,
        "div[data-test='offline']",
        "The daemon does not answer: what this page shows may be out of date. It reconnects by itself.",
    )
    .await;
    let _ = browser.close().await;
}
