//! The bad-input corpus: well over a hundred hostile inputs against the real binary —
//! flow files, accounts, rows, service answers, webhook bodies and command lines. For
//! each: a clear error that says what and where, no panic, and no harm to the one good
//! flow that shares the directory, the daemon and the stand-in with them.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::*;

/// The good flow every case shares its directory with.
const GOOD: &str = "source: {connector: csv, path: good.csv, key: id, backlog: send}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"\n";

/// A flow around a map, for template cases.
fn with_text(text: &str) -> String {
    format!(
        "source: {{connector: csv, path: good.csv, key: id}}\nreceiver: {{connector: 8x8, action: send_sms, account: shop-8x8}}\nmap:\n  destination: \"{{{{phone}}}}\"\n  text: '{}'\n",
        text.replace('\'', "''")
    )
}

/// A flow with an extra top-level section (schedule, delivery, …) added.
fn with(extra: &str) -> String {
    format!("{GOOD}{extra}")
}

/// A flow whose receiver line is replaced.
fn receiver(line: &str) -> String {
    GOOD.replace(
        "receiver: {connector: 8x8, action: send_sms, account: shop-8x8}",
        line,
    )
}

/// A flow whose source line is replaced.
fn source(line: &str) -> String {
    GOOD.replace(
        "source: {connector: csv, path: good.csv, key: id, backlog: send}",
        line,
    )
}

