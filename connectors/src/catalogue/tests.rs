//! Flow-file parsing and whole-directory validation with every connector of the
//! catalogue, as a user meets them.

use std::path::Path;

use flows::{Backlog, MapValue, Project, ScheduleRule};

use crate::{cinnox, csv, eightxeight, textrequest};

const ACCOUNTS: &str = "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: ${TEST_KEY}\n  base_url: http://127.0.0.1:9\n";

/// The flow from the issue, verbatim.
const ORDER_SMS: &str = r#"enabled: true
timezone: Europe/Kyiv
source:
  connector: csv
  path: orders.csv          # relative to the flow file
  key: order_id             # column(s) identifying a row; default: hash of the whole row
  backlog: send             # first run: send existing rows (send) or only remember them (skip, the default)
receiver:
  connector: 8x8
  action: send_sms
  account: shop-8x8
map:
  destination: "{{phone}}"
  source: "MyShop"
  text: "Hi {{name}}, order {{order_id}} is confirmed ({{date}} {{time}})."
schedule:
  every: 15m
"#;

/// The directory of `files`, parsed with this catalogue (no connector checks: no files
/// opened).
fn project(files: &[(&str, &str)]) -> Project {
    let dir = tempfile::tempdir().expect("a temporary directory");
    flows::testkit::load_files(dir.path(), files, &crate::Catalogue)
}

fn problems_of(flow_text: &str) -> Vec<String> {
    project(&[("accounts.yaml", ACCOUNTS), ("order-sms.yaml", flow_text)])
        .diagnostics()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_documented_flow_parses_as_written() {
    let p = project(&[("accounts.yaml", ACCOUNTS), ("order-sms.yaml", ORDER_SMS)]);
    assert!(p.diagnostics().is_empty(), "{:?}", p.diagnostics());
    let flow = &p.flows["order-sms"];
    assert!(flow.enabled);
    assert_eq!(flow.timezone, chrono_tz::Europe::Kyiv);
    let Some(csv) = flow.source.section.get::<csv::config::Source>() else {
        panic!("a csv source")
    };
    assert!(csv.path.ends_with("orders.csv"));
    assert_eq!(csv.key, ["order_id"]);
    assert_eq!(csv.backlog, Backlog::Send);
    assert!(matches!(
        flow.receiver.section.get(),
        Some(eightxeight::config::Receiver::SendSms(_))
    ));
    assert_eq!(flow.receiver.account, "shop-8x8");
    let fields: Vec<&str> = flow.map.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["destination", "source", "text"]);
    assert_eq!(flow.map[0].value, MapValue::Template("{{phone}}".into()));
    assert!(
        matches!(flow.schedule.as_ref().map(|s| &s.rule), Some(ScheduleRule::Every(d)) if d.as_secs() == 900)
    );
    let account = p
        .accounts
        .get("shop-8x8")
        .map(|a| format!("{a:?}"))
        .unwrap_or_default();
    assert!(
        account.contains("**REDACTED**") && !account.contains("k-1"),
        "{account}"
    );
}

