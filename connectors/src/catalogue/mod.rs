//! The catalogue: every connector, in one closed enum per role it plays — the registry.
//! Adding a connector is one folder and one variant per role. This file is the one
//! place that matches on them: it parses their sections for `flows` (through
//! [`flows::Catalogue`]), reads them back from a flow, and builds live sources,
//! receivers and look-ups, account checks and checks of a flow that need a connector.

use std::sync::Arc;

use engine::Mapper;
use flows::yaml::Node;
use flows::{
    AccountSpec, Accounts, Cx, Diagnostic, Flow, LookupSpec, Pos, Project, ReceiverSpec, Role,
    Section, SourceSpec,
};

pub mod card;
pub mod schema;

use card::Card;

use crate::{
    alerts, aranda, cinnox, csv, eightxeight, google_sheets, httpreq, smtp, textrequest, webhook,
    xlsx,
};

/// Where a flow's records come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Csv(csv::config::Source),
    Xlsx(xlsx::config::Source),
    GoogleSheets(google_sheets::config::Source),
    Webhook(webhook::Source),
    Cinnox(cinnox::config::Source),
    TextRequest(textrequest::config::Source),
    Aranda(aranda::config::Source),
    Alerts(alerts::Source),
}

/// Where a flow's records go.
#[derive(Debug, Clone, PartialEq)]
pub enum Receiver {
    EightXEight(eightxeight::config::Receiver),
    TextRequest(textrequest::config::Receiver),
    Aranda(aranda::config::Receiver),
    Http(httpreq::config::Receiver),
    Cinnox(cinnox::config::Receiver),
    GoogleSheets(google_sheets::config::Receiver),
    Smtp(smtp::config::Receiver),
}

/// What a flow asks a service about each record.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Cinnox(cinnox::config::Lookup),
    Aranda(aranda::config::Lookup),
    TextRequest(textrequest::config::Lookup),
    GoogleSheets(google_sheets::config::Lookup),
    EightXEight(eightxeight::config::Lookup),
}

/// A named account of `accounts.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub enum Account {
    EightXEight(eightxeight::config::Account),
    TextRequest(textrequest::config::Account),
    Aranda(aranda::config::Account),
    Http(httpreq::config::Account),
    GoogleSheets(google_sheets::config::Account),
    Cinnox(cinnox::config::Account),
    Webhook(webhook::Account),
    Smtp(smtp::config::Account),
}

/// Every connector's card, in the order people see them.
pub const CARDS: &[&Card] = &[
    &csv::config::CARD,
    &xlsx::config::CARD,
    &google_sheets::config::CARD,
    &webhook::config::CARD,
    &cinnox::config::CARD,
    &textrequest::config::CARD,
    &eightxeight::config::CARD,
    &aranda::config::CARD,
    &httpreq::config::CARD,
    &smtp::config::CARD,
    &alerts::CARD,
];

/// The stand-ins `sandbox` and `quickstart` serve: one per remote service.
pub const STANDINS: &[&crate::standin::Standin] = &[
    &eightxeight::standin::STANDIN,
    &textrequest::standin::STANDIN,
    &aranda::standin::STANDIN,
    &cinnox::standin::STANDIN,
    &google_sheets::standin::STANDIN,
    &smtp::standin::STANDIN,
];

/// The card of connector `name`.
pub fn card(name: &str) -> Option<&'static Card> {
    CARDS.iter().copied().find(|c| c.name == name)
}

/// Whether a source of this connector is pushed to the daemon (no schedule needed)
/// rather than read on a schedule.
pub fn pushes(connector: &str) -> bool {
    matches!(connector, WEBHOOK | CINNOX | TEXTREQUEST | ALERTS)
}

