//! What a connector is to the rest of Switchboard: one [`Connector`] per folder,
//! implemented once — its card, how it parses its sections (source, receiver, look-up,
//! account) for `flows`, how it builds the live source, receiver, look-up and push
//! intake from them, how an account is tried, and its stand-in. The registry
//! ([`crate::CONNECTORS`]) lists them, one line each; nothing else names a connector.
//!
//! A role a connector does not play keeps the default (the catalogue asks only the
//! connectors whose card offers the role, so the defaults' errors are for a caller that
//! did not ask it first).

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use flows::yaml::Node;
use flows::{
    AccountSpec, Accounts, Cx, Diagnostic, Flow, LookupSpec, Pos, ReceiverSpec, SourceSpec,
};

use crate::card::Card;
use crate::standin::Standin;

/// One connector, as the registry sees it.
#[async_trait]
pub trait Connector: Sync {
    /// What it is and offers, for people and tools; its `name` is what `connector:` says.
    fn card(&self) -> &'static Card;

    /// Whether its source is pushed to the daemon (no schedule needed) rather than read.
    fn pushes(&self) -> bool {
        false
    }

    /// The local copy of its service `sandbox` and `quickstart` serve, if it has one.
    fn standin(&self) -> Option<&'static Standin> {
        None
    }

    /// Parse a `source:` section (without `connector:`).
    fn source(&self, cx: &Cx<'_>, _rest: &Node, pos: Pos) -> Result<SourceSpec, Diagnostic> {
        Err(cx.problem(
            pos,
            format!("unknown source connector `{}`", self.card().name),
        ))
    }

    /// Parse a `receiver:` section (without `connector`, `action`, `account`).
    fn receiver(
        &self,
        cx: &Cx<'_>,
        _action: &str,
        _rest: &Node,
        pos: Pos,
    ) -> Result<ReceiverSpec, Diagnostic> {
        Err(cx.problem(
            pos,
            format!("unknown receiver connector `{}`", self.card().name),
        ))
    }

    /// Parse a `lookup:` section (without its common keys).
    fn lookup(
        &self,
        cx: &Cx<'_>,
        _action: &str,
        _rest: &Node,
        pos: Pos,
    ) -> Result<LookupSpec, Diagnostic> {
        Err(cx.problem(pos, format!("`{}` has no look-ups", self.card().name)))
    }

    /// Parse an account of `accounts.yaml` (without `connector:`; variables expanded).
    fn account(
        &self,
        cx: &Cx<'_>,
        _name: &str,
        _rest: &Node,
        pos: Pos,
    ) -> Result<AccountSpec, Vec<Diagnostic>> {
        Err(vec![cx.problem(
            pos,
            format!("unknown account connector `{}`", self.card().name),
        )])
    }

    /// The live source of a flow that fetches its records; `None` for a pushed source,
    /// whose records come from the engine's queue, filled by the daemon.
    fn build_source(
        &self,
        _flow: &Flow,
        _accounts: &Accounts,
    ) -> Result<Option<Box<dyn engine::Source>>, BuildError> {
        Ok(None)
    }

    /// The live receiver of a flow, with its account's credentials.
    fn build_receiver(
        &self,
        _flow: &Flow,
        _accounts: &Accounts,
    ) -> Result<Arc<dyn engine::Receiver>, BuildError> {
        Err(BuildError::NoSuchRole(self.card().name, "receiver"))
    }

    /// The flow's look-up, with its account's credentials.
    fn build_lookup(
        &self,
        _flow: &Flow,
        _accounts: &Accounts,
    ) -> Result<Arc<dyn engine::Lookup>, BuildError> {
        Err(BuildError::NoSuchRole(self.card().name, "look-up"))
    }

    /// How the flow's source takes what a service pushes, if it is pushed; `Err` when
    /// it is but its account is unusable.
    fn build_push(
        &self,
        _flow: &Flow,
        _accounts: &Accounts,
    ) -> Result<Option<Arc<dyn crate::push::Push>>, BuildError> {
        Ok(None)
    }

    /// The header of a flow's source, where it can be read without the network (a local
    /// file), for `validate`'s checks of columns.
    fn source_header(&self, _flow: &Flow) -> Option<SourceHeader> {
        None
    }

    /// The column names of a sample file of this source's kind (a new flow's fields are
    /// mapped from them in the console); `None` for a source that reads no file.
    fn sample_columns(&self, _file: &std::path::Path) -> Option<Result<Vec<String>, String>> {
        None
    }

    /// Try the account with a cheap authenticated call: what was tried and what came
    /// back, `Err` when the credentials were not shown to work.
    async fn check_account(&self, _account: &flows::Account) -> Result<String, BuildError> {
        Ok("nothing to try without a request; runs will tell".into())
    }
}

