//! A small catalogue for testing what builds on flow files without the real
//! connectors (the engine's tests and benches, this crate's own): a `rows` source (a
//! file of rows, `path` and `key`), an `sms` receiver whose `send` action takes an SMS's
//! fields, and `sms` accounts (any options; `api_key` is a secret). Built with the
//! `testkit` feature.

use serde::Deserialize;

use crate::section::{
    AccountSpec, Catalogue, Cx, LookupSpec, ReceiverSpec, Role, Section, SourceSpec,
};
use crate::yaml::{from_node, Node};
use crate::{Backlog, Diagnostic, FieldKind, FieldSpec, LoadOptions, Pos, Project, Secret};

/// A flows directory `dir` holding `files` (name, text), loaded with `catalogue` as a
/// flow-file test wants it: `${TEST_KEY}` is `k-1`, files only (no connector checks), and
/// the diagnostics' paths relative to `dir`, for stable assertions.
pub fn load_files(
    dir: &std::path::Path,
    files: &[(&str, &str)],
    catalogue: &dyn Catalogue,
) -> Project {
    for (name, text) in files {
        if let Err(e) = std::fs::write(dir.join(name), text) {
            panic!("cannot write the test's {name}: {e}");
        }
    }
    let options = LoadOptions {
        flows_dir: dir.to_path_buf(),
        env: std::collections::BTreeMap::from([("TEST_KEY".to_string(), "k-1".to_string())]),
        ..LoadOptions::default()
    };
    let mut project = crate::load_project(&options, catalogue);
    for d in project
        .general
        .iter_mut()
        .chain(project.invalid.values_mut().flatten())
    {
        if let Ok(relative) = d.file.strip_prefix(dir) {
            d.file = relative.to_path_buf();
        }
    }
    project
}

/// The test catalogue.
pub struct TestCatalogue;

/// `sms`/`send`'s fields: the shape of a real SMS receiver's, with a length limit and a
/// closed list to check against.
pub const SMS_FIELDS: &[FieldSpec] = &[
    FieldSpec::required("destination", FieldKind::Phone, "the phone number"),
    FieldSpec::required("text", FieldKind::Text, "the message"),
    FieldSpec::optional("source", FieldKind::Text, "sender ID").max_chars(16),
    FieldSpec::optional(
        "encoding",
        FieldKind::OneOf(&["AUTO", "GSM7", "UCS2"]),
        "text encoding",
    ),
];

/// A `rows` source's options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rows {
    pub path: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub backlog: Backlog,
}

/// An `sms` account's options.
#[derive(Debug, Deserialize)]
pub struct SmsAccount {
    #[serde(default)]
    pub api_key: Option<String>,
}

fn unknown(cx: &Cx<'_>, pos: Pos, what: &str, name: &str) -> Diagnostic {
    cx.problem(
        pos,
        format!("unknown {what} `{name}` (the test catalogue has `rows` and `sms`)"),
    )
}

impl Catalogue for TestCatalogue {
    fn connectors(&self, role: Role) -> Vec<&'static str> {
        match role {
            Role::Source => vec!["rows"],
            Role::Receiver | Role::Account => vec!["sms"],
            Role::Lookup => Vec::new(),
        }
    }

    fn actions(&self, role: Role, connector: &str) -> Option<Vec<&'static str>> {
        (role == Role::Receiver && connector == "sms").then(|| vec!["send"])
    }

    fn example(&self, role: Role) -> &'static str {
        match role {
            Role::Source => "{connector: rows, path: rows.csv, key: id}",
            _ => "{connector: sms, action: send, account: sms}",
        }
    }

    fn source(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<SourceSpec, Diagnostic> {
        if connector != "rows" {
            return Err(unknown(cx, pos, "source", connector));
        }
        let rows: Rows = from_node(cx.file, rest, "source")?;
        Ok(SourceSpec {
            account: None,
            backlog: rows.backlog,
            push: false,
            keyed_by: rows.key.clone(),
            section: Section::new(rows),
        })
    }

    fn receiver(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        action: &str,
        _rest: &Node,
        pos: Pos,
    ) -> Result<ReceiverSpec, Diagnostic> {
        if (connector, action) != ("sms", "send") {
            return Err(unknown(
                cx,
                pos,
                "receiver",
                &format!("{connector}/{action}"),
            ));
        }
        Ok(ReceiverSpec {
            fields: SMS_FIELDS,
            section: Section::new(()),
        })
    }

    fn lookup(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        _action: &str,
        _rest: &Node,
        pos: Pos,
    ) -> Result<LookupSpec, Diagnostic> {
        Err(unknown(cx, pos, "look-up", connector))
    }

    fn account(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        _name: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<AccountSpec, Vec<Diagnostic>> {
        if connector != "sms" {
            return Err(vec![unknown(cx, pos, "account", connector)]);
        }
        let account: SmsAccount = from_node(cx.file, rest, "account").map_err(|d| vec![d])?;
        Ok(AccountSpec {
            secrets: account
                .api_key
                .iter()
                .map(|k| Secret::new(k.clone()))
                .collect(),
            section: Section::new(account),
        })
    }
}
