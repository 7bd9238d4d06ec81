//! From configuration to live connectors: the one place that matches on the closed sets
//! of sources, receivers and accounts. Also the checks that need a connector's help
//! (templates against a CSV header, key columns).

use std::sync::Arc;

use engine::{Mapper, Receiver, Source};
use flows::{AccountKind, Accounts, Diagnostic, Flow, Project, ReceiverKind, SourceConfig};

use crate::aranda::{Action as ArandaAction, Aranda};
use crate::csv::CsvFile;
use crate::eightxeight::EightXEight;
use crate::google_sheets::Sheet;
use crate::httpreq::HttpRequest;
use crate::textrequest::{Action, TextRequest};
use crate::xlsx::XlsxFile;

/// The live source of a flow that fetches its records; `None` for push sources
/// (webhooks), whose records come from the engine's queue, filled by the daemon.
pub fn build_source(flow: &Flow, accounts: &Accounts) -> Result<Option<Box<dyn Source>>, String> {
    Ok(match &flow.source {
        SourceConfig::Csv(config) => Some(Box::new(CsvFile::new(config))),
        SourceConfig::Xlsx(config) => Some(Box::new(XlsxFile::new(config))),
        SourceConfig::GoogleSheets(config) => {
            match accounts.get(&config.account).map(|a| &a.kind) {
                Some(AccountKind::GoogleSheets(account)) => {
                    Some(Box::new(Sheet::new(account, config)?))
                }
                _ => {
                    return Err(format!(
                        "account `{}` is not a google_sheets account",
                        config.account
                    ))
                }
            }
        }
        SourceConfig::Webhook(_) | SourceConfig::Cinnox(_) | SourceConfig::TextRequest(_) => None,
    })
}

/// The live receiver of a flow, with its account's credentials.
pub fn build_receiver(flow: &Flow, accounts: &Accounts) -> Result<Arc<dyn Receiver>, String> {
    let name = &flow.receiver.account;
    let account = accounts
        .get(name)
        .ok_or_else(|| format!("unknown account `{name}`"))?;
    let timeout = flow.delivery.timeout;
    match (&flow.receiver.kind, &account.kind) {
        (ReceiverKind::EightXEightSendSms(sms), AccountKind::EightXEight(a)) => {
            let client = EightXEight::new(name, a, timeout)?
                .with_batch(sms.batch.unwrap_or(1))
                .with_max_parts(sms.max_parts.unwrap_or(crate::sms::DEFAULT_MAX_PARTS));
            Ok(Arc::new(client))
        }
        (ReceiverKind::TextRequestSendMessage(d), AccountKind::TextRequest(a)) => Ok(Arc::new(
            TextRequest::new(name, a, d.dashboard_id, Action::SendMessage, timeout)?,
        )),
        (ReceiverKind::TextRequestUpsertContact(d), AccountKind::TextRequest(a)) => Ok(Arc::new(
            TextRequest::new(name, a, d.dashboard_id, Action::UpsertContact, timeout)?,
        )),
        (ReceiverKind::ArandaCreateCase, AccountKind::Aranda(a)) => Ok(Arc::new(Aranda::new(
            name,
            a,
            ArandaAction::CreateCase,
            timeout,
        )?)),
        (ReceiverKind::ArandaUpdateCase, AccountKind::Aranda(a)) => Ok(Arc::new(Aranda::new(
            name,
            a,
            ArandaAction::UpdateCase,
            timeout,
        )?)),
        (ReceiverKind::ArandaAddNote, AccountKind::Aranda(a)) => Ok(Arc::new(Aranda::new(
            name,
            a,
            ArandaAction::AddNote,
            timeout,
        )?)),
        (ReceiverKind::CinnoxImStaff | ReceiverKind::CinnoxImRoom, AccountKind::Cinnox(a)) => {
            Ok(Arc::new(crate::cinnox::MessagePush::new(name, a, timeout)?))
        }
        (ReceiverKind::CinnoxSendSms(sms), AccountKind::Cinnox(a)) => Ok(Arc::new(
            crate::cinnox::CinnoxAction::new(
                name,
                a,
                crate::cinnox::Action::SendSms {
                    path: sms.path.clone(),
                },
                timeout,
            )?
            .with_max_parts(sms.max_parts.unwrap_or(crate::sms::DEFAULT_MAX_PARTS)),
        )),
        (ReceiverKind::CinnoxCreateContact, AccountKind::Cinnox(a)) => {
            Ok(Arc::new(crate::cinnox::CinnoxAction::new(
                name,
                a,
                crate::cinnox::Action::CreateContact,
                timeout,
            )?))
        }
        (ReceiverKind::CinnoxUpdateContact, AccountKind::Cinnox(a)) => {
            Ok(Arc::new(crate::cinnox::CinnoxAction::new(
                name,
                a,
                crate::cinnox::Action::UpdateContact,
                timeout,
            )?))
        }
        (ReceiverKind::HttpRequest, AccountKind::Http(a)) => {
            Ok(Arc::new(HttpRequest::new(a, timeout)?))
        }
        (kind, other) => Err(format!(
            "account `{name}` is a `{}` account, but the receiver is `{}`",
            other.connector(),
            kind.connector()
        )),
    }
}