/// Why a connector could not build a flow's part, or check an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The flow names an account the accounts file does not have.
    #[error("unknown account `{0}`")]
    UnknownAccount(String),
    /// The flow names an account of another connector.
    #[error("account `{name}` is a `{is}` account, but the {role} is `{wanted}`")]
    OtherConnector {
        name: String,
        is: String,
        role: String,
        wanted: String,
    },
    /// The connector does not play the role asked of it.
    #[error("`{0}` has no {1}")]
    NoSuchRole(&'static str, &'static str),
    /// A section the connector did not parse (the catalogue handed it another's).
    #[error("the flow's {0} was not made by this connector")]
    NotItsSection(&'static str),
    /// The flow lacks a part the connector needs.
    #[error("{0}")]
    Missing(&'static str),
    /// What the connector found wrong: a file, a setting, the service's answer.
    #[error("{0}")]
    Refused(String),
}

impl From<String> for BuildError {
    fn from(why: String) -> Self {
        BuildError::Refused(why)
    }
}

/// A local source's header, as `validate` checks it.
pub struct SourceHeader {
    /// Where the source stands in the flow file.
    pub pos: Pos,
    /// The columns and what is wrong with them (a key column missing), or why the header
    /// cannot be read.
    pub read: Result<(Option<String>, Vec<String>), String>,
}

/// The connector named `name`.
pub fn connector(name: &str) -> Option<&'static dyn Connector> {
    crate::CONNECTORS
        .iter()
        .copied()
        .find(|c| c.card().name == name)
}

/// Account `name` of `accounts`, as connector `connector` parsed it for a `role` of
/// a flow; an account of another connector is said so.
pub fn account_for<'a, T: Any>(
    accounts: &'a Accounts,
    name: &str,
    role: &str,
    connector: &str,
) -> Result<&'a T, BuildError> {
    let account = accounts
        .get(name)
        .ok_or_else(|| BuildError::UnknownAccount(name.to_string()))?;
    account
        .section
        .get::<T>()
        .ok_or_else(|| BuildError::OtherConnector {
            name: name.to_string(),
            is: account.connector.to_string(),
            role: role.to_string(),
            wanted: connector.to_string(),
        })
}

/// A section of a flow as its connector parsed it (`T`: the connector's own type).
pub fn section<'a, T: Any>(
    section: &'a flows::Section,
    what: &'static str,
) -> Result<&'a T, BuildError> {
    section.get::<T>().ok_or(BuildError::NotItsSection(what))
}

/// A flow's receiver section (`R`), its account's name and the account (`A`), as the
/// receiver's connector parsed them.
pub fn receiver_parts<'a, R: Any, A: Any>(
    flow: &'a Flow,
    accounts: &'a Accounts,
) -> Result<(&'a R, &'a str, &'a A), BuildError> {
    let receiver = section::<R>(&flow.receiver.section, "receiver")?;
    let name = flow.receiver.account.as_str();
    let account = account_for::<A>(accounts, name, "receiver", flow.receiver.connector)?;
    Ok((receiver, name, account))
}

/// A flow's look-up section (`L`), its account's name and the account (`A`), as the
/// look-up's connector parsed them.
pub fn lookup_parts<'a, L: Any, A: Any>(
    flow: &'a Flow,
    accounts: &'a Accounts,
) -> Result<(&'a L, &'a str, &'a A), BuildError> {
    let config = flow
        .lookup
        .as_ref()
        .ok_or(BuildError::Missing("the flow has no look-up"))?;
    let lookup = section::<L>(&config.section, "look-up")?;
    let name = config.account.as_str();
    let account = account_for::<A>(accounts, name, "look-up", config.connector)?;
    Ok((lookup, name, account))
}