/// Each broken flow and the one problem it must produce: `(what changes, expected line)`.
#[test]
fn every_validation_error_points_at_the_place_with_a_hint() {
    let cases: &[(&str, &str, &str)] = &[
        ("schedule:\n  every: 15m", "shedule:\n  every: 15m", "order-sms.yaml:16:1: unknown key `shedule`\n  hint: did you mean `schedule`?"),
        ("connector: 8x8", "connector: 8x9", "order-sms.yaml:9:14: unknown receiver connector `8x9`\n  hint: did you mean `8x8`?"),
        ("account: shop-8x8", "account: shop-8x", "order-sms.yaml:11:12: unknown account `shop-8x`\n  hint: did you mean `shop-8x8`?"),
        ("action: send_sms", "action: send_mms", "order-sms.yaml:10:11: `8x8` has no action `send_mms`\n  hint: did you mean `send_sms`?"),
        ("  text: \"Hi", "  txt: \"Hi", "order-sms.yaml:15:3: `8x8 send_sms` has no field `txt`\n  hint: did you mean `text`?"),
        ("every: 15m", "every: soon", "order-sms.yaml:17:10: `soon` is not a duration\n  hint: write a number and a unit: `10m`, `1h`, `1d`"),
        ("every: 15m", "every: 30s", "order-sms.yaml:17:10: `every: 30s` is shorter than one minute"),
        ("timezone: Europe/Kyiv", "timezone: Europe/Kyivv", "order-sms.yaml:2:11: unknown timezone `Europe/Kyivv`\n  hint: did you mean `Europe/Kyiv`?"),
        ("  path: orders.csv", "  pathh: orders.csv", "order-sms.yaml:5:3: unknown key `pathh` in `source`\n  hint: did you mean `path`?"),
        ("connector: csv", "connector: cvs", "order-sms.yaml:4:14: unknown source connector `cvs`\n  hint: did you mean `csv`?"),
        ("backlog: send", "backlog: sometimes", "order-sms.yaml:7:12: in `source`: unknown value `sometimes`, expected `skip` or `send`"),
        ("every: 15m", "at: [\"09:00\", \"25:00\"]", "order-sms.yaml:17:17: `25:00` is not a time of day"),
        ("every: 15m", "cron: \"0 9 * *\"", "order-sms.yaml:17:9: `0 9 * *` is not a cron expression: it has 4 fields"),
        ("every: 15m", "after: import-contacts", "order-sms.yaml:17:10: `after` names unknown flow `import-contacts`"),
        ("every: 15m", "every: 15m\n  cron: \"* * * * *\"", "order-sms.yaml:18:9: `schedule` has more than one rule (`every` and `cron`)"),
        ("enabled: true", "enabled: maybe", "order-sms.yaml:1:10: in `flow`: expected `true` or `false`"),
    ];
    for (from, to, expected) in cases {
        assert!(ORDER_SMS.contains(from), "case {from:?} does not apply");
        let problems = problems_of(&ORDER_SMS.replacen(from, to, 1));
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "changing {from:?} to {to:?}: expected {expected:?}, got {problems:#?}"
        );
    }
}

#[test]
fn a_missing_required_receiver_field_is_named() {
    let without_text = ORDER_SMS.replace(
        "  text: \"Hi {{name}}, order {{order_id}} is confirmed ({{date}} {{time}}).\"\n",
        "",
    );
    let problems = problems_of(&without_text);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("missing required field `text` for `8x8 send_sms`")),
        "{problems:#?}"
    );
}

#[test]
fn unknown_keys_in_accounts_are_errors() {
    let accounts = ACCOUNTS.replace("base_url", "baseurl");
    let p = project(&[("accounts.yaml", &accounts), ("order-sms.yaml", ORDER_SMS)]);
    let problems: Vec<String> = p.diagnostics().iter().map(ToString::to_string).collect();
    assert!(
        problems
            .iter()
            .any(|d| d.starts_with("accounts.yaml:5:3: unknown key `baseurl` in `shop-8x8`")),
        "{problems:#?}"
    );
}

