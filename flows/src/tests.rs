//! Flow files and whole directories as a user meets them, parsed with the test
//! catalogue ([`crate::testkit`]): what this crate decides, whatever the connectors.
//! (Connector sections as users meet them are tested with the real catalogue, in
//! `connectors`.)

use std::collections::BTreeMap;
use std::path::Path;

use crate::testkit::TestCatalogue;
use crate::{LoadOptions, MapValue, Project};

fn load_project(options: &LoadOptions) -> Project {
    crate::load_project(options, &TestCatalogue)
}

const ACCOUNTS: &str = "shop-sms:\n  connector: sms\n  sender: shop_main\n  api_key: ${TEST_KEY}\n  base_url: http://127.0.0.1:9\n";

/// The README's first flow, over the test catalogue's source and receiver (same lines).
const ORDER_SMS: &str = r#"enabled: true
timezone: Europe/Kyiv
source:
  connector: rows
  path: orders.csv          # relative to the flow file
  key: order_id             # column(s) identifying a row
  backlog: send             # first run: send existing rows
receiver:
  connector: sms
  action: send
  account: shop-sms
map:
  destination: "{{phone}}"
  source: "MyShop"
  text: "Hi {{name}}, order {{order_id}} is confirmed ({{date}} {{time}})."
schedule:
  every: 15m
"#;

fn project(files: &[(&str, &str)]) -> Project {
    let dir = tempfile::tempdir().expect("a temporary directory");
    crate::testkit::load_files(dir.path(), files, &TestCatalogue)
}

fn problems_of(flow_text: &str) -> Vec<String> {
    project(&[("accounts.yaml", ACCOUNTS), ("order-sms.yaml", flow_text)])
        .diagnostics()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_name_is_the_file_stem_unless_given() {
    let named = ORDER_SMS.replace("enabled: true", "name: sms-orders\nenabled: true");
    let p = project(&[
        ("accounts.yaml", ACCOUNTS),
        ("a.yaml", ORDER_SMS),
        ("b.yml", &named),
    ]);
    assert_eq!(p.flows.keys().collect::<Vec<_>>(), ["a", "sms-orders"]);
}

#[test]
fn broken_yaml_is_reported_with_its_position() {
    let problems = problems_of("source:\n  connector: rows\n  path: \"orders.csv\n");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("order-sms.yaml:3:9: invalid YAML: while scanning a quoted scalar"),
        "{problems:#?}"
    );
    assert!(problems[0].contains("invalid YAML"), "{problems:#?}");
    let empty = problems_of("");
    assert!(empty[0].contains("the file is empty"), "{empty:#?}");
}

#[test]
fn a_missing_environment_variable_is_an_error_naming_it_never_an_empty_key() {
    let accounts = ACCOUNTS.replace("${TEST_KEY}", "${SWITCHBOARD_TEST_UNSET_VARIABLE}");
    let p = project(&[("accounts.yaml", &accounts), ("order-sms.yaml", ORDER_SMS)]);
    let problems: Vec<String> = p.diagnostics().iter().map(ToString::to_string).collect();
    assert!(
        problems.iter().any(|d| d.starts_with(
            "accounts.yaml:4:12: environment variable `SWITCHBOARD_TEST_UNSET_VARIABLE` is not set"
        )),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|d| d.contains("account `shop-sms` has errors")),
        "{problems:#?}"
    );
    assert!(p.flows.is_empty());
}

#[test]
fn every_problem_in_the_directory_is_reported_at_once() {
    let bad_tz = ORDER_SMS.replace("Europe/Kyiv", "Mars/Olympus");
    let bad_both = ORDER_SMS
        .replace("sms\n  action", "smz\n  action")
        .replace("every: 15m", "every: never");
    let p = project(&[
        ("accounts.yaml", ACCOUNTS),
        ("good.yaml", ORDER_SMS),
        ("one.yaml", &bad_tz),
        ("two.yaml", &bad_both),
    ]);
    let problems = p.diagnostics();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert_eq!(p.flows.keys().collect::<Vec<_>>(), ["good"]);
    assert_eq!(p.invalid.keys().collect::<Vec<_>>(), ["one", "two"]);
}

#[test]
fn after_chains_must_not_form_cycles() {
    let a = ORDER_SMS.replace("every: 15m", "after: b");
    let b = ORDER_SMS.replace("every: 15m", "after: {flow: a, on: [success, failure]}");
    let c = ORDER_SMS.replace("every: 15m", "after: a");
    let p = project(&[
        ("accounts.yaml", ACCOUNTS),
        ("a.yaml", &a),
        ("b.yaml", &b),
        ("c.yaml", &c),
    ]);
    let problems: Vec<String> = p.diagnostics().iter().map(ToString::to_string).collect();
    assert!(
        problems
            .iter()
            .any(|d| d.contains("`after` forms a cycle: a -> b -> a")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|d| d.contains("`after` forms a cycle: b -> a -> b")),
        "{problems:#?}"
    );
    assert!(
        p.flows.contains_key("c"),
        "c follows the cycle but is not in it"
    );
}