/// A flow's source section (`S`), as its connector parsed it.
pub fn source_of<S: Any>(flow: &Flow) -> Result<&S, BuildError> {
    section::<S>(&flow.source.section, "source")
}

/// A flow's source section (`S`), its account's name and the account (`A`), as the
/// source's connector parsed them.
pub fn source_parts<'a, S: Any, A: Any>(
    flow: &'a Flow,
    accounts: &'a Accounts,
) -> Result<(&'a S, &'a str, &'a A), BuildError> {
    let source = source_of::<S>(flow)?;
    let (name, _) = flow
        .source
        .account
        .as_ref()
        .ok_or(BuildError::Missing("the flow's source names no account"))?;
    let account = account_for::<A>(accounts, name, "source", flow.source.connector)?;
    Ok((source, name.as_str(), account))
}

/// What a [`Connector`] says about itself: `card` (its card), and `standin` when it
/// has one (its stand-in for `quickstart` and the sandbox).
#[macro_export]
macro_rules! described {
    ($card:path) => {
        fn card(&self) -> &'static $crate::card::Card {
            &$card
        }
    };
    ($card:path, $standin:path) => {
        $crate::described!($card);

        fn standin(&self) -> Option<&'static $crate::standin::Standin> {
            Some(&$standin)
        }
    };
}

/// The two methods of a [`Connector`] that has receiver actions: `receiver` (parsed by
/// `$parse(cx, action, rest, pos)` into `$receiver`, which says its `fields()`) and
/// `build_receiver` (`$receiver::build(name, &$account, timeout)`).
#[macro_export]
macro_rules! receiver_role {
    ($parse:path, $receiver:ty, $account:ty) => {
        fn receiver(
            &self,
            cx: &flows::Cx<'_>,
            action: &str,
            rest: &flows::yaml::Node,
            pos: flows::Pos,
        ) -> Result<flows::ReceiverSpec, flows::Diagnostic> {
            let receiver: $receiver = $parse(cx, action, rest, pos)?;
            Ok(flows::ReceiverSpec {
                fields: receiver.fields(),
                section: flows::Section::new(receiver),
            })
        }

        fn build_receiver(
            &self,
            flow: &flows::Flow,
            accounts: &flows::Accounts,
        ) -> Result<std::sync::Arc<dyn engine::Receiver>, $crate::connector::BuildError> {
            let (receiver, name, account) =
                $crate::connector::receiver_parts::<$receiver, $account>(flow, accounts)?;
            Ok(receiver.build(name, account, flow.delivery.timeout)?)
        }
    };
}

/// The two methods of a [`Connector`] that has look-ups: `lookup` (parsed by
/// `$parse(cx, action, rest, pos)` into `$lookup`) and `build_lookup`, the live look-up
/// made by `|name, account, lookup, timeout| …` (a `Result` of it).
#[macro_export]
macro_rules! lookup_role {
    ($parse:path, $lookup:ty, $account:ty, |$name:ident, $acc:ident, $l:ident, $timeout:ident| $build:expr) => {
        fn lookup(
            &self,
            cx: &flows::Cx<'_>,
            action: &str,
            rest: &flows::yaml::Node,
            pos: flows::Pos,
        ) -> Result<flows::LookupSpec, flows::Diagnostic> {
            let lookup: $lookup = $parse(cx, action, rest, pos)?;
            Ok(flows::LookupSpec {
                section: flows::Section::new(lookup),
            })
        }

        fn build_lookup(
            &self,
            flow: &flows::Flow,
            accounts: &flows::Accounts,
        ) -> Result<std::sync::Arc<dyn engine::Lookup>, $crate::connector::BuildError> {
            let ($l, $name, $acc) =
                $crate::connector::lookup_parts::<$lookup, $account>(flow, accounts)?;
            let $timeout = flow.delivery.timeout;
            Ok(std::sync::Arc::new($build?))
        }
    };
}

