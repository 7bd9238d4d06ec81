//! The console through the real daemon: its pages as a browser gets them, its forms as a
//! browser posts them (with the page's anti-forgery token), the file a toggle edits, the
//! schedule that stops, search landing on a record, sign-in off loopback, and requests
//! from another site refused. The browser itself drives it in `browser.rs`.

use super::*;

/// The daemon's console at `api`, as one browser (it keeps cookies; it follows no
/// redirect, so each one is seen).
/// A client that follows no redirect and keeps no cookie: a request from nowhere in
/// particular (a forger, a page from before a restart).
fn cookieless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("it is built")
}

pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("it is built")
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The anti-forgery token a page's forms carry.
pub(crate) fn csrf_of(page: &str) -> String {
    page.split("data-csrf=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no anti-forgery token in the page:\n{page}"))
        .to_string()
}

/// POST a console form; the status and where it sends the browser.
pub(crate) async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> (u16, String) {
    let mut request = client.post(url).form(form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.expect("the call is answered");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, location)
}

/// The first event a live endpoint sends (its data lines joined), within 10 seconds.
pub(crate) async fn first_event(api: &str, path: &str) -> String {
    use futures::StreamExt as _;
    let response = reqwest::get(format!("{api}{path}"))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream"),
        "{path}"
    );
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("\n\n") {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
    text
}