/// Connector names, each taken from its card.
pub mod names {
    use crate::*;
    pub const CSV: &str = csv::config::CARD.name;
    pub const XLSX: &str = xlsx::config::CARD.name;
    pub const GOOGLE_SHEETS: &str = google_sheets::config::CARD.name;
    pub const WEBHOOK: &str = webhook::config::CARD.name;
    pub const CINNOX: &str = cinnox::config::CARD.name;
    pub const TEXTREQUEST: &str = textrequest::config::CARD.name;
    pub const EIGHTXEIGHT: &str = eightxeight::config::CARD.name;
    pub const ARANDA: &str = aranda::config::CARD.name;
    pub const HTTP: &str = httpreq::config::CARD.name;
    pub const ALERTS: &str = alerts::CARD.name;
    pub const SMTP: &str = smtp::config::CARD.name;
}

use names::*;

/// The catalogue `flows` parses connector sections with.
#[derive(Debug, Clone, Copy, Default)]
pub struct Catalogue;

impl flows::Catalogue for Catalogue {
    fn check_flow(&self, flow: &Flow) -> Vec<Diagnostic> {
        guarded(flow)
    }

    fn connectors(&self, role: Role) -> Vec<&'static str> {
        CARDS
            .iter()
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
        let source = match connector {
            CSV => Source::Csv(csv::config::source(cx, rest, pos)?),
            XLSX => Source::Xlsx(xlsx::config::source(cx, rest, pos)?),
            GOOGLE_SHEETS => Source::GoogleSheets(google_sheets::config::source(cx, rest, pos)?),
            WEBHOOK => Source::Webhook(webhook::config::source(cx, rest, pos)?),
            CINNOX => Source::Cinnox(cinnox::config::source(cx, rest, pos)?),
            TEXTREQUEST => Source::TextRequest(textrequest::config::source(cx, rest, pos)?),
            ARANDA => Source::Aranda(aranda::config::source(cx, rest, pos)?),
            ALERTS => Source::Alerts(alerts::source(cx, rest, pos)?),
            other => return Err(cx.problem(pos, format!("unknown source connector `{other}`"))),
        };
        let (account, backlog, push) = match &source {
            Source::Csv(c) => (None, c.backlog, false),
            Source::Xlsx(x) => (None, x.backlog, false),
            Source::GoogleSheets(g) => (Some((g.account.clone(), g.pos)), g.backlog, false),
            Source::Webhook(w) => (
                w.account.clone().map(|a| (a, w.pos)),
                flows::Backlog::Send,
                true,
            ),
            Source::Cinnox(c) => (Some((c.account.clone(), c.pos)), flows::Backlog::Send, true),
            Source::TextRequest(t) if t.reads.is_some() => {
                (Some((t.account.clone(), t.pos)), t.backlog, false)
            }
            Source::TextRequest(t) => {
                (Some((t.account.clone(), t.pos)), flows::Backlog::Send, true)
            }
            Source::Aranda(a) => (Some((a.account.clone(), a.pos)), a.backlog, false),
            // Alerts are queued by the daemon, like pushed events, and all are sent.
            Source::Alerts(_) => (None, flows::Backlog::Send, true),
        };
        let keyed_by = match &source {
            Source::Csv(c) => Some(crate::rows::keyed_by(&c.key)),
            Source::Xlsx(x) => Some(crate::rows::keyed_by(&x.key)),
            Source::GoogleSheets(g) => Some(crate::rows::keyed_by(&g.key)),
            _ => None,
        };
        Ok(SourceSpec {
            account,
            backlog,
            push,
            keyed_by,
            section: Section::new(source),
        })
    }

    fn receiver(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        action: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<ReceiverSpec, Diagnostic> {
        let receiver = match connector {
            EIGHTXEIGHT => {
                Receiver::EightXEight(eightxeight::config::receiver(cx, action, rest, pos)?)
            }
            TEXTREQUEST => {
                Receiver::TextRequest(textrequest::config::receiver(cx, action, rest, pos)?)
            }
            ARANDA => Receiver::Aranda(aranda::config::receiver(cx, action, rest, pos)?),
            HTTP => Receiver::Http(httpreq::config::receiver(cx, action, rest, pos)?),
            CINNOX => Receiver::Cinnox(cinnox::config::receiver(cx, action, rest, pos)?),
            GOOGLE_SHEETS => {
                Receiver::GoogleSheets(google_sheets::config::receiver(cx, action, rest, pos)?)
            }
            SMTP => Receiver::Smtp(smtp::config::receiver(cx, action, rest, pos)?),
            other => return Err(cx.problem(pos, format!("unknown receiver connector `{other}`"))),
        };
        Ok(ReceiverSpec {
            fields: receiver.fields(),
            section: Section::new(receiver),
        })
    }

    fn lookup(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        action: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<LookupSpec, Diagnostic> {
        let lookup = match connector {
            CINNOX => Lookup::Cinnox(cinnox::config::lookup(cx, action, rest, pos)?),
            ARANDA => Lookup::Aranda(aranda::config::lookup(cx, action, rest, pos)?),
            TEXTREQUEST => Lookup::TextRequest(textrequest::config::lookup(cx, action, rest, pos)?),
            GOOGLE_SHEETS => {
                Lookup::GoogleSheets(google_sheets::config::lookup(cx, action, rest, pos)?)
            }
            EIGHTXEIGHT => Lookup::EightXEight(eightxeight::config::lookup(cx, action, rest, pos)?),
            other => return Err(cx.problem(pos, format!("`{other}` has no look-ups"))),
        };
        Ok(LookupSpec {
            section: Section::new(lookup),
        })
    }

    fn account(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        name: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<AccountSpec, Vec<Diagnostic>> {
        let account = account_section(cx, connector, name, rest, pos)
            .map_err(|problems| fields_of_other_connectors(problems, connector))?;
        Ok(AccountSpec {
            secrets: account.secrets(),
            section: Section::new(account),
        })
    }
}

/// An account section, parsed by its connector.
fn account_section(
    cx: &Cx<'_>,
    connector: &str,
    name: &str,
    rest: &Node,
    pos: Pos,
) -> Result<Account, Vec<Diagnostic>> {
    Ok(match connector {
        EIGHTXEIGHT => Account::EightXEight(eightxeight::config::account(cx, name, rest)?),
        TEXTREQUEST => Account::TextRequest(textrequest::config::account(cx, name, rest)?),
        ARANDA => Account::Aranda(aranda::config::account(cx, name, rest)?),
        HTTP => Account::Http(httpreq::config::account(cx, name, rest)?),
        GOOGLE_SHEETS => {
            Account::GoogleSheets(google_sheets::config::account(cx, name, rest, pos)?)
        }
        CINNOX => Account::Cinnox(cinnox::config::account(cx, name, rest)?),
        WEBHOOK => Account::Webhook(webhook::config::account(cx, name, rest)?),
        SMTP => Account::Smtp(smtp::config::account(cx, name, rest)?),
        other => {
            return Err(vec![
                cx.problem(pos, format!("unknown account connector `{other}`"))
            ])
        }
    })
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
            let owners: Vec<&str> = CARDS
                .iter()
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

impl Receiver {
    pub fn fields(&self) -> &'static [flows::FieldSpec] {
        match self {
            Receiver::EightXEight(r) => r.fields(),
            Receiver::TextRequest(r) => r.fields(),
            Receiver::Aranda(r) => r.fields(),
            Receiver::Http(r) => r.fields(),
            Receiver::Cinnox(r) => r.fields(),
            Receiver::GoogleSheets(r) => r.fields(),
            Receiver::Smtp(r) => r.fields(),
        }
    }
}

impl Account {
    pub fn secrets(&self) -> Vec<flows::Secret> {
        match self {
            Account::EightXEight(a) => a.secrets(),
            Account::TextRequest(a) => a.secrets(),
            Account::Aranda(a) => a.secrets(),
            Account::Http(a) => a.secrets(),
            Account::GoogleSheets(a) => a.secrets(),
            Account::Cinnox(a) => a.secrets(),
            Account::Webhook(a) => a.secrets(),
            Account::Smtp(a) => a.secrets(),
        }
    }
}

/// A flow's source as its connector parsed it.
pub fn source_of(flow: &Flow) -> Option<&Source> {
    flow.source.section.get()
}

/// A flow's receiver as its connector parsed it.
pub fn receiver_of(flow: &Flow) -> Option<&Receiver> {
    flow.receiver.section.get()
}

/// A flow's look-up as its connector parsed it.
pub fn lookup_of(flow: &Flow) -> Option<&Lookup> {
    flow.lookup.as_ref().and_then(|l| l.section.get())
}

/// An account as its connector parsed it.
pub fn account_of(account: &flows::Account) -> Option<&Account> {
    account.section.get()
}

/// The account named `name`, as its connector parsed it.
fn named<'a>(accounts: &'a Accounts, name: &str) -> Result<&'a Account, String> {
    accounts
        .get(name)
        .and_then(account_of)
        .ok_or_else(|| format!("unknown account `{name}`"))
}