/// The `account` method of a [`Connector`]: parsed by `$parse(cx, name, rest)` (with
/// `, pos` after the path: `$parse(cx, name, rest, pos)`) into a type that says its
/// `secrets()`.
#[macro_export]
macro_rules! account_role {
    ($parse:path) => {
        $crate::account_role!(@parse |cx, name, rest, _pos| $parse(cx, name, rest));
    };
    ($parse:path, pos) => {
        $crate::account_role!(@parse |cx, name, rest, pos| $parse(cx, name, rest, pos));
    };
    (@parse |$cx:ident, $name:ident, $rest:ident, $pos:ident| $call:expr) => {
        fn account(
            &self,
            $cx: &flows::Cx<'_>,
            $name: &str,
            $rest: &flows::yaml::Node,
            $pos: flows::Pos,
        ) -> Result<flows::AccountSpec, Vec<flows::Diagnostic>> {
            let account = $call?;
            Ok(flows::AccountSpec {
                secrets: account.secrets(),
                section: flows::Section::new(account),
            })
        }
    };
}

/// How a source is read, as the scheduler and the state need to know it.
#[derive(Debug, Clone)]
pub struct SourceShape {
    /// The account it reads with, and where the source stands.
    pub account: Option<(String, Pos)>,
    pub backlog: flows::Backlog,
    pub push: bool,
    pub keyed_by: Option<String>,
}

impl SourceShape {
    /// Read on a schedule; the first run treats the records already there by `backlog`.
    pub fn read(account: Option<(String, Pos)>, backlog: flows::Backlog) -> SourceShape {
        SourceShape {
            account,
            backlog,
            push: false,
            keyed_by: None,
        }
    }

    /// Pushed to the daemon and queued: every event is new.
    pub fn pushed(account: Option<(String, Pos)>) -> SourceShape {
        SourceShape {
            push: true,
            ..SourceShape::read(account, flows::Backlog::Send)
        }
    }

    /// Read again whole each run, its records told apart by `key` (the whole row when
    /// empty).
    pub fn keyed(self, key: &[String]) -> SourceShape {
        SourceShape {
            keyed_by: Some(crate::rows::keyed_by(key)),
            ..self
        }
    }

    /// The spec `flows` keeps, with the parsed section.
    pub fn spec<S: Any + Send + Sync + std::fmt::Debug>(self, section: S) -> SourceSpec {
        SourceSpec {
            account: self.account,
            backlog: self.backlog,
            push: self.push,
            keyed_by: self.keyed_by,
            section: flows::Section::new(section),
        }
    }
}

/// The `source` method of a [`Connector`] that can be a source: parsed by
/// `$parse(cx, rest, pos)`, read as `$shape(&section)` says ([`SourceShape`]).
#[macro_export]
macro_rules! source_role {
    ($parse:path, $shape:expr) => {
        fn source(
            &self,
            cx: &flows::Cx<'_>,
            rest: &flows::yaml::Node,
            pos: flows::Pos,
        ) -> Result<flows::SourceSpec, flows::Diagnostic> {
            let source = $parse(cx, rest, pos)?;
            Ok(($shape)(&source).spec(source))
        }
    };
}

/// The name and the parsed section of an account of `accounts.yaml` (`A`: its
/// connector's own type).
pub fn parsed_account<A: Any>(account: &flows::Account) -> Result<(&str, &A), BuildError> {
    Ok((
        account.name.as_str(),
        section::<A>(&account.section, "account")?,
    ))
}

/// The methods of a [`Connector`] whose source is a local file of rows (`$file`, made by
/// `$file::new(&config::Source)`, with `header()` and `header_problem()`): the live
/// source, and its header for `validate`.
#[macro_export]
macro_rules! local_table_role {
    ($file:ty, $source:ty) => {
        fn build_source(
            &self,
            flow: &flows::Flow,
            _accounts: &flows::Accounts,
        ) -> Result<Option<Box<dyn engine::Source>>, $crate::connector::BuildError> {
            let config = $crate::connector::source_of::<$source>(flow)?;
            Ok(Some(Box::new(<$file>::new(config))))
        }

        fn source_header(&self, flow: &flows::Flow) -> Option<$crate::connector::SourceHeader> {
            let config = $crate::connector::source_of::<$source>(flow).ok()?;
            let file = <$file>::new(config);
            let read = file
                .header()
                .map(|header| (file.header_problem(&header), header))
                .map_err(|e| e.0);
            Some($crate::connector::SourceHeader {
                pos: config.pos,
                read,
            })
        }

        fn sample_columns(&self, file: &std::path::Path) -> Option<Result<Vec<String>, String>> {
            Some(<$file>::at(file).header().map_err(|e| e.0))
        }
    };
}
