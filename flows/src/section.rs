//! The parts of a flow file that belong to a connector — what follows `connector:` in
//! `source:`, `receiver:` and `lookup:` — and the accounts of `accounts.yaml`. This crate
//! knows no connector: it parses the common keys (`connector`, `action`, `account`, a
//! look-up's `query`, `as` and `required`) and hands the rest to a [`Catalogue`] the
//! caller provides, keeping what it needs to check a flow and a directory as a whole.
//! What the catalogue parsed travels in the flow as a [`Section`], for the catalogue to
//! read back when it builds the flow's connectors.

use std::any::Any;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use marked_yaml::Node;

use crate::diag::{Diagnostic, Pos};
use crate::fields::FieldSpec;
use crate::flow::Backlog;
use crate::secret::Secret;

/// A connector's parsed section, opaque to this crate.
#[derive(Clone)]
pub struct Section(Arc<dyn Any + Send + Sync>, Arc<str>);

impl Section {
    /// Wrap a connector's section (`what` is its `Debug` text, kept for logs and tests).
    pub fn new<T: Any + Send + Sync + fmt::Debug>(section: T) -> Section {
        let what: Arc<str> = Arc::from(format!("{section:?}"));
        Section(Arc::new(section), what)
    }

    /// The section as the type its connector made it.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

/// Where a section is written, for positions in errors and paths relative to the file.
#[derive(Debug, Clone, Copy)]
pub struct Cx<'a> {
    pub file: &'a Path,
}

impl Cx<'_> {
    /// The directory relative paths in the file resolve against.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// The position of `key` in a mapping node, or of the node itself.
    pub fn at(&self, node: &Node, key: &str) -> Pos {
        node.as_mapping()
            .and_then(|m| m.get_node(key))
            .map(|n| Pos::of(n.span()))
            .unwrap_or(Pos::of(node.span()))
    }

    /// A problem at `pos` in this file.
    pub fn problem(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.file, pos, message)
    }
}

/// The roles a connector plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Source,
    Receiver,
    Lookup,
    Account,
}

/// What a catalogue says about a `source:`.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The account it reads with, if it has one.
    pub account: Option<(String, Pos)>,
    /// What its first run does with the records already there.
    pub backlog: Backlog,
    /// Records are pushed to the daemon and queued, rather than fetched.
    pub push: bool,
    /// How a source read again every run tells its records apart, as the flow file says
    /// it (`order_id`, `[order_id, line]`, the whole row): a change makes every record
    /// look new, so the state remembers it. `None` where the connector fixes the key.
    pub keyed_by: Option<String>,
    pub section: Section,
}

/// What a catalogue says about a `receiver:`.
#[derive(Debug, Clone)]
pub struct ReceiverSpec {
    /// The fields the action takes in `map:`.
    pub fields: &'static [FieldSpec],
    pub section: Section,
}

/// What a catalogue says about a `lookup:` (its options beyond the common keys).
#[derive(Debug, Clone)]
pub struct LookupSpec {
    pub section: Section,
}

/// What a catalogue says about an account.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    /// Its secret values (keys, tokens, secret headers), for scrubbing what services say.
    pub secrets: Vec<Secret>,
    pub section: Section,
}

/// The connectors a flows directory may use, and how their sections are parsed. The
/// sections come without their common keys: `rest` is the mapping minus `connector`
/// (and `action`, `account` for receivers; and a look-up's common keys), with `${VAR}`
/// already expanded in an account's. Problems carry positions in `cx.file`.
pub trait Catalogue: Send + Sync {
    /// The connectors that play `role`.
    fn connectors(&self, role: Role) -> Vec<&'static str>;

    /// The actions of a receiver or look-up connector (`None`: it plays no such role).
    fn actions(&self, role: Role, connector: &str) -> Option<Vec<&'static str>>;

    /// A short example of a section of `role` in YAML flow style, for hints
    /// (`{connector: csv, path: orders.csv}`).
    fn example(&self, role: Role) -> &'static str;

    fn source(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<SourceSpec, Diagnostic>;

    fn receiver(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        action: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<ReceiverSpec, Diagnostic>;

    fn lookup(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        action: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<LookupSpec, Diagnostic>;

    /// An account's fields; `name` is the account's name in the file.
    fn account(
        &self,
        cx: &Cx<'_>,
        connector: &str,
        name: &str,
        rest: &Node,
        pos: Pos,
    ) -> Result<AccountSpec, Vec<Diagnostic>>;

    /// Checks of a whole flow that need its connectors (a source's columns against the
    /// map and key, templates against the receiver): run once the file is parsed.
    fn check_flow(&self, flow: &crate::Flow) -> Vec<Diagnostic> {
        let _ = flow;
        Vec::new()
    }
}

/// A URL a user wrote is usable: it parses and is http or https.
pub fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("it must start with http:// or https://".into());
    }
    Ok(())
}