fn wrong_account(name: &str, account: &Account, role: &str, connector: &str) -> String {
    format!(
        "account `{name}` is a `{}` account, but the {role} is `{connector}`",
        account.connector()
    )
}

impl Account {
    /// The connector the account belongs to.
    pub fn connector(&self) -> &'static str {
        match self {
            Account::EightXEight(_) => EIGHTXEIGHT,
            Account::TextRequest(_) => TEXTREQUEST,
            Account::Aranda(_) => ARANDA,
            Account::Http(_) => HTTP,
            Account::GoogleSheets(_) => GOOGLE_SHEETS,
            Account::Cinnox(_) => CINNOX,
            Account::Webhook(_) => WEBHOOK,
            Account::Smtp(_) => SMTP,
        }
    }
}

/// The live source of a flow that fetches its records; `None` for push sources, whose
/// records come from the engine's queue, filled by the daemon.
pub fn build_source(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Option<Box<dyn engine::Source>>, String> {
    let source = source_of(flow).ok_or("the flow's source was not made by this catalogue")?;
    Ok(match source {
        Source::Csv(config) => Some(Box::new(csv::CsvFile::new(config))),
        Source::Xlsx(config) => Some(Box::new(xlsx::XlsxFile::new(config))),
        Source::GoogleSheets(config) => match named(accounts, &config.account)? {
            Account::GoogleSheets(account) => Some(Box::new(google_sheets::Sheet::new(
                &config.account,
                account,
                config,
            )?)),
            other => {
                return Err(wrong_account(
                    &config.account,
                    other,
                    "source",
                    GOOGLE_SHEETS,
                ))
            }
        },
        Source::Aranda(config) => match named(accounts, &config.account)? {
            Account::Aranda(account) => Some(Box::new(aranda::Cases::new(
                &config.account,
                account,
                config,
            ))),
            other => return Err(wrong_account(&config.account, other, "source", ARANDA)),
        },
        Source::TextRequest(config) if config.reads.is_some() => {
            match named(accounts, &config.account)? {
                Account::TextRequest(account) => Some(Box::new(textrequest::ListSource::new(
                    &config.account,
                    account,
                    config,
                ))),
                other => return Err(wrong_account(&config.account, other, "source", TEXTREQUEST)),
            }
        }
        Source::Webhook(_) | Source::Cinnox(_) | Source::TextRequest(_) | Source::Alerts(_) => None,
    })
}

/// The live receiver of a flow, with its account's credentials.
pub fn build_receiver(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Arc<dyn engine::Receiver>, String> {
    let name = &flow.receiver.account;
    let receiver = receiver_of(flow).ok_or("the flow's receiver was not made by this catalogue")?;
    let account = named(accounts, name)?;
    let timeout = flow.delivery.timeout;
    match (receiver, account) {
        (Receiver::EightXEight(r), Account::EightXEight(a)) => r.build(name, a, timeout),
        (Receiver::TextRequest(r), Account::TextRequest(a)) => r.build(name, a, timeout),
        (Receiver::Aranda(r), Account::Aranda(a)) => r.build(name, a, timeout),
        (Receiver::Http(r), Account::Http(a)) => r.build(name, a, timeout),
        (Receiver::Cinnox(r), Account::Cinnox(a)) => r.build(name, a, timeout),
        (Receiver::GoogleSheets(r), Account::GoogleSheets(a)) => r.build(name, a, timeout),
        (Receiver::Smtp(_), Account::Smtp(a)) => {
            Ok(Arc::new(smtp::Smtp::new(name, a, timeout)?) as Arc<dyn engine::Receiver>)
        }
        (_, account) => Err(wrong_account(
            name,
            account,
            "receiver",
            flow.receiver.connector,
        )),
    }
}

/// The flow's look-up, if it has one.
pub fn build_lookup(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Option<Arc<dyn engine::Lookup>>, String> {
    let (Some(config), Some(lookup)) = (&flow.lookup, lookup_of(flow)) else {
        return Ok(None);
    };
    let account = named(accounts, &config.account)?;
    let timeout = flow.delivery.timeout;
    match (lookup, account) {
        (Lookup::Cinnox(find), Account::Cinnox(a)) => {
            find.build(&config.account, a, timeout).map(Some)
        }
        (Lookup::Aranda(find), Account::Aranda(a)) => {
            find.build(&config.account, a, timeout).map(Some)
        }
        (Lookup::TextRequest(find), Account::TextRequest(a)) => {
            find.build(&config.account, a, timeout).map(Some)
        }
        (Lookup::GoogleSheets(find), Account::GoogleSheets(a)) => {
            find.build(&config.account, a, timeout).map(Some)
        }
        (Lookup::EightXEight(find), Account::EightXEight(a)) => {
            find.build(&config.account, a, timeout).map(Some)
        }
        (_, other) => Err(wrong_account(
            &config.account,
            other,
            "look-up",
            config.connector,
        )),
    }
}

/// A flow's push source — how it takes what services push to it — if it has one; `Err`
/// when it has one but its account is unusable.
pub fn build_push(
    flow: &Flow,
    accounts: &Accounts,
) -> Result<Option<Arc<dyn crate::push::Push>>, String> {
    let Some(source) = source_of(flow) else {
        return Ok(None);
    };
    Ok(Some(match source {
        Source::Webhook(config) => {
            let account = match &config.account {
                Some(name) => match named(accounts, name) {
                    Ok(Account::Webhook(a)) => Some(a),
                    _ => None,
                },
                None => None,
            };
            Arc::new(webhook::WebhookPush::new(config, account)?)
        }
        Source::Cinnox(config) => match named(accounts, &config.account)? {
            Account::Cinnox(a) => Arc::new(cinnox::CinnoxIntake::new(&config.account, a, config)),
            other => return Err(wrong_account(&config.account, other, "source", CINNOX)),
        },
        Source::TextRequest(config) if config.reads.is_some() => return Ok(None),
        Source::TextRequest(config) => match named(accounts, &config.account)? {
            Account::TextRequest(a) => Arc::new(textrequest::TextRequestIntake::new(
                &config.account,
                a,
                config,
            )),
            other => return Err(wrong_account(&config.account, other, "source", TEXTREQUEST)),
        },
        Source::Csv(_)
        | Source::Xlsx(_)
        | Source::GoogleSheets(_)
        | Source::Aranda(_)
        | Source::Alerts(_) => return Ok(None),
    }))
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
    let header = match source_of(flow) {
        Some(Source::Csv(config)) => {
            let csv = csv::CsvFile::new(config);
            Some((csv.header(), config.pos, csv))
                .map(|(header, pos, csv)| (header.map(|h| (csv.header_problem(&h), h)), pos))
        }
        Some(Source::Xlsx(config)) => {
            let sheet = xlsx::XlsxFile::new(config);
            Some((sheet.header(), config.pos, sheet))
                .map(|(header, pos, sheet)| (header.map(|h| (sheet.header_problem(&h), h)), pos))
        }
        // Pushed events and remote sheets: nothing known without the network
        // (validation stays offline); templates compiled is all.
        _ => None,
    };
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
            Diagnostic::new(&flow.file, pos, e.0)
                .with_hint("`path` is relative to the flow file's directory"),
        ),
        None => {}
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