#[test]
fn yaml_literals_keep_their_type_and_quoted_text_is_a_template() {
    let flow = ORDER_SMS.replace("  source: \"MyShop\"", "  source: MyShop");
    let p = project(&[("accounts.yaml", ACCOUNTS), ("order-sms.yaml", &flow)]);
    let flow = &p.flows["order-sms"];
    assert_eq!(flow.map[1].value, MapValue::Template("MyShop".into()));
    let literal = crate::yaml::literal(
        &crate::yaml::load(
            Path::new("x.yaml"),
            "a: 42\nb: true\nc: \"42\"\nd: [1, x]\n",
        )
        .expect("it loads"),
    );
    assert_eq!(
        literal,
        serde_json::json!({"a": 42, "b": true, "c": "42", "d": [1, "x"]})
    );
}

#[cfg(unix)]
#[test]
fn an_accounts_file_others_can_read_is_a_warning_not_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let accounts = dir.path().join("accounts.yaml");
    // A key written out: what others could read. (One from `${VAR}` is not warned about.)
    let literal = ACCOUNTS.replace("${TEST_KEY}", "k-written-out");
    std::fs::write(&accounts, &literal).expect("the test writes its file");
    std::fs::write(dir.path().join("order-sms.yaml"), ORDER_SMS).expect("the test writes its file");
    let options = LoadOptions {
        flows_dir: dir.path().to_path_buf(),
        accounts_file: None,
        env: BTreeMap::from([("TEST_KEY".to_string(), "k-1".to_string())]),
        check_flows: false,
        unset_as: None,
        overlay: None,
    };
    std::fs::set_permissions(&accounts, std::fs::Permissions::from_mode(0o644))
        .expect("the test sets the mode");
    let open = load_project(&options);
    assert!(open.diagnostics().is_empty() && open.flows.contains_key("order-sms"));
    assert_eq!(open.warnings.len(), 1);
    assert!(open.warnings[0]
        .to_string()
        .contains("warning: the accounts file can be read by other users (mode 644)"));
    assert!(open.warnings[0].to_string().contains("hint: chmod 600"));
    std::fs::set_permissions(&accounts, std::fs::Permissions::from_mode(0o600))
        .expect("the test sets the mode");
    assert!(load_project(&options).warnings.is_empty());

    std::fs::write(&accounts, ACCOUNTS).expect("the test writes its file");
    std::fs::set_permissions(&accounts, std::fs::Permissions::from_mode(0o644))
        .expect("the test sets the mode");
    assert!(
        load_project(&options).warnings.is_empty(),
        "a key from the environment is not in the file"
    );
}

#[test]
fn schedules_and_delivery_settings_that_cannot_work_are_refused_with_the_value() {
    let with = |extra: &str| {
        problems_of(&format!("{ORDER_SMS}{extra}").replace("schedule:\n  every: 15m\n", ""))
    };
    let huge = with("schedule:\n  every: 300000y\n");
    assert!(
        huge[0].contains("`every: 300000y` is longer than ten years"),
        "{huge:?}"
    );
    let never = with("schedule:\n  cron: \"0 0 30 2 *\"\n");
    assert!(never[0].contains("never fires"), "{never:?}");
    let zero = with("delivery:\n  concurrency: 0\n");
    assert!(
        zero[0].contains(":17:16: `delivery.concurrency` is 0; it must be between 1 and 1024")
            && zero[0].contains("hint:"),
        "{zero:?}"
    );
    let backwards = with("delivery:\n  backoff: 10s\n  max_backoff: 1s\n");
    assert!(
        backwards[0]
            .contains("`delivery.max_backoff` (1s) is shorter than `delivery.backoff` (10s)"),
        "{backwards:?}"
    );
    let long = with("delivery:\n  timeout: 300000y\n");
    assert!(long[0].contains("`delivery.timeout` is"), "{long:?}");
}

#[test]
fn files_nested_too_deep_or_too_large_are_refused_before_parsing() {
    let deep: String = (0..100)
        .map(|i| format!("{}a{i}:\n", "  ".repeat(i)))
        .collect();
    let problems = problems_of(&deep);
    assert!(
        problems[0].contains("the YAML nests 65 levels deep"),
        "{problems:?}"
    );
    let lists: String = (0..100)
        .map(|i| format!("{}- \n", "  ".repeat(i)))
        .collect();
    assert!(problems_of(&format!("map:\n{lists}"))[0].contains("levels deep"));
    let big = format!("description: \"{}\"\n", "x".repeat(2 * 1024 * 1024));
    let problems = problems_of(&big);
    assert!(problems[0].contains("larger than 1024 KiB"), "{problems:?}");
    // A block scalar's indentation is text, not nesting.
    let text: String = (0..100)
        .map(|i| format!("  {}line\n", " ".repeat(i)))
        .collect();
    let ok = ORDER_SMS.replace(
        "schedule:\n  every: 15m\n",
        &format!("description: |\n{text}schedule:\n  every: 15m\n"),
    );
    assert!(problems_of(&ok).is_empty(), "{:?}", problems_of(&ok));
}