/// Flow files that `validate` must refuse: (file stem, content, what the error says).
fn flow_cases() -> Vec<(String, String, &'static str)> {
    let deep_yaml: String = (0..120)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .collect();
    let deep_list: String = format!("map: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, String, &str)> = vec![
        // templates
        ("t-recursive-partial", with_text("{{#*inline \"x\"}}a{{> x}}{{/inline}}{{> x}}"), "has partial `x` calling itself"),
        ("t-mutual-partials", with_text("{{#*inline \"a\"}}{{> b}}{{/inline}}{{#*inline \"b\"}}{{> a}}{{/inline}}{{> a}}"), "calling itself (a → b → a)"),
        ("t-nested-ifs", with_text(&format!("{}x{}", "{{#if name}}".repeat(2000), "{{/if}}".repeat(2000))), "nests more than 32 levels deep"),
        ("t-nested-each", with_text(&format!("{}x{}", "{{#each name}}".repeat(40), "{{/each}}".repeat(40))), "nests more than 32 levels deep"),
        ("t-deep-parens", with_text(&format!("{{{{upper {}name{}}}}}", "(trim ".repeat(3000), ")".repeat(3000))), "nests more than 32 levels deep"),
        ("t-unclosed-parens", with_text(&format!("{{{{upper {}", "(".repeat(20000))), "nests more than 32 levels deep"),
        ("t-deep-literal", with_text(&format!("{{{{default x {}}}}}", "[".repeat(20000))), "nests more than 32 levels deep"),
        ("t-partial-chain", with_text(&((0..40).map(|i| format!("{{{{#*inline \"p{i}\"}}}}{{{{#if name}}}}{{{{> p{}}}}}{{{{/if}}}}{{{{/inline}}}}", i + 1)).collect::<String>() + "{{#*inline \"p40\"}}e{{/inline}}{{> p0}}")), "through its partials"),
        ("t-too-long", with_text(&"x".repeat(70_000)), "bytes long; a template may have at most 65536"),
        ("t-unclosed-tag", with_text("Hi {{name"), "does not parse"),
        ("t-unclosed-block", with_text("{{#if name}}Hi"), "does not parse"),
        ("t-mismatched-block", with_text("{{#if name}}Hi{{/each}}"), "does not parse"),
        ("t-unknown-helper", with_text("{{uper name}}"), "calls unknown helper `uper`"),
        ("t-unknown-block-helper", with_text("{{#repeat name 3}}x{{/repeat}}"), "calls unknown helper `repeat`"),
        ("t-unknown-subexpr-helper", with_text("{{upper (shout name)}}"), "calls unknown helper `shout`"),
        ("t-unknown-partial", with_text("{{> footer}}"), "uses partial `footer`, which the template does not define"),
        ("t-dynamic-partial", with_text("{{> (lookup this \"p\")}}"), "chooses a partial at run time"),
        ("t-unknown-decorator", with_text("{{*log \"x\"}}"), "uses unknown decorator `*log`"),
        ("t-partial-twice", with_text("{{#*inline \"a\"}}1{{/inline}}{{#*inline \"a\"}}2{{/inline}}"), "defines partial `a` twice"),
        ("t-unknown-field", with_text("Hi {{nmae}}"), "uses unknown field `nmae`"),
        ("t-lookup-query-recursive", with("lookup: {connector: cinnox, account: cx, action: get_contact, query: '{{#*inline \"q\"}}{{> q}}{{/inline}}{{> q}}'}\n"), "the template of `lookup.query` has partial `q` calling itself"),
        ("t-lookup-query-unknown-helper", with("lookup: {connector: cinnox, account: cx, action: get_contact, query: '{{uper name}}'}\n"), "the template of `lookup.query` calls unknown helper `uper`"),
        // YAML
        ("y-deep-indent", deep_yaml, "the YAML nests 65 levels deep here"),
        ("y-deep-flow", deep_list, "recursion limit exceeded"),
        ("y-huge", format!("description: \"{}\"\n", "x".repeat(1_200_000)), "larger than 1024 KiB"),
        ("y-empty", String::new(), "the file is empty"),
        ("y-list", "- a\n- b\n".into(), "the top level must be a mapping"),
        ("y-scalar", "just text\n".into(), "the top level must be a mapping"),
        ("y-tab", "source:\n\t connector: csv\n".into(), "invalid YAML"),
        ("y-duplicate-key", with("map:\n  text: again\n"), "duplicate key `map`"),
        ("y-anchor", "source: &a {connector: csv}\nreceiver: *a\n".into(), "anchors and aliases are not supported"),
        ("y-billion-laughs", "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n".into(), "anchors and aliases are not supported"),
        ("y-tag", "source: !!map {connector: csv}\n".into(), "tags (`!tag`) are not supported"),
        ("y-unclosed-quote", "source: \"csv\nreceiver: x\n".into(), "invalid YAML"),
        ("y-huge-integer", with("delivery: {concurrency: 99999999999999999999999}\n"), "delivery"),
        ("y-bad-utf8-escape", "description: \"\\uD800\"\n".into(), "invalid YAML"),
        // the envelope
        ("e-unknown-key", with("schedual: {every: 15m}\n"), "unknown key `schedual`"),
        ("e-enabled-maybe", with("enabled: maybe\n"), "expected `true` or `false`"),
        ("e-bad-name", format!("name: \"../../etc\"\n{GOOD}"), "is not a usable flow name"),
        ("e-long-name", format!("name: {}\n{GOOD}", "n".repeat(300)), "is not a usable flow name"),
        ("e-timezone", with("timezone: Mars/Olympus\n"), "unknown timezone `Mars/Olympus`"),
        ("e-map-list", GOOD.replace("map:\n  destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"\n", "map: [a, b]\n"), "`map` must be a mapping"),
        ("e-no-source", GOOD.replace("source: {connector: csv, path: good.csv, key: id, backlog: send}\n", ""), "missing `source:`"),
        ("e-no-receiver", receiver(""), "missing `receiver:`"),
        // schedules
        ("s-every-forever", with("schedule: {every: 300000y}\n"), "`every: 300000y` is longer than ten years"),
        ("s-every-overflow", with("schedule: {every: 99999999999999999999s}\n"), "is not a duration"),
        ("s-every-short", with("schedule: {every: 10s}\n"), "is shorter than one minute"),
        ("s-every-words", with("schedule: {every: often}\n"), "`often` is not a duration"),
        ("s-cron-never", with("schedule: {cron: \"0 0 30 2 *\"}\n"), "never fires"),
        ("s-cron-fields", with("schedule: {cron: \"0 9 *\"}\n"), "is not a cron expression"),
        ("s-cron-hour", with("schedule: {cron: \"0 25 * * *\"}\n"), "is not a cron expression"),
        ("s-at-25", with("schedule: {at: [\"25:00\"]}\n"), "`25:00` is not a time of day"),
        ("s-at-mapping", with("schedule: {at: {x: 1}}\n"), "`at` must be a time or a list of times"),
        ("s-at-empty", with("schedule: {at: []}\n"), "`at` lists no times"),
        ("s-two-rules", with("schedule: {every: 15m, at: [\"09:00\"]}\n"), "has more than one rule"),
        ("s-no-rule", with("schedule: {catch_up: none}\n"), "`schedule` has no rule"),
        ("s-after-self", with("schedule: {after: s-after-self}\n"), "runs after itself"),
        ("s-after-unknown", with("schedule: {after: nowhere}\n"), "`after` names unknown flow `nowhere`"),
        ("s-cycle-a", with("schedule: {after: s-cycle-b}\n"), "`after` forms a cycle"),
        ("s-cycle-b", with("schedule: {after: s-cycle-a}\n"), "`after` forms a cycle"),
        // delivery
        ("d-concurrency-0", with("delivery: {concurrency: 0}\n"), "`delivery.concurrency` is 0; it must be between 1 and 1024"),
        ("d-concurrency-huge", with("delivery: {concurrency: 100000}\n"), "`delivery.concurrency` is 100000"),
        ("d-attempts-0", with("delivery: {attempts: 0}\n"), "`delivery.attempts` is 0"),
        ("d-timeout-0", with("delivery: {timeout: 0s}\n"), "`delivery.timeout` is 0s"),
        ("d-timeout-forever", with("delivery: {timeout: 300000y}\n"), "`delivery.timeout` is"),
        ("d-max-time-huge", with("delivery: {max_time: 1000d}\n"), "`delivery.max_time` is 1000d; it must be between 1ms and 7d"),
        ("d-backoff-backwards", with("delivery: {backoff: 1m, max_backoff: 1s}\n"), "`delivery.max_backoff` (1s) is shorter than `delivery.backoff` (1m)"),
        ("d-unknown", with("delivery: {retries: 3}\n"), "unknown key `retries`"),
        // filters
        ("f-unknown-op", with("filter: {field: name, eqals: x}\n"), "unknown filter operator `eqals`"),
        ("f-bad-regex", with("filter: {field: name, matches: \"[a-\"}\n"), "is not a regular expression"),
        ("f-two-ops", with("filter: {field: name, equals: a, contains: b}\n"), "has 2 operators; it takes one"),
        ("f-no-field", with("filter: {all: [{equals: a}]}\n"), "names a `field`"),
        ("f-gt-text", with("filter: {field: name, gt: lots}\n"), "`gt` compares numbers or dates"),
        ("f-filtered-mode", with("filtered: forget\n"), "unknown value `forget`"),
        ("p-after-0", with("auto_pause: {after: 0}\n"), "`auto_pause.after` is 0; it must be between 1 and 1000"),
        ("p-word", with("auto_pause: sometimes\n"), "`auto_pause` is `off` or `{after: 10, grace: 24h}`, not `sometimes`"),
        ("p-grace", with("auto_pause: {grace: soon}\n"), "soon"),
        ("alert-no-to", with("alerts: {on: [paused]}\n"), "missing field `to`"),
        ("alert-unknown-condition", with("alerts: {to: x, on: [exploded]}\n"), "exploded"),
        ("alert-every-1s", with("alerts: {to: x, every: 1s}\n"), "`alerts.every` is under a minute"),
        ("alert-unknown-flow", with("alerts: {to: nobody}\n"), "`alerts.to` names unknown flow `nobody`"),
        ("h-keep-runs-0", with("history: {keep_runs: 0}\n"), "`history.keep_runs` is 0"),
        ("prio-urgent", with("priority: urgent\n"), "unknown value `urgent`"),
        // receivers
        ("r-unknown-connector", receiver("receiver: {connector: 8x9, action: send_sms, account: shop-8x8}"), "unknown receiver connector `8x9`"),
        ("r-source-as-receiver", receiver("receiver: {connector: csv, action: send_sms, account: shop-8x8}"), "`csv` is a source, not a receiver"),
        ("r-unknown-action", receiver("receiver: {connector: 8x8, action: send_mms, account: shop-8x8}"), "`8x8` has no action `send_mms`"),
        ("r-no-account", receiver("receiver: {connector: 8x8, action: send_sms}"), "missing `account` in `receiver`"),
        ("r-unknown-account", receiver("receiver: {connector: 8x8, action: send_sms, account: shop-8x9}"), "unknown account `shop-8x9`"),
        ("r-wrong-account", receiver("receiver: {connector: textrequest, action: send_message, account: shop-8x8, dashboard_id: 1}").replace("destination: \"{{phone}}\"\n  text:", "phone_number: \"{{phone}}\"\n  body:"), "account `shop-8x8` is a `8x8` account, but this receiver is `textrequest`"),
        ("r-unknown-field", with("").replace("text: \"Hi {{name}}\"", "txt: \"Hi {{name}}\""), "has no field `txt`"),
        ("r-batch-0", receiver("receiver: {connector: 8x8, action: send_sms, account: shop-8x8, batch: 0}"), "`batch` must be between 1 and 10000"),
        ("r-batch-huge", receiver("receiver: {connector: 8x8, action: send_sms, account: shop-8x8, batch: 20000}"), "`batch` must be between 1 and 10000"),
        ("r-bulk-0", receiver("receiver: {connector: textrequest, action: upsert_contact, account: shop-8x8, dashboard_id: 1, batch: 0}"), "`batch` must be between 1 and 1000"),
        ("r-bulk-huge", receiver("receiver: {connector: textrequest, action: upsert_contact, account: shop-8x8, dashboard_id: 1, batch: 5000}"), "`batch` must be between 1 and 1000"),
        ("r-max-parts-0", receiver("receiver: {connector: 8x8, action: send_sms, account: shop-8x8, max_parts: 0}"), "`max_parts` is 0; it must be between 1 and 255"),
        ("r-max-parts-huge", receiver("receiver: {connector: 8x8, action: send_sms, account: shop-8x8, max_parts: 1000}"), "`max_parts` is 1000"),
        ("r-unknown-option", receiver("receiver: {connector: 8x8, action: send_sms, account: shop-8x8, speed: fast}"), "unknown key `speed`"),
        // sources
        ("src-unknown", source("source: {connector: ftp, path: x}"), "unknown source connector `ftp`"),
        ("src-receiver-as-source", source("source: {connector: 8x8}"), "`8x8` is a receiver, not a source"),
        ("src-list", source("source: [csv]"), "`source` must be a mapping"),
        ("src-delimiter", source("source: {connector: csv, path: good.csv, delimiter: ab}"), "`ab` is not a one-character delimiter"),
        ("src-empty-key", source("source: {connector: csv, path: good.csv, key: \"\"}"), "`key` names an empty column"),
        ("src-empty-path", source("source: {connector: csv, path: \"\"}"), "`path` is empty"),
        ("src-missing-file", source("source: {connector: csv, path: nope.csv}"), "cannot open"),
        ("src-missing-key-column", source("source: {connector: csv, path: good.csv, key: order_id}"), "key column `order_id` not in the header"),
        ("src-duplicate-header", source("source: {connector: csv, path: twice.csv, key: id}"), "column `name` appears twice in the header"),
        ("src-webhook-body-0", source("source: {connector: webhook, max_body: 0}"), "`max_body` must be between 1 and 67108864"),
        ("src-webhook-body-huge", source("source: {connector: webhook, max_body: 1000000000}"), "`max_body` must be between 1 and 67108864"),
        ("src-cinnox-event", source("source: {connector: cinnox, account: cx, events: [contact.exploded]}"), "unknown CINNOX event `contact.exploded`"),
        ("src-cinnox-public-url", source("source: {connector: cinnox, account: cx, events: [enquiry.missed], public_url: \"ftp://x\"}"), "`public_url` `ftp://x` must start with https://"),
        ("src-textrequest-events", source("source: {connector: textrequest, account: tr, dashboard_id: 1, events: []}"), "`events` lists no events"),
        ("src-xlsx-wide", source("source: {connector: xlsx, path: wide.xlsx, key: id}"), "a flow reads at most 1000 (`max_columns`)"),
        ("src-xlsx-rows-0", source("source: {connector: xlsx, path: wide.xlsx, max_rows: 0}"), "`max_rows` must be between 1 and 1048576"),
        ("src-ods-bomb", source("source: {connector: xlsx, path: bomb.ods}"), "spans columns A to XFD (row 1), 16384 columns; a flow reads at most 1000 (`max_columns`)"),
        ("src-aranda-no-filters", source("source: {connector: aranda, account: asms, filters: []}"), "`filters` is empty: ASMS searches need at least one"),
        ("src-aranda-field", source("source: {connector: aranda, account: asms, filters: [{field: Nope, value: x}]}"), "`Nope`"),
        ("r-sheets-no-id", receiver("receiver: {connector: google_sheets, action: append_row, account: gs}").replace("destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"", "values: [\"{{name}}\"]"), "missing field `spreadsheet_id`"),
        ("r-payment-amount-text", receiver("receiver: {connector: textrequest, action: create_payment, account: tr, dashboard_id: 1}").replace("destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"", "customer_phone: \"{{phone}}\"\n  amount_requested: lots"), "`lots` is not a number"),
        // look-ups
        ("l-aranda-search-no-field", with("lookup: {connector: aranda, account: asms, action: search_cases, query: x}\n"), "missing field `field`"),
        ("l-as-column", with("lookup: {connector: textrequest, account: tr, action: get_contact, dashboard_id: 1, query: x, as: name}\n"), "which is also a column of the source"),
        ("l-unknown-connector", with("lookup: {connector: nowhere, account: cx, action: get_contact, query: x}\n"), "`nowhere` has no look-ups"),
        ("l-unknown-action", with("lookup: {connector: cinnox, account: cx, action: get_everything, query: x}\n"), "unknown `cinnox` look-up `get_everything`"),
        // accounts (each flow uses one broken account)
        ("a-unclosed-var", receiver("receiver: {connector: 8x8, action: send_sms, account: unclosed}"), "`${SB_CORPUS_X` has no closing `}`"),
        ("a-unset-var", receiver("receiver: {connector: 8x8, action: send_sms, account: unset}"), "environment variable `SB_CORPUS_UNSET` is not set"),
        ("a-line-break", receiver("receiver: {connector: 8x8, action: send_sms, account: linebreak}"), "`api_key` contains a line break"),
        ("a-bad-subaccount", receiver("receiver: {connector: 8x8, action: send_sms, account: badsub}"), "is not an 8x8 subaccount ID"),
        ("a-bad-url", receiver("receiver: {connector: 8x8, action: send_sms, account: badurl}"), "`base_url` `ftp://x` is not usable"),
        ("a-rate-zero", receiver("receiver: {connector: 8x8, action: send_sms, account: ratezero}"), "`0/s` is not a rate limit"),
        ("a-rate-absurd", receiver("receiver: {connector: 8x8, action: send_sms, account: rateabsurd}"), "is not a rate limit"),
        ("a-unknown-key", receiver("receiver: {connector: 8x8, action: send_sms, account: unknownkey}"), "unknown key `apikey`"),
        ("a-header-line-break", receiver("receiver: {connector: http, action: request, account: httpbreak}").replace("destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"", "url: /x"), "`headers` contains a line break"),
        ("a-short-webhook-secret", source("source: {connector: webhook, account: shortsecret}"), "needs at least 16 characters"),
        ("a-cinox-typo", receiver("receiver: {connector: cinnox, action: send_im_room, account: cinox}").replace("destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"", "roomID: r\n  text: hi"), "did you mean `cinnox`?"),
    ];
    cases
        .into_iter()
        .map(|(name, text, expect)| (name.to_string(), text, expect))
        .collect()
}

const ACCOUNTS: &str = "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${EIGHTX8_API_KEY}\n  base_url: BASE\n\
cx:\n  connector: cinnox\n  app_id: app\n  app_token: cinnox-token-123456\n  base_url: BASE\n\
tr:\n  connector: textrequest\n  api_key: tr-key-1234567\n  base_url: BASE/api/v3\n\
asms:\n  connector: aranda\n  api_key: asms-token-1234\n  instance_url: https://help.example.com/ASMS\n  base_url: BASE/asms\n\
gs:\n  connector: google_sheets\n  api_key: g-key-1234567\n  base_url: BASE\n\
unclosed:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: k-${SB_CORPUS_X\n\
unset:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${SB_CORPUS_UNSET}\n\
linebreak:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: \"abc\\r\\nX-Evil: 1\"\n\
badsub:\n  connector: 8x8\n  subaccount_id: \"a b\"\n  api_key: k-123456\n\
badurl:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: k-123456\n  base_url: ftp://x\n\
ratezero:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: k-123456\n  rate_limit: 0/s\n\
rateabsurd:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: k-123456\n  rate_limit: 1000000000/1ns\n\
unknownkey:\n  connector: 8x8\n  subaccount_id: shop_main\n  apikey: k-123456\n\
httpbreak:\n  connector: http\n  base_url: BASE\n  headers:\n    Authorization: \"Bearer x\\ny\"\n\
shortsecret:\n  connector: webhook\n  secret: short\n\
cinox:\n  connector: cinox\n  app_id: a\n";

/// The corpus directory: the good flow, its rows, every hostile flow and their files.
fn corpus_dir(base: &str) -> Dir {
    let dir = Dir::new(base);
    std::fs::remove_file(dir.path().join("flows/order-sms.yaml"))
        .expect("the test removes the file");
    dir.write("flows/accounts.yaml", &ACCOUNTS.replace("BASE", base));
    dir.private("flows/accounts.yaml");
    dir.write("flows/good.yaml", GOOD);
    dir.write(
        "flows/good.csv",
        "id,name,phone\nG-1,Olena,+380501234567\nG-2,Ivan,+380671112233\n",
    );
    dir.write("flows/twice.csv", "id,name,name\n1,a,b\n");
    // A header that spans A to XFD.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let _ = sheet.write_string(0, 0, "id");
    let _ = sheet.write_string(0, 16_383, "far");
    book.save(dir.path().join("flows/wide.xlsx"))
        .expect("it is saved");
    write_ods_bomb(&dir.path().join("flows/bomb.ods"));
    for (name, text, _) in flow_cases() {
        dir.write(&format!("flows/{name}.yaml"), &text);
    }
    // Not flows at all: a directory named like one, an editor's swap file.
    let _ = std::fs::create_dir_all(dir.path().join("flows/not-a-file.yaml"));
    dir.write("flows/.good.yaml.swp", "\u{0}\u{1}binary");
    dir
}

fn write_ods_bomb(path: &Path) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("the test creates its file");
    let mut zip = zip::ZipWriter::new(file);
    let _ = zip.start_file("content.xml", zip::write::SimpleFileOptions::default());
    let _ = zip.write_all(b"<office:document-content xmlns:office=\"o\" xmlns:table=\"t\" xmlns:text=\"x\"><office:body><office:spreadsheet><table:table table:name=\"S\"><table:table-row table:number-rows-repeated=\"1048576\"><table:table-cell table:number-columns-repeated=\"16384\" office:value-type=\"string\"><text:p>x</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>");
    let _ = zip.finish();
}

fn assert_no_panic(run: &Run, what: &str) {
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("overflowed its stack"),
        "{what} panicked: {run:?}"
    );
    assert!(
        [0, 1, 2, 130].contains(&run.code),
        "{what} ended with exit {} (a crash?): {run:?}",
        run.code
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_flow_file_gets_a_clear_error_and_the_good_flow_is_unharmed() {
    let server = mock_8x8().await;
    let dir = corpus_dir(&server.uri());
    let cases = flow_cases();
    assert!(cases.len() >= 100, "{} flow-file cases", cases.len());

    let validate = dir.run(&["validate"]).await;
    assert_no_panic(&validate, "validate");
    assert_eq!(validate.code, 1, "{validate:?}");
    let out = format!("{}{}", validate.stdout, validate.stderr);
    let blocks: Vec<String> = out
        .split("\nflows/")
        .map(|block| format!("flows/{}", block.trim_start_matches("flows/")))
        .collect();
    for (name, _, expect) in &cases {
        let prefix = format!("flows/{name}.yaml:");
        // An account's own problem is reported where it is, in the accounts file; the
        // flow says it uses a broken account.
        let at = if name.starts_with("a-") {
            "flows/accounts.yaml:"
        } else {
            prefix.as_str()
        };
        let found = blocks
            .iter()
            .any(|block| block.starts_with(at) && block.contains(expect));
        assert!(found, "`{name}`: no `{at}…{expect}` in:\n{out}");
        assert!(
            blocks.iter().any(|block| block.starts_with(&prefix)),
            "`{name}` itself is reported invalid"
        );
    }
    let json = dir.run(&["validate", "--json"]).await.json();
    assert_eq!(
        json["valid"],
        json!(["good"]),
        "only the good flow is valid"
    );
    // Every diagnostic has a place.
    for problem in json["problems"].as_array().into_iter().flatten() {
        assert!(
            problem["line"].as_u64().unwrap_or(0) >= 1
                && problem["column"].as_u64().unwrap_or(0) >= 1,
            "{problem}"
        );
    }

    // `run` and `test` on a hostile flow say why and touch nothing.
    for name in [
        "t-recursive-partial",
        "t-nested-ifs",
        "y-deep-indent",
        "s-every-forever",
        "src-ods-bomb",
        "a-line-break",
    ] {
        for args in [vec!["run", name], vec!["test", name]] {
            let r = dir.run(&args).await;
            assert_no_panic(&r, &format!("{args:?}"));
            assert_eq!(r.code, 1, "{args:?}: {r:?}");
            assert!(
                r.stderr.contains(&format!("flow `{name}` is invalid")),
                "{args:?}: {r:?}"
            );
        }
    }
    let good = dir.run(&["run", "good"]).await;
    assert_eq!(good.code, 0, "{good:?}");
    assert!(good.stdout.contains("sent 2, failed 0"), "{good:?}");

    // The daemon loads the whole directory, keeps serving, and runs the good flow.
    let daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["daemon", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("EIGHTX8_API_KEY", API_KEY)
        .env_remove("SWITCHBOARD_TOKEN")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(
            std::fs::File::create(dir.path().join("daemon.log"))
                .expect("the test creates its file"),
        )
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let daemon = Child(daemon);
    let api = api_of(&dir, &daemon).await;
    let flows: Value = reqwest::get(format!("{api}/api/flows"))
        .await
        .expect("the GET is answered")
        .json()
        .await
        .unwrap_or_default();
    let listed = flows["flows"].as_array().cloned().unwrap_or_default();
    for (name, _, _) in &cases {
        let flow = listed.iter().find(|f| f["name"] == name.as_str());
        assert!(
            flow.is_some_and(|f| f["error"].is_array()),
            "`{name}` is listed with its error: {flow:?}"
        );
    }
    let metrics = reqwest::get(format!("{api}/metrics"))
        .await
        .expect("the GET is answered")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("switchboard_flow_problems{flow=\"t-recursive-partial\"} 1"),
        "{metrics}"
    );
    dir.append("flows/good.csv", "G-3,Anna,+447700900123\n");
    let forced: Value = reqwest::Client::new()
        .post(format!("{api}/api/flows/good/run"))
        .send()
        .await
        .expect("the call is answered")
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(forced["run"]["counts"]["sent"], 1, "{forced}");
    let health = reqwest::get(format!("{api}/healthz"))
        .await
        .expect("the GET is answered");
    assert_eq!(health.text().await.unwrap_or_default(), "ok");
}

/// Rows the receiver must refuse, each alone: (row, what its failure says).
const ROWS: [(&str, &str); 12] = [
    ("B-1,Bad Phone,12345", "is not a phone number 8x8 accepts"),
    ("B-2,Letters,+38050abc4567", "is not a phone number"),
    ("B-3,Leading zero,+0501234567", "is not a phone number"),
    ("B-4,,+380501234567", "`text`"),
    (",No key,+380501234567", "key column `id` is empty"),
    (
        "B-6,Too,many,fields",
        "the line has 4 fields but the header has 3",
    ),
    ("B-7,Short", "the line has 2 fields but the header has 3"),
    (
        "B-8,Tab\tin\tname,+380501234567\u{0}",
        "is not a phone number",
    ),
    ("B-9,Emoji 👋,+380 50 123 45 67", ""),
    ("B-10,Quote \"\"inside\"\",+380501234567", ""),
    ("B-11,HUGE,+380501234567", "billed SMS parts"),
    (
        "B-12,\"never closed,+380501234567",
        "a quoted field opened here is never closed",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rows_fail_alone_with_their_reason_and_the_rest_are_sent() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    let mut csv = String::from("id,name,phone\nOK-1,Olena,+380501234567\n");
    for (row, _) in ROWS {
        if row.starts_with("B-11") {
            csv.push_str(&format!(
                "B-11,{},+380501234567\n",
                "x".repeat(10 * 1024 * 1024)
            ));
        } else {
            csv.push_str(row);
            csv.push('\n');
        }
    }
    dir.write(
        "flows/orders.csv",
        &csv.replace("id,name,phone\n", "order_id,name,phone\n"),
    );
    dir.write(
        "flows/order-sms.yaml",
        "source: {connector: csv, path: orders.csv, key: order_id, backlog: send}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"{{name}}\"\n",
    );
    let run = dir.run(&["run", "order-sms", "--json"]).await;
    assert_no_panic(&run, "run");
    let report = run.json();
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    for (row, expect) in ROWS {
        if expect.is_empty() {
            continue;
        }
        let key = row.split(',').next().unwrap_or_default();
        let found = failures.iter().any(|f| {
            let reason = f["reason"].as_str().unwrap_or_default();
            (key.is_empty()
                || f["key"] == key
                || f["key"].as_str().unwrap_or_default().starts_with("line"))
                && reason.replace("order_id", "id").contains(expect)
        });
        assert!(
            found,
            "row `{key}`: no failure saying `{expect}` in {failures:#?}"
        );
    }
    let sent: Vec<String> = client_ids(&bodies(&server).await);
    assert!(sent.contains(&"order-sms:OK-1".to_string()), "{sent:?}");
    assert!(sent.contains(&"order-sms:B-9".to_string()), "{sent:?}");
    assert!(sent.contains(&"order-sms:B-10".to_string()), "{sent:?}");
    assert!(
        !sent.iter().any(|s| s.contains("B-11")),
        "the 10 MB text never left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_service_answers_are_recorded_never_crash_and_never_resend_a_sent_row() {
    // Each row's phone chooses how the stand-in answers.
    let server = MockServer::start().await;
    let answers: Vec<(&str, ResponseTemplate, &str)> = vec![
        ("+380500000001", ResponseTemplate::new(400).set_body_string("<html><body>Bad gateway page</body></html>"), "HTTP 400"),
        ("+380500000002", ResponseTemplate::new(500).set_body_string("x".repeat(2_000_000)), "HTTP 500"),
        ("+380500000003", ResponseTemplate::new(429).insert_header("retry-after", "99999999999999"), "HTTP 429"),
        ("+380500000005", ResponseTemplate::new(200).set_body_string("not json at all"), ""),
        ("+380500000006", ResponseTemplate::new(200).set_body_json(json!({"umid": "u6", "status": {"code": "REJECTED", "description": "Invalid destination"}})), "REJECTED"),
        ("+380500000007", ResponseTemplate::new(200).set_delay(Duration::from_secs(5)), "timed out"),
        ("+380500000008", ResponseTemplate::new(404).set_body_json(json!({"code": [1, 2], "message": {"deep": true}})), "HTTP 404"),
        ("+380500000009", ResponseTemplate::new(503).insert_header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"), "HTTP 503"),
        ("+380500000010", ResponseTemplate::new(302).insert_header("location", "/api/v1/subaccounts/shop_main/messages"), ""),
        // Last: a refused key makes the run's later rows of the account fail fast.
        ("+380500000004", ResponseTemplate::new(401).set_body_json(json!({"code": 1001, "message": "Invalid API key"})), "Invalid API key"),
    ];
    for (phone, answer, _) in &answers {
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"destination": phone})))
            .respond_with(answer.clone())
            .mount(&server)
            .await;
    }
    let dir = Dir::new(&server.uri());
    let mut csv = String::from("order_id,name,phone\n");
    for (i, (phone, _, _)) in answers.iter().enumerate() {
        csv.push_str(&format!("H-{},n,{phone}\n", i + 1));
    }
    dir.write("flows/orders.csv", &csv);
    dir.write(
        "flows/order-sms.yaml",
        "source: {connector: csv, path: orders.csv, key: order_id, backlog: send}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Hi\"\ndelivery: {attempts: 2, backoff: 10ms, max_backoff: 50ms, timeout: 1s, max_time: 3s}\n",
    );
    let run = dir.run(&["run", "order-sms", "--json"]).await;
    assert_no_panic(&run, "run");
    let report = run.json();
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    for (i, (_, _, expect)) in answers.iter().enumerate() {
        if expect.is_empty() {
            continue;
        }
        let key = format!("H-{}", i + 1);
        let failure = failures.iter().find(|f| f["key"] == key.as_str());
        assert!(
            failure.is_some_and(|f| f["reason"].as_str().unwrap_or_default().contains(expect)),
            "{key}: expected `{expect}` in {failure:?}"
        );
        let reason = failure
            .and_then(|f| f["reason"].as_str())
            .unwrap_or_default();
        assert!(
            reason.len() < 2000,
            "{key}: a huge body is not copied into history"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_webhook_requests_get_a_4xx_and_the_daemon_keeps_serving() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.write(
        "flows/hook.yaml",
        "source: {connector: webhook, key: id, max_body: 100000}\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{phone}}\"\n  text: \"Hi {{name}}\"\n",
    );
    let daemon = Child(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "daemon",
                "--listen",
                "127.0.0.1:0",
                "--body-timeout",
                "1s",
                "--header-timeout",
                "1s",
            ])
            .current_dir(dir.path())
            .env("EIGHTX8_API_KEY", API_KEY)
            .env_remove("SWITCHBOARD_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts"),
    );
    let api = api_of(&dir, &daemon).await;
    let http = reqwest::Client::new();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("hook", b"{\"id\": ".to_vec(), 400, "not valid JSON"),
        ("hook", b"".to_vec(), 400, "not valid JSON"),
        ("hook", b"null".to_vec(), 400, "expected a JSON object"),
        ("hook", b"42".to_vec(), 400, "expected a JSON object"),
        ("hook", b"\"text\"".to_vec(), 400, "expected a JSON object"),
        ("hook", b"[]".to_vec(), 400, "holds no events"),
        (
            "hook",
            b"[1, 2]".to_vec(),
            400,
            "event 0 is not a JSON object",
        ),
        (
            "hook",
            b"{\"phone\": \"+380501234567\"}".to_vec(),
            400,
            "has no `id`",
        ),
        (
            "hook",
            b"{\"id\": {\"nested\": 1}}".to_vec(),
            400,
            "has no `id`",
        ),
        ("hook", b"{\"id\": \"\"}".to_vec(), 400, "has no `id`"),
        ("hook", deep.into_bytes(), 400, "not valid JSON"),
        ("hook", b"{\"id\": 1e999}".to_vec(), 400, "not valid JSON"),
        (
            "hook",
            b"{\"id\": \"x\xff\"}".to_vec(),
            400,
            "not valid JSON",
        ),
        (
            "hook",
            format!("{{\"id\": \"{}\"}}", "x".repeat(200_000)).into_bytes(),
            413,
            "at most 100000",
        ),
        ("nope", b"{}".to_vec(), 404, "no webhook flow named `nope`"),
        (
            "order-sms",
            b"{}".to_vec(),
            404,
            "no webhook flow named `order-sms`",
        ),
        ("..%2F..%2Fetc", b"{}".to_vec(), 404, "no webhook flow"),
    ];
    for (flow, body, status, expect) in cases {
        let response = http
            .post(format!("{api}/hooks/{flow}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the call is answered");
        assert_eq!(response.status().as_u16(), status, "{flow}: {expect}");
        let text = response.text().await.unwrap_or_default();
        assert!(
            text.contains(expect),
            "{flow}: expected `{expect}` in {text}"
        );
    }
    // A header block that never ends, and a GET: neither is a crash.
    let addr = api.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("it connects");
    let _ = stream
        .write_all(
            format!(
                "POST /hooks/hook HTTP/1.1\r\nx: {}\r\n",
                "y".repeat(100_000)
            )
            .as_bytes(),
        )
        .await;
    drop(stream);
    let get = http
        .get(format!("{api}/hooks/hook"))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(get.status().as_u16(), 405);
    // After it all, a good event is taken and sent.
    let ok = http
        .post(format!("{api}/hooks/hook"))
        .json(&json!({"id": "good-1", "phone": "+380501234567", "name": "Olena"}))
        .send()
        .await
        .expect("the call is answered");
    assert_eq!(ok.status().as_u16(), 200);
    for _ in 0..100 {
        if client_ids(&bodies(&server).await).contains(&"hook:good-1".to_string()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the good event was not sent after the hostile ones");
}

#[tokio::test]
async fn hostile_command_lines_get_usage_errors_never_panics() {
    let dir = Dir::new("http://127.0.0.1:9");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["next", "order-sms", "--count", "18446744073709551615"],
            "is not a count from 1 to 1000",
        ),
        (
            vec!["next", "order-sms", "--count", "1000000000000"],
            "is not a count from 1 to 1000",
        ),
        (
            vec!["next", "order-sms", "--count", "0"],
            "is not a count from 1 to 1000",
        ),
        (
            vec!["next", "order-sms", "--now", "12:08"],
            "is not an RFC 3339 time",
        ),
        (
            vec!["next", "order-sms", "--now", "9999999-01-01T00:00:00Z"],
            "is not an RFC 3339 time",
        ),
        (vec!["run", "no-such-flow"], "no flow named `no-such-flow`"),
        (vec!["run", "../../etc/passwd"], "no flow named"),
        (
            vec!["history", "order-sms", "--run", "18446744073709551615"],
            "no run",
        ),
        (
            vec!["history", "order-sms", "--limit", "18446744073709551615"],
            "",
        ),
        (
            vec!["test", "order-sms", "--limit", "18446744073709551615"],
            "",
        ),
        (vec!["daemon", "--listen", "0.0.0.0:0"], "needs a token"),
        (
            vec!["daemon", "--header-timeout", "0s"],
            "must be between 1ms and 1h",
        ),
        (vec!["daemon", "--max-connections", "0"], "0"),
        (
            vec!["run", "order-sms", "--flows", "/nonexistent/dir"],
            "cannot read the flows directory",
        ),
        (
            vec!["validate", "--flows", "flows/orders.csv"],
            "cannot read the flows directory",
        ),
    ];
    for (args, expect) in cases {
        let r = dir.run(&args).await;
        assert_no_panic(&r, &format!("{args:?}"));
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            all.contains(expect),
            "{args:?}: expected `{expect}` in {r:?}"
        );
    }
    // Output cut short by the reader is not a crash.
    let piped = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' next order-sms --count 1000 | head -1 >/dev/null; echo ${{PIPESTATUS:-0}}",
            env!("CARGO_BIN_EXE_switchboard")
        ))
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}
