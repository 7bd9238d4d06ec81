//! A flows directory as a whole: every flow file, the accounts file, and the checks that
//! span files (account references, `after` references and cycles, duplicate names).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::accounts::{self, Accounts};
use crate::diag::{Diagnostic, Pos};
use crate::flow::{self, Flow};
use crate::schedule::ScheduleRule;
use crate::section::Catalogue;
use crate::suggest;
use crate::ACCOUNTS_FILE;

/// Where to load from.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub flows_dir: PathBuf,
    /// The accounts file; default `accounts.yaml` in the flows directory.
    pub accounts_file: Option<PathBuf>,
    /// Variables that take precedence over the process environment for `${VAR}`.
    pub env: BTreeMap<String, String>,
    /// Run the catalogue's whole-flow checks too ([`Catalogue::check_flow`]: they open
    /// sources' files). Off, only the files are parsed.
    pub check_flows: bool,
    /// The value of a `${VAR}` the environment does not set, instead of an error: for a
    /// command that asks a daemon (which holds the real secrets) to act, and only needs
    /// the files' shape here.
    pub unset_as: Option<String>,
    /// A flow file's text as it would be (an edit not yet saved): read instead of the
    /// file, which need not exist yet.
    pub overlay: Option<(PathBuf, String)>,
}

/// A loaded flows directory. Valid flows can run even when others are broken.
#[derive(Debug, Clone, Default)]
pub struct Project {
    pub dir: PathBuf,
    pub accounts: Accounts,
    /// Valid flows by name.
    pub flows: BTreeMap<String, Flow>,
    /// Invalid flows by name, with their problems.
    pub invalid: BTreeMap<String, Vec<Diagnostic>>,
    /// Problems that belong to no single flow (accounts file, directory).
    pub general: Vec<Diagnostic>,
    /// Things worth fixing that stop nothing (an accounts file others can read).
    pub warnings: Vec<Diagnostic>,
    /// `switchboard.yaml`: what applies to every flow unless it says otherwise.
    pub settings: crate::Settings,
}

impl Project {
    /// Every problem in the directory, in file and line order, each once.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut all: Vec<Diagnostic> = self
            .general
            .iter()
            .chain(self.invalid.values().flatten())
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
        });
        all.dedup();
        all
    }

    /// Move a flow to the invalid set (for checks made outside this crate, such as
    /// templates against a CSV header).
    pub fn mark_invalid(&mut self, name: &str, problems: Vec<Diagnostic>) {
        if problems.is_empty() {
            return;
        }
        self.flows.remove(name);
        self.invalid
            .entry(name.to_string())
            .or_default()
            .extend(problems);
    }

    /// Every flow name, valid or not.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .flows
            .keys()
            .chain(self.invalid.keys())
            .map(String::as_str)
            .collect();
        names.sort();
        names
    }
}

