//! The catalogue: the registry ([`crate::CONNECTORS`]) served to the rest — `flows`
//! parses connector sections through it ([`flows::Catalogue`]), the binary builds live
//! sources, receivers, look-ups and push intakes through it, and the checks of a flow
//! that need a connector run here. It names no connector: each is asked by its name.

use std::sync::Arc;

use engine::Mapper;
use flows::yaml::Node;
use flows::{
    AccountSpec, Accounts, Cx, Diagnostic, Flow, LookupSpec, Pos, Project, ReceiverSpec, Role,
    SourceSpec,
};

pub mod schema;

use crate::card::Card;
use crate::connector::BuildError;
use crate::connector::{connector, Connector};
use crate::CONNECTORS;

/// Every connector's card, in the order people see them.
pub fn cards() -> impl Iterator<Item = &'static Card> {
    CONNECTORS.iter().map(|c| c.card())
}

/// The stand-ins `sandbox` and `quickstart` serve: one per remote service.
pub fn standins() -> impl Iterator<Item = &'static crate::standin::Standin> {
    CONNECTORS.iter().filter_map(|c| c.standin())
}

/// The card of connector `name`.
pub fn card(name: &str) -> Option<&'static Card> {
    connector(name).map(|c| c.card())
}

/// Whether a source of this connector is pushed to the daemon (no schedule needed)
/// rather than read on a schedule.
pub fn pushes(name: &str) -> bool {
    connector(name).is_some_and(|c| c.pushes())
}

/// The columns of a sample `file` for a new flow whose source is connector `name`
/// (`None`: that source reads no file).
pub fn sample_columns(name: &str, file: &std::path::Path) -> Option<Result<Vec<String>, String>> {
    connector(name).and_then(|c| c.sample_columns(file))
}

/// The connector a section names, or the problem the caller reports.
fn named_connector(
    cx: &Cx<'_>,
    name: &str,
    pos: Pos,
    role: &str,
) -> Result<&'static dyn Connector, Diagnostic> {
    connector(name).ok_or_else(|| cx.problem(pos, format!("unknown {role} connector `{name}`")))
}

/// The catalogue `flows` parses connector sections with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Catalogue;

impl flows::Catalogue for Catalogue {
    fn check_flow(&self, flow: &Flow) -> Vec<Diagnostic> {
        guarded(flow)
    }