/// Wait until the flow's newest run has ended; its summary.
pub(crate) async fn last_run_ended(api: &str, flow: &str) -> Value {
    for _ in 0..200 {
        let runs: Value = reqwest::get(format!("{api}/api/flows/{flow}/runs?limit=1"))
            .await
            .expect("the GET is answered")
            .json()
            .await
            .unwrap_or(Value::Null);
        let run = &runs["runs"][0];
        if run["status"].is_string() && run["status"] != "running" {
            return run.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{flow}: no run ended");
}

/// A flow of 250 orders, each with a phone number, and a broken flow beside it.
fn shop(server: &MockServer) -> Dir {
    let dir = Dir::new(&server.uri());
    let mut csv = String::from("order_id,name,phone\n");
    for i in 1..=250 {
        csv.push_str(&format!("A-{i},Client {i},+1202555{i:04}\n"));
    }
    dir.write("flows/orders.csv", &csv);
    dir.write(
        "flows/broken.yaml",
        "source: {connector: csv, path: orders.csv}\nreceiver:\n  connector: 8x8\n  account: shop-8x8\nmap: {}\n",
    );
    dir
}

#[tokio::test]
async fn the_console_shows_flows_runs_and_records_and_search_lands_on_a_record() {
    let server = mock_8x8().await;
    let dir = shop(&server);
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let client = browser();

    // The flows page is the default route: both flows, the broken one with its place.
    let (status, page) = get(&client, &format!("{api}/")).await;
    assert_eq!(status, 200);
    assert!(page.contains("data-flow=\"order-sms\"") && page.contains("data-flow=\"broken\""));
    assert!(
        page.contains("broken.yaml:3:3:") || page.contains("broken.yaml:3:"),
        "the invalid flow's problem with file:line:col:\n{page}"
    );
    assert!(page.contains("every 15m"), "the schedule in words");
    assert!(page.contains("never"), "no run yet");

    // Run now, as the button posts it: the browser goes to the run log.
    let (status, location) = post_form(
        &client,
        &format!("{api}/flows/order-sms/run"),
        &[("csrf", &csrf_of(&page))],
        None,
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/flows/order-sms"));
    let run = last_run_ended(&api, "order-sms").await;
    assert_eq!(run["counts"]["sent"], 250, "{run}");
    assert_eq!(bodies(&server).await.len(), 250);

    // The run's records as CSV, every one of them (not a page of 100).
    let id = run["id"].as_u64().unwrap_or(1);
    let exported = client
        .get(format!("{api}/flows/order-sms/runs/{id}/records.csv"))
        .send()
        .await
        .expect("the call is answered");
    assert!(exported
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv")));
    let csv = exported.text().await.unwrap_or_default();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("seq,key,status,why,code,service_id,at,record")
    );
    assert_eq!(lines.filter(|l| l.contains(",sent,")).count(), 250, "{csv}");
    assert!(!csv.contains(API_KEY));

    let (_, page) = get(&client, &format!("{api}/")).await;
    assert!(page.contains("#1 ok · sent 250, failed 0"), "{page}");
    let (_, log) = get(&client, &format!("{api}/flows/order-sms")).await;
    assert!(
        log.contains("data-run=\"1\"") && log.contains("manual"),
        "{log}"
    );
    // What the flow does: where records go, and each receiver field's template.
    assert!(
        log.contains("What it does")
            && log.contains("csv → 8x8 · send_sms")
            && log.contains("<code>destination</code>")
            && log.contains("<code>{{phone}}</code>"),
        "{log}"
    );
    // The file itself, highlighted: keys, templates, comments.
    assert!(
        log.contains("data-test=\"file\"")
            && log.contains("<span class=\"y-key\">receiver</span>:")
            && log.contains("<span class=\"y-str\"> &quot;{{phone}}&quot;</span>"),
        "{log}"
    );
    let (_, only_errors) = get(&client, &format!("{api}/flows/order-sms?errors=true")).await;
    assert!(
        !only_errors.contains("data-run=\"1\""),
        "the filter hides a clean run"
    );
    // Runs by trigger and by day (the run form's fields; the flow's zone's day).
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Kyiv)
        .format("%Y-%m-%d");
    let (_, manual) = get(
        &client,
        &format!("{api}/flows/order-sms?trigger=manual&day={today}"),
    )
    .await;
    assert!(manual.contains("data-run=\"1\""), "{manual}");
    assert!(
        manual.contains("<option value=\"manual\" selected>"),
        "the form keeps its choice: {manual}"
    );
    let (_, scheduled) = get(
        &client,
        &format!("{api}/flows/order-sms?trigger=schedule&day="),
    )
    .await;
    assert!(
        !scheduled.contains("data-run=\"1\""),
        "a manual run is not a scheduled one"
    );
    assert!(
        scheduled.contains("No run matches these filters."),
        "{scheduled}"
    );
    let (_, ok) = get(&client, &format!("{api}/flows/order-sms?status=ok")).await;
    assert!(ok.contains("data-run=\"1\""), "{ok}");
    let (_, failed) = get(&client, &format!("{api}/flows/order-sms?status=failed")).await;
    assert!(!failed.contains("data-run=\"1\""), "{failed}");
    let (_, other_day) = get(&client, &format!("{api}/flows/order-sms?day=2001-01-01")).await;
    assert!(!other_day.contains("data-run=\"1\""));
    let (status, _) = get(&client, &format!("{api}/flows/order-sms?trigger=sometimes")).await;
    assert_eq!(status, 400, "an unknown trigger is refused, not ignored");

    // What it sends next: nothing while every row is handled; a row added is shown beside
    // the request it makes, and nothing is sent.
    assert!(
        log.contains("/flows/order-sms/preview"),
        "a link from the flow"
    );
    let (status, nothing) = get(&client, &format!("{api}/flows/order-sms/preview")).await;
    assert_eq!(status, 200, "{nothing}");
    assert!(nothing.contains("data-test=\"nothing-next\""), "{nothing}");
    let mut csv = std::fs::read_to_string(dir.path().join("flows/orders.csv")).unwrap_or_default();
    csv.push_str("A-251,Olena Next,+12025550251\n");
    dir.write("flows/orders.csv", &csv);
    let (status, next) = get(&client, &format!("{api}/flows/order-sms/preview")).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next.matches("data-test=\"preview\"").count(), 1, "{next}");
    for expected in [
        "<code>A-251</code>",
        "Olena Next",
        "POST http",
        "/api/v1/subaccounts/shop_main/messages",
        "Hi Olena Next, order A-251 is confirmed.",
    ] {
        assert!(next.contains(expected), "missing {expected}: {next}");
    }
    assert!(!next.contains(API_KEY));
    assert_eq!(bodies(&server).await.len(), 250, "a preview sends nothing");

    // A run's records, a hundred a page.
    let (_, first) = get(&client, &format!("{api}/flows/order-sms/runs/1")).await;
    assert_eq!(first.matches("data-key=").count(), 100);
    assert!(first.contains("id=\"row-1\"") && first.contains("id=\"row-100\""));
    assert!(first.contains("?from=101"), "a link to the next page");
    assert!(first.contains("umid-"), "the service's id");
    let (_, last) = get(&client, &format!("{api}/flows/order-sms/runs/1?from=201")).await;
    assert_eq!(last.matches("data-key=").count(), 50);
    assert!(!last.contains("next →"));

    // Search: a phone number written another way lands on its record.
    let (_, found) = get(&client, &format!("{api}/search?q=%2B1%20(202)%20555-0042")).await;
    assert_eq!(found.matches("data-test=\"hit\"").count(), 1, "{found}");
    let link = found
        .split("data-test=\"hit\"")
        .nth(1)
        .and_then(|hit| hit.split("href=\"").nth(2))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no link in {found}"))
        .replace("&amp;", "&");
    assert_eq!(link, "/flows/order-sms/runs/1?from=1&at=42#row-42");
    let (_, record) = get(&client, &format!("{api}{link}")).await;
    assert!(
        record.contains("id=\"row-42\" class=\"found\" data-key=\"A-42\""),
        "{record}"
    );
    let (_, by_key) = get(&client, &format!("{api}/search?q=a-250")).await;
    assert_eq!(by_key.matches("data-test=\"hit\"").count(), 1);
    let (_, none) = get(&client, &format!("{api}/search?q=nobody%40nowhere")).await;
    assert!(none.contains("0 record(s)"));

    // Accounts (checked now) and the catalogue.
    // The page lists each account at once; each row is checked as its service answers.
    let (_, accounts) = get(&client, &format!("{api}/accounts")).await;
    assert!(
        accounts.contains("data-account=\"shop-8x8\"")
            && accounts.contains("hx-get=\"/accounts/shop-8x8/status\""),
        "{accounts}"
    );
    assert!(
        accounts.contains(">1 flow<"),
        "used by the one valid flow: {accounts}"
    );
    let (_, row) = get(&client, &format!("{api}/accounts/shop-8x8/status")).await;
    assert!(
        row.contains("data-account=\"shop-8x8\"") && row.contains(">active<"),
        "{row}"
    );
    assert!(!accounts.contains(API_KEY) && !row.contains(API_KEY));
    let (_, catalogue) = get(&client, &format!("{api}/connectors")).await;
    for card in [
        "8x8",
        "textrequest",
        "aranda",
        "cinnox",
        "google_sheets",
        "csv",
        "http",
    ] {
        assert!(catalogue.contains(&format!("id=\"{card}\"")), "{card}");
    }

    // Live: the flows' rows come as an event; a page that says what it shows gets only
    // what differs (nothing, while no run goes on: the run log has no clock in it);
    // unknown pages are 404s.
    let (_, page) = get(&client, &format!("{api}/flows/order-sms")).await;
    let live = page
        .split("sse-connect=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no live stream in {page}"))
        .replace("&amp;", "&");
    assert!(live.contains("&shown="), "{live}");
    let quiet = tokio::time::timeout(
        std::time::Duration::from_millis(2500),
        first_event(&api, &live),
    )
    .await;
    assert!(
        quiet.is_err(),
        "an unchanged page got its rows again: {quiet:?}"
    );
    let event = first_event(&api, "/live/flows").await;
    assert!(
        event.starts_with("event: flows\n") && event.contains("data-flow=\"order-sms\""),
        "{event}"
    );
    assert_eq!(get(&client, &format!("{api}/flows/nope")).await.0, 404);
    assert_eq!(
        get(&client, &format!("{api}/flows/order-sms/runs/9"))
            .await
            .0,
        404
    );
    let (status, asset) = get(&client, &format!("{api}/assets/htmx.min.js")).await;
    assert!(status == 200 && asset.len() > 40_000);
}