/// Load and validate a whole flows directory, with the connectors of `catalogue`.
pub fn load_project(options: &LoadOptions, catalogue: &dyn Catalogue) -> Project {
    let dir = options.flows_dir.clone();
    let mut project = Project {
        dir: dir.clone(),
        ..Project::default()
    };
    let env = |name: &str| {
        options
            .env
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .or_else(|| options.unset_as.clone())
    };

    let accounts_file = options
        .accounts_file
        .clone()
        .unwrap_or_else(|| dir.join(ACCOUNTS_FILE));
    match read_limited(&accounts_file) {
        Ok(text) => {
            project.accounts =
                accounts::load(&accounts_file, &text, &env, catalogue, &mut project.general);
            if holds_a_literal_secret(&text, &project.accounts) {
                project.warnings.extend(readable_by_others(&accounts_file));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.accounts_file.is_none() => {
            project.accounts.file = accounts_file;
        }
        Err(e) => {
            project.general.push(Diagnostic::new(
                &accounts_file,
                Pos::new(1, 1),
                format!("cannot read the accounts file: {e}"),
            ));
            project.accounts.file = accounts_file;
        }
    }

    let settings_file = dir.join(crate::SETTINGS_FILE);
    if let Ok(text) = read_limited(&settings_file) {
        match crate::settings::parse(&settings_file, &text) {
            Ok(settings) => project.settings = settings,
            Err(problems) => project.general.extend(problems),
        }
    }

    let files = match flow_files(&dir) {
        Ok(mut files) => {
            if let Some((file, _)) = &options.overlay {
                if !files.contains(file) {
                    files.push(file.clone());
                }
            }
            files
        }
        Err(e) => {
            project.general.push(
                Diagnostic::new(
                    &dir,
                    Pos::new(1, 1),
                    format!("cannot read the flows directory: {e}"),
                )
                .with_hint("pass the directory that holds your flow files with `--flows DIR`"),
            );
            return project;
        }
    };

    let mut name_pos: BTreeMap<String, (PathBuf, Pos)> = BTreeMap::new();
    // Flows read whole but with problems: checked like the others, then invalid.
    let mut partly: Vec<(String, Flow, Vec<Diagnostic>)> = Vec::new();
    for file in files {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let overlaid = options.overlay.as_ref().filter(|(path, _)| *path == file);
        let text = match overlaid.map_or_else(|| read_limited(&file), |(_, text)| Ok(text.clone()))
        {
            Ok(text) => text,
            Err(e) => {
                project.invalid.insert(
                    stem,
                    vec![Diagnostic::new(
                        &file,
                        Pos::new(1, 1),
                        format!("cannot read the file: {e}"),
                    )],
                );
                continue;
            }
        };
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flow::parse_partly(&file, &text, catalogue)
        }))
        .unwrap_or_else(|panic| {
            Err(vec![Diagnostic::new(
                &file,
                Pos::new(1, 1),
                format!(
                    "internal error while reading this flow: {}",
                    crate::panic_message(panic.as_ref())
                ),
            )
            .with_hint(
                "the other flows are not affected; please report this with the file",
            )])
        });
        match parsed {
            Ok(parsed) => {
                let name = parsed.flow.name.clone();
                if let Some((first, _)) = name_pos.get(&name) {
                    let problem = Diagnostic::new(
                        &file,
                        parsed.name_pos,
                        format!("flow name `{name}` is already used by {}", first.display()),
                    )
                    .with_hint("give one of them a different `name:`");
                    project
                        .invalid
                        .entry(format!("{name} ({})", file.display()))
                        .or_default()
                        .push(problem);
                    continue;
                }
                name_pos.insert(name.clone(), (file.clone(), parsed.name_pos));
                if parsed.problems.is_empty() {
                    project.flows.insert(name, parsed.flow);
                } else {
                    // Known by its name, or by its file's when the name is the problem.
                    let key = if flow::valid_name(&name) { name } else { stem };
                    partly.push((key, parsed.flow, parsed.problems));
                }
            }
            Err(problems) => {
                name_pos.insert(stem.clone(), (file.clone(), Pos::new(1, 1)));
                project.invalid.insert(stem, problems);
            }
        }
    }

    // Every check runs on every flow that could be read, before any is marked invalid:
    // `validate` shows all of a file's problems at once, not one stage at a time.
    for (key, flow, mut found) in partly {
        found.extend(flow_checks(&project, &flow, catalogue, options.check_flows).map(|(_, p)| p));
        found.sort_by_key(|d| (d.line, d.column));
        found.dedup();
        project.invalid.insert(key, found);
    }
    let mut problems: Vec<(String, Diagnostic)> = Vec::new();
    for flow in project.flows.values() {
        problems.extend(flow_checks(&project, flow, catalogue, options.check_flows));
    }
    problems.extend(after_problems(&project));
    problems.extend(alert_problems(&project));
    let settings_file = dir.join(crate::SETTINGS_FILE);
    if let Some(alerts) = &project.settings.alerts {
        let general = alert_targets(&project, &settings_file, alerts);
        project.general.extend(general);
    }
    for (name, problem) in problems {
        project.mark_invalid(&name, vec![problem]);
    }
    project
}

/// A flow's account problems and its connectors' checks, each with the flow's name.
fn flow_checks<'a>(
    project: &'a Project,
    flow: &'a Flow,
    catalogue: &'a dyn Catalogue,
    check_flows: bool,
) -> impl Iterator<Item = (String, Diagnostic)> + 'a {
    let whole = if check_flows {
        catalogue.check_flow(flow)
    } else {
        Vec::new()
    };
    account_uses_problems(project, flow)
        .into_iter()
        .chain(whole)
        .map(|p| (flow.name.clone(), p))
}