    fn connectors(&self, role: Role) -> Vec<&'static str> {
        cards()
            .filter(|c| match role {
                Role::Source => c.source.is_some(),
                Role::Receiver => !c.actions.is_empty(),
                Role::Lookup => !c.lookups.is_empty(),
                Role::Account => c.account.is_some(),
            })
            .map(|c| c.name)
            .collect()
    }

    fn actions(&self, role: Role, connector: &str) -> Option<Vec<&'static str>> {
        let card = card(connector)?;
        let actions = match role {
            Role::Receiver => card.actions,
            Role::Lookup => card.lookups,
            Role::Source | Role::Account => return None,
        };
        (!actions.is_empty()).then(|| actions.iter().map(|a| a.name).collect())
    }

    fn example(&self, role: Role) -> &'static str {
        match role {
            Role::Source => "{connector: csv, path: orders.csv}",
            Role::Receiver => "{connector: 8x8, action: send_sms, account: my-8x8}",
            Role::Lookup => {
                "{connector: cinnox, account: main, action: get_contact, query: \"{{name}}\"}"
            }
            Role::Account => {
                "{connector: 8x8, subaccount_id: shop_main, api_key: ${EIGHTX8_API_KEY}}"
            }
        }
    }

    fn source(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<SourceSpec, Diagnostic> {
        named_connector(cx, connector, pos, "source")?.source(cx, rest, pos)
    }

    fn receiver(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        action: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<ReceiverSpec, Diagnostic> {
        named_connector(cx, connector, pos, "receiver")?.receiver(cx, action, rest, pos)
    }

    fn lookup(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        action: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<LookupSpec, Diagnostic> {
        match crate::connector::connector(connector) {
            Some(c) => c.lookup(cx, action, rest, pos),
            None => Err(cx.problem(pos, format!("`{connector}` has no look-ups"))),
        }
    }

    fn account(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        name: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<AccountSpec, Vec<Diagnostic>> {
        let parsed = match crate::connector::connector(connector) {
            Some(c) => c.account(cx, name, rest, pos),
            None => {
                Err(vec![cx.problem(
                    pos,
                    format!("unknown account connector `{connector}`"),
                )])
            }
        };
        parsed.map_err(|problems| fields_of_other_connectors(problems, connector))
    }
}

/// An unknown key that another connector's accounts take says so: the account's
/// `connector:` is likely the mistake (`subaccount_id` in a `textrequest` account).
fn fields_of_other_connectors(problems: Vec<Diagnostic>, connector: &str) -> Vec<Diagnostic> {
    problems
        .into_iter()
        .map(|mut problem| {
            let key = problem
                .message
                .strip_prefix("unknown key `")
                .and_then(|rest| rest.split('`').next())
                .map(String::from);
            let Some(key) = key else {
                return problem;
            };
            let owners: Vec<&str> = cards()
                .filter(|card| card.name != connector)
                .filter(|card| {
                    card.account
                        .as_ref()
                        .is_some_and(|part| part.fields().iter().any(|f| f.name == key))
                })
                .map(|card| card.name)
                .collect();
            if !owners.is_empty() {
                let owners = owners
                    .iter()
                    .map(|o| format!("`{o}`"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                problem.message = format!(
                    "{}: `{key}` belongs to a {owners} account, and this one says `connector: {connector}`",
                    problem.message
                );
            }
            problem
        })
        .collect()
}

/// The live source of a flow that fetches its records; `None` for push sources, whose
/// records come from the engine's queue, filled by the daemon.
pub fn build_source(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Option<Box<dyn engine::Source>>, BuildError> {
    of(flow.source.connector)?.build_source(flow, accounts)
}

/// The live receiver of a flow, with its account's credentials.
pub fn build_receiver(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Arc<dyn engine::Receiver>, BuildError> {
    of(flow.receiver.connector)?.build_receiver(flow, accounts)
}

/// The flow's look-up, if it has one.
pub fn build_lookup(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Option<Arc<dyn engine::Lookup>>, BuildError> {
    match &flow.lookup {
        Some(lookup) => of(lookup.connector)?.build_lookup(flow, accounts).map(Some),
        None => Ok(None),
    }
}

/// A flow's push source — how it takes what services push to it — if it has one; `Err`
/// when it has one but its account is unusable.
pub fn build_push(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Option<Arc<dyn crate::push::Push>>, BuildError> {
    of(flow.source.connector)?.build_push(flow, accounts)
}

/// The connector a parsed flow names.
fn of(name: &str) -> Result<&'static dyn Connector, BuildError> {
    connector(name)
        .ok_or_else(|| BuildError::Refused(format!("`{name}` is no connector of this catalogue")))
}

/// A source's fields plus the look-up's result, which joins each record.
fn with_lookup(flow: &Flow, mut fields: Vec<String>) -> Vec<String> {
    if let Some(lookup) = &flow.lookup {
        fields.push(lookup.as_name.clone());
    }
    fields
}

/// Checks of a valid flow that need its connectors: templates compile, templates name
/// only fields the source has (where knowable), key columns exist.
pub fn check_flow(flow: &Flow) -> Vec<Diagnostic> {
    if !flow.steps.is_empty() {
        return check_steps(flow);
    }
    let mapper = match Mapper::new(flow) {
        Ok(mapper) => mapper,
        Err(problems) => return problems,
    };
    let mut problems = Vec::new();
    if let Some(lookup) = &flow.lookup {
        if let Err(problem) = engine::template::check(&lookup.query) {
            problems.push(
                Diagnostic::new(
                    &flow.file,
                    lookup.query_pos,
                    format!("the template of `lookup.query` {problem}"),
                )
                .with_hint(problem.hint),
            );
        }
    }
    let header = connector(flow.source.connector)
        .and_then(|c| c.source_header(flow))
        // Pushed events and remote sheets: nothing known without the network
        // (validation stays offline); templates compiled is all.
        .map(|h| (h.read, h.pos));
    match header {
        Some((Ok((problem, header)), pos)) => {
            if let Some(problem) = problem {
                problems.push(Diagnostic::new(&flow.file, pos, problem));
            }
            // A look-up's answer under a column's name would hide that column.
            if let Some(lookup) = flow.lookup.as_ref().filter(|l| header.contains(&l.as_name)) {
                problems.push(
                    Diagnostic::new(
                        &flow.file,
                        lookup.pos,
                        format!(
                            "the look-up's answer goes under `{}`, which is also a column of the source: the column would be hidden",
                            lookup.as_name
                        ),
                    )
                    .with_hint("give the answer another name with `as:`, e.g. `as: found`"),
                );
            }
            // An empty file has no header to check the map against (said once, above).
            if !header.is_empty() {
                let open: Vec<String> = flow.lookup.iter().map(|l| l.as_name.clone()).collect();
                problems.extend(filter_fields(flow, &header, &open));
                problems.extend(mapper.check_fields(flow, &with_lookup(flow, header), &open));
            }
        }
        Some((Err(e), pos)) => problems.push(
            Diagnostic::new(&flow.file, pos, e)
                .with_hint("`path` is relative to the flow file's directory"),
        ),
        None => {}
    }
    problems
}

/// [`check_flow`] for a flow with `steps:`: each step's templates compile and name only
/// the source's fields (where knowable) and `steps.…` (checked when the file was read).
fn check_steps(flow: &Flow) -> Vec<Diagnostic> {
    let header = connector(flow.source.connector)
        .and_then(|c| c.source_header(flow))
        .and_then(|h| h.read.ok())
        .map(|(_, header)| header)
        .filter(|header| !header.is_empty());
    let open = vec!["steps".to_string()];
    let mut problems = Vec::new();
    if let Some(header) = &header {
        problems.extend(filter_fields(flow, header, &[]));
    }
    for step in &flow.steps {
        let one = flow.step_flow(step);
        if let flows::steps::StepKind::Lookup(lookup) = &step.kind {
            if let Err(problem) = engine::template::check(&lookup.query) {
                problems.push(
                    Diagnostic::new(
                        &flow.file,
                        lookup.query_pos,
                        format!("the template of step `{}`'s `query` {problem}", step.name),
                    )
                    .with_hint(problem.hint),
                );
            }
            continue;
        }
        let mapper = match Mapper::new(&one) {
            Ok(mapper) => mapper,
            Err(found) => {
                problems.extend(found);
                continue;
            }
        };
        if let Some(header) = &header {
            let mut known = header.clone();
            known.push("steps".into());
            problems.extend(mapper.check_fields(&one, &known, &open));
        }
    }
    problems
}

/// The fields `filter:` tests that the source's header lacks (a look-up's answer, under
/// its `as` name, holds whatever the service gives).
fn filter_fields(flow: &Flow, header: &[String], open: &[String]) -> Vec<Diagnostic> {
    let Some(filter) = &flow.filter else {
        return Vec::new();
    };
    let names: Vec<&str> = header.iter().map(String::as_str).collect();
    filter
        .fields()
        .into_iter()
        .filter(|(field, _)| {
            let first = field.split('.').next().unwrap_or(field);
            !names.contains(field) && !names.contains(&first) && !open.iter().any(|o| o == first)
        })
        .map(|(field, pos)| {
            Diagnostic::new(
                &flow.file,
                pos,
                format!("`filter` tests `{field}`, which the source has no column for"),
            )
            .with_hint(flows::hint(field, &names))
        })
        .collect()
}

/// [`check_flow`], with a panic in it (a bug) reported as that flow's problem rather than
/// taking every other flow down with it.
fn guarded(flow: &Flow) -> Vec<Diagnostic> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_flow(flow))).unwrap_or_else(
        |panic| {
            vec![Diagnostic::new(
                &flow.file,
                Pos::new(1, 1),
                format!(
                    "internal error while checking this flow: {}",
                    flows::panic_message(panic.as_ref())
                ),
            )
            .with_hint("the other flows are not affected; please report this with the file")]
        },
    )
}

/// Load a flows directory with this catalogue and run every check, connectors' included.
pub fn load_project(options: &flows::LoadOptions) -> Project {
    let options = flows::LoadOptions {
        check_flows: true,
        ..options.clone()
    };
    flows::load_project(&options, &Catalogue)
}

#[cfg(test)]
mod tests;
