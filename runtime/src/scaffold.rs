//! A new flow from the connector catalogue: a commented flow file (every option and map
//! field with its type and doc) and the accounts it needs, ready for `validate` to point
//! at what is left to fill in — what `switchboard new` and the console's New flow write.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use connectors::card::{Card, Field};

use crate::Global;

/// What the user writes in place of a required value.
pub const FILL_IN: &str = flows::yaml::FILL_IN;

/// The flow asked for.
pub struct NewFlow<'a> {
    pub flow: &'a str,
    pub source: &'a str,
    pub receiver: &'a str,
    pub action: Option<&'a str>,
    /// The accounts there are: one of the connector's is used rather than a new stub.
    pub accounts: Option<&'a flows::Accounts>,
    /// The source's `path:`, when known (the console's sample file).
    pub path: Option<&'a str>,
    /// Map fields already chosen: field → template (the rest are left to fill in).
    pub map: &'a [(String, String)],
}

/// What was written.
pub struct Created {
    pub file: PathBuf,
    pub accounts_file: PathBuf,
    /// The accounts added to the accounts file.
    pub accounts_added: Vec<String>,
}

/// Write the flow file (and the accounts it needs) into `global`'s directory.
pub fn create(global: &Global, new: NewFlow<'_>) -> anyhow::Result<Created> {
    let NewFlow {
        flow,
        source,
        receiver,
        action,
        accounts,
        path,
        map,
    } = new;
    if flow.is_empty()
        || !flow
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        anyhow::bail!("`{flow}` is not a usable flow name\n  hint: use letters, digits, `-`, `_` and `.` (it appears in URLs and logs)");
    }
    let source_card = role_card(source, "source", |c| c.source.is_some())?;
    let receiver_card = role_card(receiver, "receiver", |c| !c.actions.is_empty())?;
    let action = match action {
        Some(name) => receiver_card.action(false, name).ok_or_else(|| {
            anyhow::anyhow!(
                "`{receiver}` has no action `{name}`\n  hint: its actions: {}",
                receiver_card
                    .actions
                    .iter()
                    .map(|a| a.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?,
        None => &receiver_card.actions[0],
    };

    let dir = &global.flows;
    std::fs::create_dir_all(dir).map_err(|e| {
        anyhow::anyhow!("cannot create the flows directory `{}`: {e}", dir.display())
    })?;
    let file = dir.join(format!("{flow}.yaml"));
    if file.exists() {
        anyhow::bail!(
            "`{}` exists already\n  hint: pick another name, or edit that file",
            file.display()
        );
    }
    let accounts_file = global
        .accounts
        .clone()
        .unwrap_or_else(|| dir.join(flows::ACCOUNTS_FILE));
    let existing = std::fs::read_to_string(&accounts_file).unwrap_or_default();

    // The accounts the flow needs: the receiver's, and the source's when it has one.
    let mut stubs = String::new();
    let mut written: Vec<String> = Vec::new();
    // An account of the connector that is there already, else a new one's name.
    let account_for = |connector: &str| {
        accounts
            .and_then(|all| {
                all.accounts
                    .values()
                    .find(|a| a.connector == connector)
                    .map(|a| a.name.clone())
            })
            .unwrap_or_else(|| account_name(connector))
    };
    let receiver_account = account_for(receiver_card.name);
    let source_account = source_card.account.as_ref().and_then(|_| {
        // A source that reads a service needs an account; a file does not.
        needs_account(source_card).then(|| account_for(source_card.name))
    });
    for (name, card) in [
        (Some(receiver_account.clone()), receiver_card),
        (source_account.clone(), source_card),
    ] {
        let Some(name) = name else { continue };
        if written.contains(&name) || has_account(&existing, &name) {
            continue;
        }
        stubs.push_str(&account_stub(&name, card));
        written.push(name);
    }

    let text = flow_text(
        flow,
        (source_card, source_account.as_deref(), path),
        receiver_card,
        action,
        &receiver_account,
        map,
    );
    std::fs::write(&file, text)
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", file.display()))?;
    if !stubs.is_empty() {
        append_private(&accounts_file, &existing, &stubs)?;
    }
    Ok(Created {
        file,
        accounts_file,
        accounts_added: written,
    })
}

/// The card of `name`, which must play `role`.
fn role_card(
    name: &str,
    role: &str,
    plays: impl Fn(&Card) -> bool,
) -> anyhow::Result<&'static Card> {
    let fitting: Vec<&str> = connectors::catalogue::cards()
        .filter(|c| plays(c))
        .map(|c| c.name)
        .collect();
    match connectors::catalogue::card(name) {
        Some(card) if plays(card) => Ok(card),
        Some(_) => anyhow::bail!(
            "`{name}` cannot be a {role}\n  hint: {role}s: {}",
            fitting.join(", ")
        ),
        None => {
            let hint = flows::did_you_mean(name, fitting.iter().copied())
                .map(|b| format!("did you mean `{b}`? "))
                .unwrap_or_default();
            anyhow::bail!(
                "unknown connector `{name}`\n  hint: {hint}{role}s: {}",
                fitting.join(", ")
            )
        }
    }
}

/// Whether a source of this connector names an account (a file source does not).
fn needs_account(card: &Card) -> bool {
    card.source
        .as_ref()
        .is_some_and(|part| part.fields().iter().any(|f| f.name == "account"))
}

fn account_name(connector: &str) -> String {
    format!("my-{connector}").replace('_', "-")
}

/// Whether the accounts file's text has a top-level key `name`.
fn has_account(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

/// A field's comment line: `# name (type, required): doc`.
fn comment(indent: &str, field: &Field) -> String {
    let mut what = field.kind.clone();
    if field.required {
        what.push_str(", required");
    } else if let Some(default) = &field.default {
        let _ = write!(what, ", default {}", plain(default));
    }
    format!("{indent}# {} ({what}): {}\n", field.name, field.doc)
}

fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Options written out: required ones with a value to fill in, the rest commented out.
/// A text as a YAML scalar that reads back exactly (a JSON string is one).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

fn options(
    out: &mut String,
    indent: &str,
    fields: &[Field],
    skip: &[&str],
    (account, path): (Option<&str>, Option<&str>),
) {
    for field in fields.iter().filter(|f| !skip.contains(&f.name.as_str())) {
        out.push_str(&comment(indent, field));
        let given = match field.name.as_str() {
            "account" => account.map(str::to_string),
            "path" => path.map(quoted),
            _ => None,
        };
        if let Some(value) = given {
            let _ = writeln!(out, "{indent}{}: {value}", field.name);
            continue;
        }
        if field.required {
            let _ = writeln!(out, "{indent}{}: {FILL_IN}", field.name);
        } else {
            let value = field.default.as_ref().map(plain).unwrap_or("…".into());
            let _ = writeln!(out, "{indent}# {}: {value}", field.name);
        }
    }
}

fn flow_text(
    flow: &str,
    (source, source_account, path): (&Card, Option<&str>, Option<&str>),
    receiver: &Card,
    action: &connectors::card::Action,
    receiver_account: &str,
    map: &[(String, String)],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {flow}: {} → {} {}. Written by `switchboard new`: fill in each {FILL_IN},\n# check with `switchboard validate`, preview with `switchboard test {flow}`.\n# Editors complete and check this file with `switchboard schema flow` (a JSON Schema).",
        source.name, receiver.name, action.name
    );
    let _ = writeln!(
        out,
        "description: {} records become {} {}",
        source.name, receiver.name, action.name
    );
    let _ = writeln!(
        out,
        "enabled: false            # true once `switchboard test {flow}` shows what you expect"
    );
    let _ = writeln!(
        out,
        "timezone: UTC             # the zone of `at:` times and {{{{date}}}}/{{{{time}}}}"
    );
    let _ = writeln!(out, "source:");
    let _ = writeln!(out, "  connector: {}", source.name);
    if let Some(part) = &source.source {
        let _ = writeln!(out, "  # {}", part.about);
        options(
            &mut out,
            "  ",
            &part.fields(),
            &["connector"],
            (source_account, path),
        );
    }
    let _ = writeln!(out, "receiver:");
    let _ = writeln!(out, "  connector: {}", receiver.name);
    let _ = writeln!(
        out,
        "  action: {}            # {}",
        action.name, action.about
    );
    let _ = writeln!(out, "  account: {receiver_account}");
    options(&mut out, "  ", &action.option_fields(), &[], (None, None));
    let _ = writeln!(
        out,
        "map:                      # each field a Handlebars template over the record's fields"
    );
    for field in action.map_fields() {
        out.push_str(&comment("  ", &field));
        if let Some((_, template)) = map.iter().find(|(name, _)| *name == field.name) {
            let _ = writeln!(out, "  {}: {}", field.name, quoted(template));
        } else if field.required {
            let _ = writeln!(out, "  {}: \"{{{{{FILL_IN}}}}}\"", field.name);
        } else {
            let _ = writeln!(out, "  # {}: \"{{{{…}}}}\"", field.name);
        }
    }
    if !connectors::catalogue::pushes(source.name) {
        let _ = writeln!(out, "schedule:\n  every: 15m               # or `at: [\"09:00\"]`, `cron: \"0 9 * * MON-FRI\"`, `after: {{flow: other}}`");
    } else {
        let _ = writeln!(
            out,
            "# no schedule: it runs on each event pushed to the daemon's /hooks/{flow}"
        );
    }
    out
}

/// An account's stub: the connector, each required option (secrets as `${VAR}`), the
/// optional ones commented out.
fn account_stub(name: &str, card: &Card) -> String {
    let mut out = format!("\n{name}:\n  connector: {}\n", card.name);
    let Some(part) = &card.account else {
        return out;
    };
    let _ = writeln!(out, "  # {}", part.about);
    for field in part.fields() {
        out.push_str(&comment("  ", &field));
        let variable = format!("{name}_{}", field.name)
            .to_uppercase()
            .replace(['-', '.'], "_");
        match (field.required, field.secret) {
            (_, true) => {
                let _ = writeln!(out, "  {}: ${{{variable}}}", field.name);
            }
            (true, false) => {
                let _ = writeln!(out, "  {}: {FILL_IN}", field.name);
            }
            (false, false) => {
                let value = field.default.as_ref().map(plain).unwrap_or("…".into());
                let _ = writeln!(out, "  # {}: {value}", field.name);
            }
        }
    }
    out
}

/// Append to the accounts file, creating it readable by its owner only.
fn append_private(file: &Path, existing: &str, stubs: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut handle = options
        .open(file)
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", file.display()))?;
    let text = if existing.is_empty() {
        stubs.trim_start().to_string()
    } else if existing.ends_with('\n') {
        stubs.to_string()
    } else {
        format!("\n{stubs}")
    };
    handle
        .write_all(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", file.display()))
}