/// A file's text, refusing one larger than [`crate::yaml::MAX_FILE_BYTES`] (reading
/// at most that much, so a device or a growing file cannot take the memory).
fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let limit = crate::yaml::MAX_FILE_BYTES;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "it is larger than {} KiB, more than any flow or accounts file needs",
            limit / 1024
        )));
    }
    Ok(text)
}

/// A warning when the accounts file (which holds or points at secrets) can be read by
/// users other than its owner.
#[cfg(unix)]
fn readable_by_others(file: &Path) -> Option<Diagnostic> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).ok()?.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then(|| {
        Diagnostic::new(
            file,
            Pos::new(1, 1),
            format!("warning: the accounts file can be read by other users (mode {mode:o})"),
        )
        .with_hint(format!("chmod 600 {}", file.display()))
    })
}

/// Whether the accounts file's own text holds a secret: a value written out, not taken
/// from the environment with `${VAR}` (a `${VAR:-default}`'s default is for stand-ins and
/// tests, and is not counted). Only then do others reading it matter.
fn holds_a_literal_secret(text: &str, accounts: &crate::Accounts) -> bool {
    let mut outside = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        outside.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    outside.push_str(rest);
    accounts
        .accounts
        .values()
        .flat_map(|a| &a.secrets)
        .map(|s| s.expose().trim())
        .any(|secret| !secret.is_empty() && outside.contains(secret))
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> Option<Diagnostic> {
    None
}

/// `*.yaml` / `*.yml` files in the directory (not recursive), except the accounts and
/// settings files.
fn flow_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml") | Some("yml")
        );
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let reserved = matches!(stem, "accounts" | "switchboard");
        if is_yaml && path.is_file() && !reserved && !stem.starts_with('.') {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// What is wrong with the accounts a flow uses.
fn account_uses_problems(project: &Project, flow: &Flow) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    {
        let receiver = &flow.receiver;
        let mut uses = vec![(
            receiver.account.as_str(),
            receiver.account_pos,
            receiver.connector,
            "receiver",
        )];
        if let Some((name, pos)) = &flow.source.account {
            uses.push((name.as_str(), *pos, flow.source.connector, "source"));
        }
        if let Some(lookup) = &flow.lookup {
            uses.push((
                lookup.account.as_str(),
                lookup.pos,
                lookup.connector,
                "lookup",
            ));
        }
        for step in &flow.steps {
            let (name, pos) = step.account();
            let (connector, role) = match &step.kind {
                crate::steps::StepKind::Lookup(l) => (l.connector, "lookup"),
                crate::steps::StepKind::Action { receiver, .. } => (receiver.connector, "receiver"),
            };
            if !uses.iter().any(|u| u.0 == name && u.1 == pos) {
                uses.push((name, pos, connector, role));
            }
        }
        for (name, pos, want, role) in uses {
            problems.extend(account_problems(project, &flow.file, name, pos, want, role));
        }
    }
    problems
}

/// What is wrong with a flow's use of account `name` for a `want` connector.
fn account_problems(
    project: &Project,
    file: &Path,
    name: &str,
    pos: Pos,
    want: &str,
    role: &str,
) -> Vec<Diagnostic> {
    let at = |message: String| Diagnostic::new(file, pos, message);
    if let Some(account) = project.accounts.get(name) {
        let have = account.connector;
        if have == want {
            return Vec::new();
        }
        return vec![at(format!(
            "account `{name}` is a `{have}` account, but this {role} is `{want}`"
        ))
        .with_hint(format!("use an account whose connector is `{want}`"))];
    }
    if let Some(account_problems) = project.accounts.invalid.get(name) {
        // The account's own problems travel with the flow, so `run` can show them.
        let mut all = account_problems.clone();
        all.push(at(format!(
            "account `{name}` has errors in {}",
            project.accounts.file.display()
        )));
        return all;
    }
    let file = project.accounts.file.display();
    if !project.accounts.file.exists() {
        return vec![at(format!(
            "unknown account `{name}`: there is no accounts file ({file})"
        ))
        .with_hint(format!(
            "create {file} with `{name}:` and `connector: {want}` (`switchboard connectors {want}` lists its fields), or pass --accounts FILE"
        ))];
    }
    let hint = match suggest::did_you_mean(name, project.accounts.names()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("add `{name}:` to {file}"),
    };
    vec![at(format!("unknown account `{name}`")).with_hint(hint)]
}