/// Two texts per row: `first`, then `second` naming `first`'s id.
const TWO_STEPS: &str = r#"source: {connector: rows, path: orders.csv, key: order_id}
steps:
  - name: first
    action: {connector: sms, action: send, account: shop-sms}
    map: {destination: "{{phone}}", source: Shop, text: "Hi {{name}}"}
  - name: second
    when: {field: steps.first.id, not_empty: true}
    on_error: continue
    action: {connector: sms, action: send, account: shop-sms}
    map: {destination: "{{phone}}", source: Shop, text: "Sent as {{steps.first.id}}"}
"#;

#[test]
fn steps_parse_in_order_and_the_last_action_stands_for_the_receiver() {
    let p = project(&[("accounts.yaml", ACCOUNTS), ("two.yaml", TWO_STEPS)]);
    assert!(p.diagnostics().is_empty(), "{:?}", p.diagnostics());
    let flow = &p.flows["two"];
    let names: Vec<&str> = flow.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert!(flow.steps[1].when.is_some());
    assert_eq!(flow.steps[1].on_error, crate::steps::OnError::Continue);
    assert_eq!(flow.receiver.action, "send");
    assert!(flow
        .map
        .iter()
        .any(|e| e.value == MapValue::Template("Sent as {{steps.first.id}}".into())));
    assert!(flow.lookup.is_none());
}

#[test]
fn steps_problems_are_told_at_their_place() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "source: {connector: rows, path: orders.csv, key: order_id}\nsteps:",
            "source: {connector: rows, path: orders.csv, key: order_id}\nreceiver: {connector: sms, action: send, account: shop-sms}\nsteps:",
            "order-sms.yaml:2:11: `receiver:` beside `steps:`",
        ),
        ("name: second", "name: first", "two steps are named `first`"),
        ("on_error: continue", "on_error: maybe", "order-sms.yaml:8:15"),
        ("    when:", "    wehn:", "unknown key `wehn`"),
        (
            "    action: {connector: sms, action: send, account: shop-sms}\n    map: {destination: \"{{phone}}\", source: Shop, text: \"Hi {{name}}\"}",
            "    map: {destination: \"{{phone}}\", source: Shop, text: \"Hi {{name}}\"}",
            "step `first` has neither `lookup:` nor `action:`",
        ),
        ("text: \"Hi {{name}}\"", "txt: \"Hi {{name}}\"", "missing required field `text`"),
        ("account: shop-sms}\n    map: {destination: \"{{phone}}\", source: Shop, text: \"Hi", "account: shop-smss}\n    map: {destination: \"{{phone}}\", source: Shop, text: \"Hi", "shop-smss"),
        ("name: first", "name: fir.st", "`fir.st` is not a step name"),
        (
            "action: {connector: sms, action: send, account: shop-sms}\n    map: {destination: \"{{phone}}\", source: Shop, text: \"Hi",
            "action: {connector: sms, action: send, account: shop-sms, batch: 100}\n    map: {destination: \"{{phone}}\", source: Shop, text: \"Hi",
            "order-sms.yaml:4:70: `batch` is for one-step flows",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(TWO_STEPS.contains(from), "{from:?}");
        let problems = problems_of(&TWO_STEPS.replacen(from, to, 1));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{to:?}: expected `{expected}` in {problems:#?}"
        );
    }
    let empty =
        problems_of("source: {connector: rows, path: orders.csv, key: order_id}\nsteps: []\n");
    assert!(
        empty.iter().any(|p| p.contains("`steps` is empty")),
        "{empty:?}"
    );
    // A step with problems of its own is not also told as missing where others name it.
    let broken = problems_of(&TWO_STEPS.replacen("account: shop-sms}", "account: shop-smss}", 1));
    assert_eq!(broken.len(), 1, "{broken:#?}");
}

#[test]
fn step_references_are_found_only_as_words_of_their_own() {
    use crate::steps::references;
    let found =
        references("{{steps.contact.mobilePhone}} {{coalesce steps.row._row steps.add.id}}");
    assert_eq!(
        found,
        vec![
            ("contact".to_string(), Some("mobilePhone".to_string())),
            ("row".to_string(), Some("_row".to_string())),
            ("add".to_string(), Some("id".to_string())),
        ]
    );
    assert_eq!(
        references("{{steps.case}}"),
        vec![("case".to_string(), None)]
    );
    assert!(references("{{my_steps.x}} {{a.steps.x}} steps. {{steps.}}").is_empty());
}