/// A source's fields plus the look-up's result, which joins each record.
fn with_lookup(flow: &Flow, mut fields: Vec<String>) -> Vec<String> {
    if let Some(lookup) = &flow.lookup {
        fields.push(lookup.as_name.clone());
    }
    fields
}

/// The flow's look-up, if it has one.
pub fn build_lookup(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Option<Arc<dyn engine::Lookup>>, String> {
    let Some(lookup) = &flow.lookup else {
        return Ok(None);
    };
    let account = accounts
        .get(&lookup.account)
        .ok_or_else(|| format!("unknown account `{}`", lookup.account))?;
    let timeout = flow.delivery.timeout;
    match (&account.kind, lookup.action.as_str()) {
        (AccountKind::Cinnox(a), action) => {
            let find = match action {
                "get_enquiry" => crate::cinnox::Find::Enquiry,
                "list_numbers" => crate::cinnox::Find::Numbers {
                    path: lookup
                        .path
                        .clone()
                        .unwrap_or_else(|| crate::cinnox::DEFAULT_NUMBERS_PATH.into()),
                },
                _ => crate::cinnox::Find::Contact,
            };
            Ok(Some(Arc::new(crate::cinnox::CinnoxLookup::new(
                &lookup.account,
                a,
                find,
                timeout,
            )?)))
        }
        (other, _) => Err(format!(
            "account `{}` is a `{}` account, but the look-up is `{}`",
            lookup.account,
            other.connector(),
            lookup.connector
        )),
    }
}

/// Checks of a valid flow that need its connectors: templates compile, templates name
/// only fields the source has (where knowable), key columns exist.
pub fn check_flow(flow: &Flow) -> Vec<Diagnostic> {
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
                    lookup.pos,
                    format!("the template of `lookup.query` {problem}"),
                )
                .with_hint(problem.hint),
            );
        }
    }
    match &flow.source {
        SourceConfig::Csv(config) => {
            let csv = CsvFile::new(config);
            match csv.header() {
                Ok(header) => {
                    if let Some(problem) = csv.header_problem(&header) {
                        problems.push(Diagnostic::new(&flow.file, config.pos, problem));
                    }
                    problems.extend(mapper.check_fields(flow, &with_lookup(flow, header)));
                }
                Err(e) => problems.push(
                    Diagnostic::new(&flow.file, config.pos, e.0)
                        .with_hint("`path` is relative to the flow file's directory"),
                ),
            }
        }
        SourceConfig::Xlsx(config) => {
            let sheet = XlsxFile::new(config);
            match sheet.header() {
                Ok(header) => {
                    if let Some(problem) = sheet.header_problem(&header) {
                        problems.push(Diagnostic::new(&flow.file, config.pos, problem));
                    }
                    problems.extend(mapper.check_fields(flow, &with_lookup(flow, header)));
                }
                Err(e) => problems.push(
                    Diagnostic::new(&flow.file, config.pos, e.0)
                        .with_hint("`path` is relative to the flow file's directory"),
                ),
            }
        }
        // Pushed events and remote sheets: nothing known without the network
        // (validation stays offline); templates compiled is all.
        SourceConfig::Webhook(_)
        | SourceConfig::GoogleSheets(_)
        | SourceConfig::Cinnox(_)
        | SourceConfig::TextRequest(_) => {}
    }
    problems
}

/// Run [`check_flow`] on every valid flow of a project, moving failures to invalid.
pub fn check_project(project: &mut Project) {
    let results: Vec<(String, Vec<Diagnostic>)> = project
        .flows
        .values()
        .map(|flow| (flow.name.clone(), guarded(flow)))
        .collect();
    for (name, problems) in results {
        project.mark_invalid(&name, problems);
    }
}

/// [`check_flow`], with a panic in it (a bug) reported as that flow's problem rather than
/// taking every other flow down with it.
fn guarded(flow: &Flow) -> Vec<Diagnostic> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_flow(flow))).unwrap_or_else(
        |panic| {
            vec![Diagnostic::new(
                &flow.file,
                flows::Pos::new(1, 1),
                format!(
                    "internal error while checking this flow: {}",
                    flows::panic_message(panic.as_ref())
                ),
            )
            .with_hint("the other flows are not affected; please report this with the file")]
        },
    )
}