fn after_of(flow: &Flow) -> Option<&crate::schedule::After> {
    match &flow.schedule.as_ref()?.rule {
        ScheduleRule::After(after) => Some(after),
        _ => None,
    }
}

/// `alerts.to` naming what is not an alert flow.
fn alert_problems(project: &Project) -> Vec<(String, Diagnostic)> {
    project
        .flows
        .values()
        .filter_map(|flow| flow.alerts.as_ref().map(|a| (flow, a)))
        .flat_map(|(flow, alerts)| {
            alert_targets(project, &flow.file, alerts)
                .into_iter()
                .map(|d| (flow.name.clone(), d))
        })
        .collect()
}

/// The names of `alerts.to` (in `file`) that are not valid alert flows.
fn alert_targets(project: &Project, file: &Path, alerts: &crate::Alerts) -> Vec<Diagnostic> {
    let alert_flows: Vec<&str> = project
        .flows
        .values()
        .filter(|f| f.source.connector == "alerts")
        .map(|f| f.name.as_str())
        .collect();
    alerts
        .to
        .iter()
        .filter_map(|(name, pos)| {
            let problem = match project.flows.get(name) {
                Some(flow) if flow.source.connector == "alerts" => return None,
                Some(_) => format!("`alerts.to` names `{name}`, which is not an alert flow (its source is not `connector: alerts`)"),
                None if project.invalid.contains_key(name) => {
                    format!("`alerts.to` names `{name}`, which is invalid: its alerts would go nowhere")
                }
                None => format!("`alerts.to` names unknown flow `{name}`"),
            };
            let hint = if alert_flows.is_empty() {
                "write an alert flow: `source: {connector: alerts}` with any receiver, e.g. `http` to a Slack webhook".to_string()
            } else {
                suggest::hint(name, &alert_flows)
            };
            Some(Diagnostic::new(file, *pos, problem).with_hint(hint))
        })
        .collect()
}

/// `after` references to unknown flows, to the flow itself, and cycles.
fn after_problems(project: &Project) -> Vec<(String, Diagnostic)> {
    let all: BTreeSet<String> = project.names().into_iter().map(String::from).collect();
    let mut problems: Vec<(String, Diagnostic)> = Vec::new();
    for flow in project.flows.values() {
        let Some(after) = after_of(flow) else {
            continue;
        };
        if after.flow == flow.name {
            problems.push((
                flow.name.clone(),
                Diagnostic::new(
                    &flow.file,
                    after.pos,
                    format!("flow `{}` runs after itself", flow.name),
                ),
            ));
        } else if !all.contains(&after.flow) {
            let hint = suggest::did_you_mean(&after.flow, all.iter().map(String::as_str))
                .map(|b| format!("did you mean `{b}`?"))
                .unwrap_or_else(|| "name a flow in this directory".into());
            problems.push((
                flow.name.clone(),
                Diagnostic::new(
                    &flow.file,
                    after.pos,
                    format!("`after` names unknown flow `{}`", after.flow),
                )
                .with_hint(hint),
            ));
        }
    }
    // Cycles: follow each flow's `after` chain; a chain that comes back is a cycle.
    for flow in project.flows.values() {
        let mut chain = vec![flow.name.clone()];
        let mut current = flow;
        while let Some(after) = after_of(current) {
            if after.flow == flow.name && chain.len() > 1 {
                chain.push(flow.name.clone());
                let pos = after_of(flow).map(|a| a.pos).unwrap_or_default();
                problems.push((
                    flow.name.clone(),
                    Diagnostic::new(
                        &flow.file,
                        pos,
                        format!("`after` forms a cycle: {}", chain.join(" -> ")),
                    )
                    .with_hint(
                        "a chain of `after` flows must start at a flow with another schedule",
                    ),
                ));
                break;
            }
            if chain.contains(&after.flow) {
                break; // a cycle not through this flow: reported from its own members
            }
            let Some(next) = project.flows.get(&after.flow) else {
                break;
            };
            chain.push(next.name.clone());
            current = next;
        }
    }
    problems
}