#[tokio::test]
async fn the_toggle_edits_the_file_in_place_and_the_schedule_stops_and_forgeries_are_refused() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let file = dir.path().join("flows/order-sms.yaml");
    let commented = format!("# orders to SMS, kept by Ann\n{FLOW}");
    dir.write("flows/order-sms.yaml", &commented);
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let client = browser();
    let next_run = |flows: &Value| flows["flows"][0]["next_run"].clone();
    let flows = || async {
        reqwest::get(format!("{api}/api/flows"))
            .await
            .expect("the GET is answered")
            .json::<Value>()
            .await
            .unwrap_or(Value::Null)
    };
    assert!(next_run(&flows().await).is_string());
    let (_, page) = get(&client, &format!("{api}/")).await;
    let csrf = csrf_of(&page);
    let toggle = format!("{api}/flows/order-sms/enabled");

    // Forged: no token, a wrong token, another site. Nothing changes.
    for (form, origin) in [
        (vec![("enabled", "false")], None),
        (vec![("enabled", "false"), ("csrf", "0000")], None),
        (
            vec![("enabled", "false"), ("csrf", csrf.as_str())],
            Some("https://evil.example"),
        ),
    ] {
        let (status, _) = post_form(&client, &toggle, &form, origin).await;
        assert_eq!(status, 403, "{form:?} {origin:?}");
    }
    // Each browser has a token of its own: another's page's token, or the token without
    // the browser that was given it, is refused.
    let other = browser();
    let (_, other_page) = get(&other, &format!("{api}/")).await;
    assert_ne!(csrf_of(&other_page), csrf, "one token per browser");
    let (status, _) = post_form(
        &other,
        &toggle,
        &[("enabled", "false"), ("csrf", &csrf)],
        None,
    )
    .await;
    assert_eq!(status, 403, "a token from another browser");
    let cookieless = cookieless();
    let (status, _) = post_form(
        &cookieless,
        &toggle,
        &[("enabled", "false"), ("csrf", &csrf)],
        None,
    )
    .await;
    assert_eq!(status, 403, "a token without its browser");
    let cross_site_api = client
        .post(format!("{api}/api/flows/order-sms/run"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(cross_site_api.status().as_u16(), 403, "the JSON API too");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        commented
    );
    assert!(bodies(&server).await.is_empty());

    // Off: only the `enabled:` value changed, the daemon took it, nothing is scheduled.
    let (status, location) = post_form(
        &client,
        &toggle,
        &[("enabled", "false"), ("csrf", &csrf)],
        Some(&api),
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/"));
    let off = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(off, commented.replace("enabled: true", "enabled: false"));
    let listed = flows().await;
    assert_eq!(listed["flows"][0]["enabled"], false, "{listed}");
    assert!(
        next_run(&listed).is_null(),
        "the schedule stopped: {listed}"
    );
    let (_, page) = get(&client, &format!("{api}/")).await;
    assert!(page.contains("toggle off"));

    // On again: back to the very same file, scheduled again.
    post_form(
        &client,
        &toggle,
        &[("enabled", "true"), ("csrf", &csrf)],
        None,
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        commented
    );
    assert!(next_run(&flows().await).is_string());

    // A file that cannot be written says why, and stays as it was.
    use std::os::unix::fs::PermissionsExt;
    let flows_dir = dir.path().join("flows");
    let _ = std::fs::set_permissions(&flows_dir, std::fs::Permissions::from_mode(0o500));
    let refused = client
        .post(&toggle)
        .form(&[("enabled", "false"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("the call is answered");
    let _ = std::fs::set_permissions(&flows_dir, std::fs::Permissions::from_mode(0o755));
    let root = std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        });
    if !root {
        // Back to its page, whose toast says why.
        assert_eq!(refused.status().as_u16(), 303);
        let toast = refused
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            toast.starts_with("sb_flash=0") && toast.contains("cannot+write+beside"),
            "{toast}"
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap_or_default(),
            commented
        );
    }
}

#[tokio::test]
async fn off_loopback_the_console_asks_for_the_token_once_and_keeps_a_strict_cookie() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let daemon = spawn_daemon_with(&dir, &["--token", "console-token-1234"]);
    let api = api_of(&dir, &daemon).await;
    let client = browser();

    let (status, _) = get(&client, &format!("{api}/flows/order-sms")).await;
    assert_eq!(status, 303);
    let response = client
        .get(format!("{api}/flows/order-sms"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/login?next=%2Fflows%2Forder-sms")
    );
    assert_eq!(
        first_status(&client, &format!("{api}/live/flows")).await,
        401
    );

    let (status, location) = post_form(
        &client,
        &format!("{api}/login"),
        &[("token", "wrong"), ("next", "/flows/order-sms")],
        None,
    )
    .await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/login?failed=true"), "{location}");

    let signed = client
        .post(format!("{api}/login"))
        .form(&[
            ("token", "console-token-1234"),
            ("next", "/flows/order-sms"),
        ])
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(
        signed
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/flows/order-sms")
    );
    let cookie = signed
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "the session ends when the browser closes: {cookie}"
    );
    assert!(
        !cookie.contains("console-token-1234"),
        "the cookie is not the token"
    );
    let session = cookie.split(';').next().unwrap_or_default().to_string();
    let page = client
        .get(format!("{api}/flows/order-sms"))
        .header("cookie", &session)
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.unwrap_or_default();
    assert!(!page.contains("console-token-1234"));
    assert!(
        page.contains("action=\"/logout\"") && page.contains("Sign out"),
        "a signed-in page offers to sign out"
    );
    // A session cookie made up by someone else is not one (asked by a client that keeps
    // no cookies: `client` signed in).
    let bare = cookieless();
    let forged = bare
        .get(format!("{api}/"))
        .header("cookie", "switchboard_session=9999999999.00.00")
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(forged.status().as_u16(), 303);
    // Off the login page, a next that leaves the server is not followed.
    let (_, location) = post_form(
        &client,
        &format!("{api}/login"),
        &[("token", "console-token-1234"), ("next", "//evil.example/")],
        None,
    )
    .await;
    assert_eq!(location, "/");
    for elsewhere in ["/\\evil.example/", "https://evil.example/", "/\tx"] {
        let (_, location) = post_form(
            &client,
            &format!("{api}/login"),
            &[("token", "console-token-1234"), ("next", elsewhere)],
            None,
        )
        .await;
        assert_eq!(location, "/", "{elsewhere:?}");
    }
    // A form posted once the session is gone (a restart ends sessions) is taken to the
    // sign-in, back to the page it was on — not answered with bare text.
    let stale = bare
        .post(format!("{api}/flows/order-sms/enabled"))
        .header("referer", format!("{api}/flows/order-sms"))
        .form(&[("on", "false"), ("csrf", "x")])
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(stale.status().as_u16(), 303);
    assert_eq!(
        stale
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/login?next=%2Fflows%2Forder-sms")
    );
    let live = bare
        .get(format!("{api}/live/flows"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(live.status().as_u16(), 401);
    assert_eq!(
        live.headers()
            .get("hx-redirect")
            .and_then(|v| v.to_str().ok()),
        Some("/login")
    );
    // Wrong tokens by rote: past ten a minute, every sign-in waits (the right token too).
    for _ in 0..10 {
        post_form(
            &client,
            &format!("{api}/login"),
            &[("token", "guess"), ("next", "/")],
            None,
        )
        .await;
    }
    let (status, _) = post_form(
        &client,
        &format!("{api}/login"),
        &[("token", "console-token-1234"), ("next", "/")],
        None,
    )
    .await;
    assert_eq!(status, 429);
}

async fn first_status(client: &reqwest::Client, url: &str) -> u16 {
    client
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn runs_made_before_the_daemon_started_are_found_once_it_runs() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    // The daemon indexes what it finds in the background; a search finishes it first.
    let (_, found) = get(
        &browser(),
        &format!("{api}/search?q=%2B86%20138%200013%208000"),
    )
    .await;
    assert_eq!(found.matches("data-test=\"hit\"").count(), 1, "{found}");
    assert!(found.contains("A-3"));
}

#[tokio::test]
async fn refusals_are_pages_for_people_and_json_for_the_api() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let client = browser();

    // A page that is not there: a page saying so; under /api, JSON.
    let missing = client
        .get(format!("{api}/no/such/page"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(missing.status().as_u16(), 404);
    let kind = missing
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(missing
        .text()
        .await
        .unwrap_or_default()
        .contains("Not found"));
    let (status, body) = get(&client, &format!("{api}/api/no/such")).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no such route")),
        "{body}"
    );

    // A query the framework cannot read: a page, not plain text.
    let bad = client
        .get(format!("{api}/flows/order-sms?before=yesterday"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(bad.status().as_u16(), 400);
    let kind = bad
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(kind.starts_with("text/html"), "{kind}");
    let page = bad.text().await.unwrap_or_default();
    assert!(
        page.contains("Refused") && page.contains("before"),
        "{page}"
    );

    // Every page has an icon of its own; the toggle returns to the page it was on, its
    // filter kept.
    let (_, home) = get(&client, &format!("{api}/?q=order")).await;
    assert!(home.contains("rel=\"icon\""));
    let toggled = client
        .post(format!("{api}/flows/order-sms/enabled"))
        .header("referer", format!("{api}/?q=order"))
        .form(&[("enabled", "false"), ("csrf", &csrf_of(&home))])
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(toggled.status().as_u16(), 303);
    assert_eq!(
        toggled
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/?q=order")
    );
}

#[tokio::test]
async fn an_edit_is_saved_only_when_valid_and_never_over_a_change_on_disk() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let client = browser();
    let file = dir.path().join("flows/order-sms.yaml");
    let original = std::fs::read_to_string(&file).expect("the test reads the file");
    let (status, page) = get(&client, &format!("{api}/flows/order-sms/edit")).await;
    assert_eq!(status, 200);
    let version = page
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    assert!(!version.is_empty(), "{page}");
    let csrf = csrf_of(&page);
    let save = |text: String, version: String| {
        let (client, csrf, url) = (
            client.clone(),
            csrf.clone(),
            format!("{api}/flows/order-sms/edit"),
        );
        async move {
            let response = client
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("text", text.as_str()),
                    ("version", version.as_str()),
                ])
                .send()
                .await
                .expect("the call is answered");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };

    // The check answers each problem at its line, before anything is saved.
    let broken = original.replace("connector: 8x8", "connector: 8x9");
    let checked = client
        .post(format!("{api}/flows/order-sms/check"))
        .form(&[("csrf", csrf.as_str()), ("text", broken.as_str())])
        .send()
        .await
        .expect("the call is answered")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        checked.contains("unknown receiver connector") && checked.contains("data-line="),
        "{checked}"
    );

    // Invalid: refused with the problems, the file untouched.
    let (status, refused) = save(broken, version.clone()).await;
    assert_eq!(status, 422);
    assert!(refused.contains("Nothing was written"), "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap_or_default(), original);

    // Changed on disk since the editor read it: refused, the change on disk kept.
    let on_disk = original.replace("every: 15m", "every: 30m");
    std::fs::write(&file, &on_disk).expect("the test writes its file");
    let (status, refused) = save(original.replace("every: 15m", "every: 20m"), version).await;
    assert_eq!(status, 409);
    assert!(refused.contains("changed on disk"), "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap_or_default(), on_disk);

    // From the file as it is now: saved, and the daemon runs it.
    let (_, page) = get(&client, &format!("{api}/flows/order-sms/edit")).await;
    let version = page
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    let wanted = on_disk.replace("every: 30m", "every: 45m");
    let response = client
        .post(format!("{api}/flows/order-sms/edit"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("text", wanted.as_str()),
            ("version", version.as_str()),
        ])
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(std::fs::read_to_string(&file).unwrap_or_default(), wanted);
    let flows: Value = reqwest::get(format!("{api}/api/flows"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .unwrap_or(Value::Null);
    assert!(
        flows["flows"][0]["schedule"]
            .as_str()
            .is_some_and(|s| s.contains("45m")),
        "{flows}"
    );
}

#[tokio::test]
async fn a_hung_service_holds_up_its_own_account_row_only() {
    // 8x8 answers the account check only after 20 s (the check gives up at 15).
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_delay(std::time::Duration::from_secs(20)))
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let page = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        get(&browser(), &format!("{api}/accounts")),
    )
    .await;
    let (status, page) = page.expect("the page does not wait for the service");
    assert_eq!(status, 200);
    assert!(
        page.contains("checking…") && page.contains("/accounts/shop-8x8/status"),
        "{page}"
    );
}

/// The flows page's "Failed 24 h" cell for `flow`.
async fn failed_24h(client: &reqwest::Client, api: &str, flow: &str) -> String {
    let (_, page) = get(client, &format!("{api}/")).await;
    page.split(&format!("data-flow=\"{flow}\""))
        .nth(1)
        .and_then(|row| row.split("data-label=\"Failed 24 h\">").nth(1))
        .and_then(|cell| cell.split('<').next())
        .unwrap_or_else(|| panic!("no Failed 24 h cell for {flow}: {page}"))
        .to_string()
}

#[tokio::test]
async fn failed_24h_counts_each_failing_record_once_however_often_it_failed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_partial_json(json!({"destination": "+12025550002"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 1003, "message": "Invalid destination"
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .and(body_partial_json(json!({"destination": "+12025550003"})))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGES))
        .respond_with(queued)
        .mount(&server)
        .await;
    let dir = Dir::new(&server.uri());
    dir.write(
        "flows/orders.csv",
        "order_id,name,phone\nA-1,Ok,+12025550001\nA-2,Refused,+12025550002\nA-3,Busy,+12025550003\n",
    );
    dir.write(
        "flows/order-sms.yaml",
        &format!("{FLOW}delivery:\n  attempts: 1\n"),
    );
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let client = browser();
    let http = reqwest::Client::new();
    // Three runs (A-2 refused once and remembered, A-3 busy each time) and a replay of
    // the first run's failures (both failing again): six failures, two records failing.
    for ask in ["run", "run", "run", "replay?run=1"] {
        let answer = http
            .post(format!("{api}/api/flows/order-sms/{ask}"))
            .send()
            .await
            .expect("the call is answered");
        let status = answer.status();
        // A run with failures answers 422, with its report.
        assert!(
            status.is_success() || status == 422,
            "{ask}: {status} {}",
            answer.text().await.unwrap_or_default()
        );
        last_run_ended(&api, "order-sms").await;
    }
    let runs: Value = reqwest::get(format!("{api}/api/flows/order-sms/runs"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .unwrap_or(Value::Null);
    let failed: Vec<u64> = runs["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["counts"]["failed"].as_u64())
        .collect();
    assert_eq!(
        failed.iter().sum::<u64>(),
        6,
        "failures run by run: {failed:?}"
    );
    assert_eq!(failed_24h(&client, &api, "order-sms").await, "2");
}

#[tokio::test]
async fn a_new_flows_sample_is_read_from_under_the_flows_directory_only() {
    let server = mock_8x8().await;
    let dir = shop(&server);
    let daemon = spawn_daemon(&dir);
    let api = api_of(&dir, &daemon).await;
    let client = browser();
    let (_, page) = get(&client, &format!("{api}/new")).await;
    let csrf = csrf_of(&page);
    let ask = |path: &'static str, source: &'static str| {
        let (client, csrf, url) = (client.clone(), csrf.clone(), format!("{api}/new"));
        async move {
            let answer = client
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("flow", "x"),
                    ("source", source),
                    ("receiver", "8x8/send_sms"),
                    ("path", path),
                    ("step", "columns"),
                ])
                .send()
                .await
                .expect("the call is answered");
            (
                answer.status().as_u16(),
                answer.text().await.unwrap_or_default(),
            )
        }
    };
    let (status, page) = ask("orders.csv", "csv").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-test=\"mapping\"") && page.contains(">phone</option>"));
    for outside in ["../accounts.yaml", "/etc/passwd", "flows/../../x.csv"] {
        let (status, page) = ask(outside, "csv").await;
        assert_eq!(status, 422, "{outside}");
        assert!(
            page.contains("is not a file under the flows directory"),
            "{page}"
        );
    }
    let (status, page) = ask("orders.csv", "cinnox").await;
    assert_eq!(status, 422);
    assert!(page.contains("reads no file"), "{page}");
    assert!(
        !dir.path().join("flows/x.yaml").exists(),
        "reading a sample writes nothing"
    );
}