#[test]
fn a_text_request_receiver_needs_its_dashboard_and_a_textrequest_account() {
    let accounts = format!("{ACCOUNTS}tr-main:\n  connector: textrequest\n  api_key: k\n");
    let flow = "source: {connector: csv, path: c.csv}\nreceiver:\n  connector: textrequest\n  action: send_message\n  account: tr-main\n  dashboard_id: 121\nmap:\n  phone_number: \"{{phone}}\"\n  body: \"Welcome {{name}}!\"\n";
    let p = project(&[("accounts.yaml", &accounts), ("welcome.yaml", flow)]);
    assert!(p.diagnostics().is_empty(), "{:#?}", p.diagnostics());
    assert!(
        matches!(p.flows["welcome"].receiver.section.get(), Some(textrequest::config::Receiver::SendMessage(d)) if d.dashboard_id == 121)
    );

    let problems = |flow: &str| -> Vec<String> {
        project(&[("accounts.yaml", &accounts), ("welcome.yaml", flow)])
            .diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let no_dashboard = problems(&flow.replace("  dashboard_id: 121\n", ""));
    assert!(
        no_dashboard
            .iter()
            .any(|d| d.contains("missing field `dashboard_id`")),
        "{no_dashboard:#?}"
    );
    let wrong_account = problems(&flow.replace("account: tr-main", "account: shop-8x8"));
    assert!(
        wrong_account.iter().any(|d| d
            .contains("account `shop-8x8` is a `8x8` account, but this receiver is `textrequest`")),
        "{wrong_account:#?}"
    );
    let no_body = problems(&flow.replace("  body: \"Welcome {{name}}!\"\n", ""));
    assert!(
        no_body
            .iter()
            .any(|d| d.contains("missing required field `body` for `textrequest send_message`")),
        "{no_body:#?}"
    );
}

#[test]
fn cinnox_actions_parse_with_their_options_and_required_fields() {
    let accounts = format!(
        "{ACCOUNTS}cx:\n  connector: cinnox\n  app_id: a\n  app_token: t\n  base_url: http://127.0.0.1:9\n"
    );
    let sms = "source: {connector: csv, path: c.csv}\nreceiver:\n  connector: cinnox\n  action: send_sms\n  account: cx\n  path: sms/send\nmap:\n  senderNumber: SHOP\n  recipientNumber: \"{{phone}}\"\n  text: \"Hi {{name}}\"\n";
    let update = "source: {connector: csv, path: c.csv}\nreceiver:\n  connector: cinnox\n  action: update_contact\n  account: cx\nmap:\n  jobTitle: \"{{title}}\"\n";
    let p = project(&[
        ("accounts.yaml", &accounts),
        ("sms.yaml", sms),
        ("update.yaml", update),
    ]);
    assert!(
        matches!(p.flows["sms"].receiver.section.get(), Some(cinnox::config::Receiver::SendSms(s)) if s.path == "sms/send"),
        "{:#?}",
        p.diagnostics()
    );
    let problems: Vec<String> = p.diagnostics().iter().map(ToString::to_string).collect();
    assert!(
        problems
            .iter()
            .any(|d| d.contains("update.yaml") && d.contains("contactID")),
        "update_contact needs the contact's id: {problems:#?}"
    );
    let default_path = project(&[
        ("accounts.yaml", &accounts),
        ("sms.yaml", &sms.replace("  path: sms/send\n", "")),
    ]);
    assert!(matches!(
        default_path.flows["sms"].receiver.section.get(),
        Some(cinnox::config::Receiver::SendSms(s)) if s.path == "send_sms"
    ));
    let typo = project(&[
        ("accounts.yaml", &accounts),
        ("sms.yaml", &sms.replace("  path:", "  pth:")),
    ]);
    assert!(
        typo.diagnostics()
            .iter()
            .any(|d| d.to_string().contains("pth")),
        "{:#?}",
        typo.diagnostics()
    );
}

#[test]
fn a_lookup_names_a_known_action_and_an_account_of_its_connector() {
    let accounts = format!(
        "{ACCOUNTS}cx:\n  connector: cinnox\n  app_id: a\n  app_token: t\n  base_url: http://127.0.0.1:9\n"
    );
    let flow = "source: {connector: csv, path: c.csv}\nlookup:\n  connector: cinnox\n  account: cx\n  action: get_contact\n  query: \"{{name}}\"\nreceiver: {connector: 8x8, action: send_sms, account: shop-8x8}\nmap:\n  destination: \"{{contact.mobilePhone}}\"\n  text: hi\n";
    let p = project(&[("accounts.yaml", &accounts), ("f.yaml", flow)]);
    assert!(p.diagnostics().is_empty(), "{:#?}", p.diagnostics());
    let lookup = p.flows["f"]
        .lookup
        .clone()
        .unwrap_or_else(|| panic!("a lookup"));
    assert_eq!(
        (lookup.as_name.as_str(), lookup.required),
        ("contact", true)
    );

    let problems = |flow: &str| -> Vec<String> {
        project(&[("accounts.yaml", &accounts), ("f.yaml", flow)])
            .diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let typo = problems(&flow.replace("get_contact", "get_contakt"));
    assert!(
        typo.iter()
            .any(|d| d.contains("unknown `cinnox` look-up `get_contakt`")
                && d.contains("get_contact")),
        "{typo:#?}"
    );
    let wrong = problems(&flow.replace("account: cx", "account: shop-8x8"));
    assert!(
        wrong.iter().any(|d| d.contains("this lookup is `cinnox`")),
        "{wrong:#?}"
    );
}

/// Generated flow files: the parser answers every one with a flow or positioned problems,
/// never a panic or a stack overflow. (Cases: `PROPTEST_CASES`, 256 by default.)
mod generated {
    use proptest::prelude::*;

    use super::ORDER_SMS;

    /// Pieces YAML and flow files are made of, hostile ones included.
    const PIECES: &[&str] = &[
        "\n",
        "  ",
        "    ",
        "- ",
        ": ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "\"",
        "'",
        "#",
        "&a ",
        "*a",
        "!!str ",
        "|\n",
        ">\n",
        "source:",
        "receiver:",
        "map:",
        "schedule:",
        "delivery:",
        "lookup:",
        "connector: csv",
        "connector: 8x8",
        "connector: webhook",
        "action: send_sms",
        "account: shop-8x8",
        "path: orders.csv",
        "key: [a, b]",
        "every: 15m",
        "every: 300000y",
        "at: [\"09:00\"]",
        "cron: \"0 0 30 2 *\"",
        "after: x",
        "concurrency: 0",
        "timeout: 99999999999999999999s",
        "text: \"{{#if a}}\"",
        "text: \"{{> x}}\"",
        "destination: \"{{phone}}\"",
        "enabled: maybe",
        "timezone: Nowhere/Land",
        "${X",
        "\t",
        "\u{0}",
        "\u{feff}",
        "é",
        "💥",
        "~",
        "null",
        "-1",
        "1e999",
        "0x10",
    ];

    fn assemble(pieces: Vec<usize>) -> String {
        pieces
            .into_iter()
            .map(|i| PIECES[i % PIECES.len()])
            .collect()
    }

    proptest! {
        #[test]
        fn any_flow_file_parses_or_is_refused_with_a_place(pieces in prop::collection::vec(0usize..1000, 0..120)) {
            let text = assemble(pieces);
            if let Err(problems) = flows::parse_flow(std::path::Path::new("f.yaml"), &text, &crate::Catalogue) {
                prop_assert!(!problems.is_empty());
                for p in problems {
                    prop_assert!(p.line >= 1 && p.column >= 1, "{p}");
                }
            }
        }

        #[test]
        fn a_good_flow_with_text_cut_in_or_out_never_panics(at in 0usize..600, cut in 0usize..40, pieces in prop::collection::vec(0usize..1000, 0..8)) {
            let mut text = ORDER_SMS.to_string();
            let at = at.min(text.len());
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + cut).min(text.len());
            let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(at..end, &assemble(pieces));
            let _ = flows::parse_flow(std::path::Path::new("f.yaml"), &text, &crate::Catalogue);
        }

        #[test]
        fn deep_nesting_of_any_kind_is_refused_not_overflowed(depth in 60usize..3000, kind in 0usize..3) {
            let text = match kind {
                0 => (0..depth).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect::<String>(),
                1 => (0..depth).map(|i| format!("{}- \n", " ".repeat(2 * i))).collect::<String>(),
                _ => format!("map: {}{}", "[".repeat(depth), "]".repeat(depth)),
            };
            let _ = flows::parse_flow(std::path::Path::new("f.yaml"), &text, &crate::Catalogue);
        }
    }
}

/// Each action a card lists is parsed as itself: no action falls back to another one's
/// fields or behaviour (a catch-all once made an unknown CINNOX action `send_im_room`).
#[test]
fn every_action_on_a_card_parses_as_that_action() {
    use flows::Catalogue as _;
    let cx = flows::Cx {
        file: Path::new("f.yaml"),
    };
    // The options each action requires, in YAML.
    let options = |connector: &str, action: &str| match connector {
        // The account's dashboards are named by the record, not by the flow.
        "textrequest" if action.ends_with("_dashboard") => "{}",
        "textrequest" => "dashboard_id: 121",
        "google_sheets" if action == "update_row" => "{spreadsheet_id: s-1, key: order_id}",
        "google_sheets" => "spreadsheet_id: s-1",
        _ => "{}",
    };
    let node = |text: &str| flows::yaml::load(Path::new("f.yaml"), text).expect("it loads");
    let mut seen_lookups = Vec::new();
    for card in super::cards() {
        for action in card.actions {
            let spec = crate::Catalogue
                .receiver(
                    &cx,
                    card.name,
                    action.name,
                    &node(options(card.name, action.name)),
                    flows::Pos::new(1, 1),
                )
                .unwrap_or_else(|e| panic!("{} {}: {e}", card.name, action.name));
            assert_eq!(
                spec.fields, action.fields,
                "{} {} is parsed as another action",
                card.name, action.name
            );
        }
        for lookup in card.lookups {
            // The options a look-up requires, in YAML.
            let required = match (card.name, lookup.name) {
                (_, "search_cases") => "field: StateName",
                ("textrequest", "get_dashboard" | "list_dashboards") => "{}",
                ("textrequest", _) => "dashboard_id: 121",
                ("google_sheets", _) => "{spreadsheet_id: s-1, key: order_id}",
                _ => "{}",
            };
            let spec = crate::Catalogue
                .lookup(
                    &cx,
                    card.name,
                    lookup.name,
                    &node(required),
                    flows::Pos::new(1, 1),
                )
                .unwrap_or_else(|e| panic!("{} {}: {e}", card.name, lookup.name));
            let parsed = format!("{:?}", spec.section);
            assert!(
                !seen_lookups.contains(&parsed),
                "{} is parsed as another look-up",
                lookup.name
            );
            seen_lookups.push(parsed);
        }
        let unknown = crate::Catalogue.receiver(
            &cx,
            card.name,
            "send_fax",
            &node("{}"),
            flows::Pos::new(1, 1),
        );
        if !card.actions.is_empty() {
            assert!(
                unknown.is_err(),
                "{} took an action it does not have",
                card.name
            );
        }
    }
}

#[test]
fn a_push_source_may_be_reached_over_http_or_https_and_nothing_else() {
    let accounts = format!(
        "{ACCOUNTS}cx:\n  connector: cinnox\n  app_id: a\n  app_token: t\n  base_url: http://127.0.0.1:9\n"
    );
    let flow = |url: &str| {
        format!("source: {{connector: cinnox, account: cx, events: [enquiry.missed], public_url: \"{url}\"}}\nreceiver: {{connector: 8x8, action: send_sms, account: shop-8x8}}\nmap:\n  destination: \"{{{{phone}}}}\"\n  text: hi\n")
    };
    for ok in [
        "https://hooks.example.com/hooks/f",
        "http://10.0.0.5:8080/hooks/f",
    ] {
        let p = project(&[("accounts.yaml", &accounts), ("f.yaml", &flow(ok))]);
        assert!(p.diagnostics().is_empty(), "{ok}: {:#?}", p.diagnostics());
    }
    let p = project(&[
        ("accounts.yaml", &accounts),
        ("f.yaml", &flow("ftp://x/hooks/f")),
    ]);
    let problems: Vec<String> = p.diagnostics().iter().map(ToString::to_string).collect();
    assert!(
        problems.iter().any(|d| d.starts_with("f.yaml:1:")
            && d.contains("`public_url` `ftp://x/hooks/f` must start with https:// (or http://)")),
        "{problems:#?}"
    );
}

#[test]
fn every_keyed_source_refuses_an_empty_key_and_an_empty_path_at_its_place() {
    use flows::Catalogue as _;
    let cx = flows::Cx {
        file: Path::new("f.yaml"),
    };
    let node = |text: &str| flows::yaml::load(Path::new("f.yaml"), text).expect("it loads");
    for (connector, rest) in [
        ("csv", "path: a.csv\nkey: [id, \" \"]"),
        ("xlsx", "path: a.xlsx\nkey: [id, \"\"]"),
        (
            "google_sheets",
            "account: g\nspreadsheet_id: x\nkey: [id, \"\"]",
        ),
        ("webhook", "key: [\"\"]"),
    ] {
        let problem = crate::Catalogue
            .source(&cx, connector, &node(rest), flows::Pos::new(1, 1))
            .err()
            .map(|d| d.to_string())
            .unwrap_or_default();
        assert!(
            problem.contains("`key` names an empty column"),
            "{connector}: {problem}"
        );
    }
    for (connector, rest, at) in [
        ("csv", "path: \" \"", "f.yaml:1:7:"),
        ("xlsx", "sheet: s\npath: \"\"", "f.yaml:2:7:"),
    ] {
        let problem = crate::Catalogue
            .source(&cx, connector, &node(rest), flows::Pos::new(1, 1))
            .err()
            .map(|d| d.to_string())
            .unwrap_or_default();
        assert!(
            problem.starts_with(&format!("{at} `path` is empty")),
            "{connector}: {problem}"
        );
    }
}

#[test]
fn every_account_that_calls_a_service_takes_a_rate_limit() {
    let accounts = "api:\n  connector: http\n  base_url: https://api.example.com\n  rate_limit: 5/s\nsheets:\n  connector: google_sheets\n  api_key: k\n  rate_limit: 30/60s\n";
    let p = project(&[("accounts.yaml", accounts), ("order-sms.yaml", ORDER_SMS)]);
    let limit = |name: &str| {
        let section = &p.accounts.get(name)?.section;
        match section.get::<crate::httpreq::config::Account>() {
            Some(a) => a.rate_limit,
            None => {
                section
                    .get::<crate::google_sheets::config::Account>()?
                    .rate_limit
            }
        }
    };
    assert_eq!(limit("api"), Some(flows::RateLimit::per_second(5)));
    assert_eq!(
        limit("sheets"),
        Some(flows::RateLimit::Every {
            calls: 30,
            per: std::time::Duration::from_secs(60)
        })
    );
}
