//! The PostgreSQL state: the same [`Store`] and [`FlowState`] as the SQLite one, in tables
//! (`engine/migrations/postgres/`, run by refinery at start-up), for `--state postgres://…`.
//!
//! The state's calls are synchronous (a run calls them between sends, as it calls SQLite),
//! so the store owns one connection on a thread of its own and each call is a job sent to
//! it; the caller waits for the answer. A mark in flight is committed synchronously, so it
//! is durable once written: the embedded state's group commit has nothing to do here. A row's
//! outcome, its remembered key and the removal of its ledger mark are one transaction,
//! committed without waiting for the disk, as SQLite writes them between group commits (see
//! [`Journal::record`] below for why that keeps the promise).
//!
//! Like the embedded state, one process holds a store at a time: a session advisory lock
//! on the schema's name, taken before anything else.
//! `?schema=NAME` in the URL keeps the state in a schema of its own (created if missing;
//! default `switchboard`).

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use postgres::{Client, NoTls};
use serde_json::{Map, Value};

use super::chunks::{self, ChunkNote, ChunkNotes, Sorted};
use super::search;
use super::{
    Cluster, Durable, FlowState, Found, Handled, History, InFlight, Inbox, Journal, Ledger,
    LedgerMark, Meta, Pruned, Retention, RowOutcome, RowStatus, RunStatus, RunSummary, StateError,
    Store, Trigger,
};
use crate::record::{ChunkPrint, Record};

mod migrations {
    refinery::embed_migrations!("migrations/postgres");
}

/// How long opening waits for a lock a closed session may still hold.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The schema when the URL names none.
const DEFAULT_SCHEMA: &str = "switchboard";

/// The meta name of the last run the search index covers.
const INDEXED: &str = "\u{1}search-indexed";

/// Run a body on the connection's thread, with `err` mapping its errors.
macro_rules! on_db {
    ($db:expr, |$client:ident, $err:ident| $body:expr) => {{
        let shown = $db.shown.clone();
        $db.call(move |$client| {
            let $err = db_error(&shown);
            $body
        })
    }};
}

/// A job on the connection: given the connection (or why there is none), it does its
/// work and answers — unless the connection broke under it, when it asks to be run again
/// on a new one (its statements are idempotent upserts, or a transaction that did not
/// commit).
type Job = Box<dyn FnMut(Result<&mut Client, StateError>) -> Attempt + Send>;

enum Attempt {
    Done,
    Again,
}

/// Wrap `f` as a job whose result goes to `answer`.
fn job<T: Send + 'static>(
    mut f: impl FnMut(&mut Client) -> Result<T, StateError> + Send + 'static,
    mut answer: impl FnMut(Result<T, StateError>) + Send + 'static,
) -> Job {
    Box::new(move |client| match client {
        Ok(client) => {
            let result = f(client);
            // A connection the server ended answers its next query with an error (57P01,
            // "terminating connection") before the client sees it closed: a failed job
            // whose connection no longer answers is run again on a new one.
            let lost = result.is_err()
                && (client.is_closed()
                    || client.is_valid(std::time::Duration::from_secs(2)).is_err());
            if lost {
                return Attempt::Again;
            }
            answer(result);
            Attempt::Done
        }
        Err(e) => {
            answer(Err(e));
            Attempt::Done
        }
    })
}

/// The connection's thread, reached by jobs.
struct Db {
    jobs: mpsc::Sender<Work>,
    /// The URL without its password, for messages.
    shown: String,
    /// The failure of a job nobody waited for ([`Db::submit`]), told to the next caller.
    failed: Arc<std::sync::Mutex<Option<StateError>>>,
}

/// A value bound to a statement, owned: a job may run again on a new connection.
type Param = Box<dyn postgres::types::ToSql + Sync + Send>;

impl Db {
    /// The rows `sql` returns for `params`, each read by `read`, waiting for them.
    fn rows<T: Send + 'static>(
        &self,
        sql: &'static str,
        params: Vec<Param>,
        read: fn(&postgres::Row) -> T,
    ) -> Result<Vec<T>, StateError> {
        let shown = self.shown.clone();
        self.call(move |client| {
            let args: Vec<&(dyn postgres::types::ToSql + Sync)> =
                params.iter().map(|p| &**p as _).collect();
            Ok(client
                .query(sql, &args)
                .map_err(db_error(&shown))?
                .iter()
                .map(read)
                .collect())
        })
    }

    /// Run `f` on the connection, after every job sent before it, without waiting for it
    /// (the writes a run makes between sends: it goes on sending meanwhile). Reads that
    /// come after it see it; its failure is the next call's.
    fn submit(
        &self,
        f: impl FnMut(&mut Client) -> Result<(), StateError> + Send + 'static,
    ) -> Result<(), StateError> {
        self.told()?;
        let failed = Arc::clone(&self.failed);
        let job = job(f, move |result| {
            // A write refused by its lease's fence is the run's (its fence tells it), not
            // the store's: other flows go on.
            if let Err(e) = result.or_else(|e| match e {
                StateError::Fenced(_) => Ok(()),
                e => Err(e),
            }) {
                if let Ok(mut failed) = failed.lock() {
                    failed.get_or_insert(e);
                }
            }
        });
        self.jobs.send(Work::Job(job)).map_err(|_| {
            StateError::Database(format!("{}: the connection's thread stopped", self.shown))
        })
    }

    /// The failure of an earlier job nobody waited for, once.
    fn told(&self) -> Result<(), StateError> {
        match self.failed.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Run `f` on the connection and wait for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Client) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        self.told()?;
        let (answer, answered) = mpsc::sync_channel(1);
        let job = job(f, move |result| {
            let _ = answer.send(result);
        });
        let gone =
            || StateError::Database(format!("{}: the connection's thread stopped", self.shown));
        self.jobs.send(Work::Job(job)).map_err(|_| gone())?;
        answered.recv().map_err(|_| gone())?
    }
}

/// How many connections a process opens: each flow's calls go in order on one of them,
/// so that flows running at once are not queued behind each other's round trips.
const CONNECTIONS: usize = 4;

/// The process's connections, each flow on one by its name.
#[derive(Clone)]
struct Shards(Arc<[Arc<Db>]>);

impl Shards {
    /// The connection for what is not one flow's.
    fn first(&self) -> &Arc<Db> {
        &self.0[0]
    }

    fn of(&self, flow: &str) -> Arc<Db> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        flow.hash(&mut hasher);
        Arc::clone(&self.0[hasher.finish() as usize % self.0.len()])
    }

    /// Make every commit of every connection durable.
    async fn durable(&self) -> Result<(), StateError> {
        for result in futures::future::join_all(self.0.iter().map(|db| db.durable())).await {
            result?;
        }
        Ok(())
    }
}

impl Db {
    /// A connection on a thread of its own, once it is made.
    fn start(target: Target) -> Result<Arc<Db>, StateError> {
        let shown = target.shown.clone();
        let (ready, is_ready) = mpsc::sync_channel::<Result<(), StateError>>(1);
        let (jobs, queue) = mpsc::channel::<Work>();
        let failed: Arc<std::sync::Mutex<Option<StateError>>> = Arc::default();
        let thread_failed = Arc::clone(&failed);
        std::thread::Builder::new()
            .name("switchboard-postgres".into())
            .spawn(move || {
                let client = match connect(&target) {
                    Ok(client) => {
                        let _ = ready.send(Ok(()));
                        client
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                serve(&target, client, queue, thread_failed);
            })
            .map_err(|e| StateError::Database(format!("{shown}: cannot start its thread: {e}")))?;
        is_ready.recv().map_err(|_| {
            StateError::Database(format!("{shown}: the connection's thread stopped"))
        })??;
        Ok(Arc::new(Db {
            jobs,
            shown,
            failed,
        }))
    }

    /// Make every commit so far durable: a transaction that commits synchronously
    /// flushes the log up to it, with every earlier commit in it.
    async fn durable(self: &Arc<Self>) -> Result<(), StateError> {
        self.told()?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs.send(Work::Durable(answer)).map_err(|_| {
            StateError::Database(format!("{}: the connection's thread stopped", self.shown))
        })?;
        answered.await.map_err(|_| {
            StateError::Database(format!("{}: the connection's thread stopped", self.shown))
        })?
    }
}

thread_local! {
    /// The statements prepared on this thread's connection, by their text: a statement
    /// is parsed once per connection, not on every call (a round trip each).
    static PREPARED: std::cell::RefCell<std::collections::HashMap<&'static str, postgres::Statement>> =
        std::cell::RefCell::default();
}

/// `sql` prepared on `client` (the connection's thread's), once.
fn prepared(
    client: &mut Client,
    sql: &'static str,
) -> Result<postgres::Statement, postgres::Error> {
    if let Some(statement) = PREPARED.with(|p| p.borrow().get(sql).cloned()) {
        return Ok(statement);
    }
    let statement = client.prepare(sql)?;
    PREPARED.with(|p| p.borrow_mut().insert(sql, statement.clone()));
    Ok(statement)
}

/// What the connection's thread is asked for.
enum Work {
    Job(Job),
    /// Answer once every commit before this is durable. The thread answers all such asks
    /// that wait at once with one synchronous commit (a group commit: concurrent webhook
    /// requests share one flush to disk).
    Durable(tokio::sync::oneshot::Sender<Result<(), StateError>>),
}

/// Run `job` on `client`, making the connection again when it was lost (the job waits,
/// and so does whoever asked for it).
fn run_job(target: &Target, client: &mut Client, mut job: Job) {
    for attempt in 0..3 {
        // Asked to run again: the connection was lost.
        if attempt > 0 || client.is_closed() {
            match reconnect(target) {
                Ok(again) => {
                    // Statements belong to the connection they were prepared on.
                    PREPARED.with(|p| p.borrow_mut().clear());
                    *client = again;
                }
                Err(e) => {
                    job(Err(e));
                    return;
                }
            }
        }
        if let Attempt::Done = job(Ok(client)) {
            return;
        }
    }
}

/// The connection's thread: jobs in the order they came; asks for durability answered
/// together after the jobs that were waiting with them.
fn serve(
    target: &Target,
    mut client: Client,
    queue: mpsc::Receiver<Work>,
    failed: Arc<std::sync::Mutex<Option<StateError>>>,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match queue.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut waiting = Vec::new();
        for work in batch {
            match work {
                Work::Job(job) => run_job(target, &mut client, job),
                Work::Durable(answer) => waiting.push(answer),
            }
        }
        if waiting.is_empty() {
            continue;
        }
        // A transaction with an id, committed synchronously (the session commits without
        // waiting otherwise): the log is on disk up to it, with every commit before it.
        // One round trip.
        let shown = target.shown.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        let commit = job(
            move |client: &mut Client| {
                client
                    .batch_execute(
                        "BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT",
                    )
                    .map_err(db_error(&shown))?;
                Ok(())
            },
            move |result| {
                let _ = tx.send(result);
            },
        );
        run_job(target, &mut client, commit);
        let mut result = rx
            .recv()
            .unwrap_or_else(|_| Err(StateError::Stopped("the commit did not answer".into())));
        // A write nobody waited for failed before this point: what was asked to be
        // durable may not be (its caller hears the failure itself at its next call).
        if let Some(e) = failed
            .lock()
            .ok()
            .and_then(|f| f.as_ref().map(ToString::to_string))
        {
            result = Err(StateError::Database(e));
        }
        for answer in waiting {
            let _ = answer.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(StateError::Database(e.to_string())),
            });
        }
    }
}

mod cluster;
use cluster::{Fence, PgCluster};

/// Refuse the transaction unless `fence` still holds the flow (no check without one):
/// the lease's row is share-locked until the transaction ends, so a takeover (which
/// updates it) waits for this write, and a write after it sees the new fencing number.
fn fenced(
    tx: &mut postgres::Transaction<'_>,
    flow: &str,
    fence: Option<&Fence>,
    err: &impl Fn(postgres::Error) -> StateError,
) -> Result<(), StateError> {
    let Some(fence) = fence else {
        return Ok(());
    };
    let held = tx
        .query_opt(
            "SELECT 1 FROM leases WHERE flow = $1 AND fence = $2 FOR SHARE",
            &[&flow, &fence.value],
        )
        .map_err(err)?;
    if held.is_none() {
        return Err(refused(Some(fence), flow));
    }
    Ok(())
}

/// A write the database refused because `fence` no longer holds the flow: the fence
/// learns it (the run's later calls fail without asking again).
fn refused(fence: Option<&Fence>, flow: &str) -> StateError {
    if let Some(fence) = fence {
        fence.lose();
    }
    StateError::Fenced(flow.to_string())
}

/// The state in a PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    /// Every connection; each flow's calls go to one of them, in order; what is not one
    /// flow's (search, runs of every flow) to the first.
    shards: Shards,
    /// Set when the store is shared by the daemons of a cluster.
    cluster: Option<Arc<PgCluster>>,
}

/// What a URL says: where to connect, in which schema, and how to show it.
#[derive(Clone)]
struct Target {
    config: postgres::Config,
    schema: String,
    shown: String,
    /// Held by the daemons of a cluster together (a shared lock), rather than by one
    /// process (an exclusive one).
    shared: bool,
    /// This connection takes the schema's lock and migrates its tables (the process's
    /// first; its others work under that lock).
    leads: bool,
}

fn target(url: &str) -> Result<Target, StateError> {
    let bad = |why: String| StateError::Database(format!("`--state {}`: {why}", redact(url)));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let mut schema = DEFAULT_SCHEMA.to_string();
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "schema" {
                schema = v.into_owned();
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(bad(format!(
            "`schema={schema}` is not a schema name: lower-case letters, digits and `_`, not starting with a digit"
        )));
    }
    // Percent-encoded as the client reads it (a form's `+` for a space it does not).
    let encode = |text: &str| {
        url::form_urlencoded::byte_serialize(text.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let query: Vec<String> = others
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    parsed.set_query((!query.is_empty()).then(|| query.join("&")).as_deref());
    let config: postgres::Config = parsed
        .as_str()
        .parse()
        .map_err(|e: postgres::Error| bad(e.to_string()))?;
    Ok(Target {
        config,
        schema,
        shown: redact(url),
        shared: false,
        leads: true,
    })
}

/// The URL with any password replaced.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(a URL that does not parse)".to_string(),
    }
}

/// Whether `--state` names a PostgreSQL database rather than a directory.
pub fn is_postgres_url(state: &str) -> bool {
    state.starts_with("postgres://") || state.starts_with("postgresql://")
}

fn db_error(shown: &str) -> impl Fn(postgres::Error) -> StateError + '_ {
    move |e| {
        // The server's own words (the client's Display says only "db error").
        let said = match e.as_db_error() {
            Some(db) => {
                let mut said = format!("{}: {}", db.severity(), db.message());
                if let Some(hint) = db.hint() {
                    said.push_str(&format!("\n  hint: {hint}"));
                }
                said
            }
            // The cause too: "error connecting to server" alone does not say that
            // nothing listens there ("Connection refused").
            None => {
                let mut said = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    let cause_text = cause.to_string();
                    if !said.contains(&cause_text) {
                        said.push_str(&format!(": {cause_text}"));
                    }
                    source = cause.source();
                }
                said
            }
        };
        StateError::Database(format!("{shown}: {said}"))
    }
}

/// Connect, take the schema's lock, bring its tables up to date.
fn connect(target: &Target) -> Result<Client, StateError> {
    let err = db_error(&target.shown);
    let mut config = target.config.clone();
    if config.get_application_name().is_none() {
        config.application_name(&format!("switchboard:{}", target.schema));
    }
    let mut client = config.connect(NoTls).map_err(&err)?;
    if !target.leads {
        client
            .batch_execute(&format!(
                "SET search_path TO \"{0}\"; SET synchronous_commit = off; SET idle_in_transaction_session_timeout = '{1}s'",
                target.schema,
                IDLE_IN_TRANSACTION.as_secs()
            ))
            .map_err(&err)?;
        return Ok(client);
    }
    // One process, or the daemons of one cluster together.
    let lock = if target.shared {
        "SELECT pg_try_advisory_lock_shared(hashtext($1))"
    } else {
        "SELECT pg_try_advisory_lock(hashtext($1))"
    };
    // A session this process has just closed (a store dropped a moment ago) keeps its
    // lock until the server has seen it go: wait that long before calling the state
    // held by someone else, as the embedded state does.
    let deadline = std::time::Instant::now() + RELEASE_WAIT;
    let locked = loop {
        let locked: bool = client
            .query_one(lock, &[&target.schema])
            .map_err(&err)?
            .get(0);
        if locked || std::time::Instant::now() >= deadline {
            break locked;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if !locked {
        return Err(StateError::Locked(PathBuf::from(format!(
            "{} (schema {})",
            target.shown, target.schema
        ))));
    }
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS \"{0}\"; SET search_path TO \"{0}\"; SET synchronous_commit = off; SET idle_in_transaction_session_timeout = '{1}s'",
            target.schema,
            IDLE_IN_TRANSACTION.as_secs()
        ))
        .map_err(&err)?;
    // Nodes of a cluster start together: one migrates at a time.
    let migrating = format!("{}:migrations", target.schema);
    client
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&migrating])
        .map_err(&err)?;
    let runner = migrations::migrations::runner();
    if let Err(e) = foreign_migrations(&mut client, &runner) {
        let _ = client.execute("SELECT pg_advisory_unlock(hashtext($1))", &[&migrating]);
        return Err(StateError::Database(format!("{}: {e}", target.shown)));
    }
    let migrated = runner.run(&mut client).map_err(|e| {
        StateError::Database(format!(
            "{}: migrating the state's tables: {e}",
            target.shown
        ))
    });
    client
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&migrating])
        .map_err(&err)?;
    migrated?;
    Ok(client)
}

/// What is wrong with the schema's migration table, if it holds a row this program did
/// not write (another program's migration, an edited date): refinery would stop on it
/// with a panic, or run ours over someone else's tables.
fn foreign_migrations(
    client: &mut postgres::Client,
    runner: &refinery::Runner,
) -> Result<(), String> {
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'refinery_schema_history')",
            &[],
        )
        .map(|row| row.get(0))
        .map_err(|e| e.to_string())?;
    if !exists {
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT version, coalesce(name, ''), coalesce(applied_on, '') FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .map_err(|e| e.to_string())?;
    let ours = runner.get_migrations();
    for row in rows {
        let (version, name, applied_on): (i32, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let known = ours
            .iter()
            .any(|m| i64::from(m.version()) == i64::from(version) && m.name() == name);
        let dated = chrono::DateTime::parse_from_rfc3339(&applied_on).is_ok();
        if !known || !dated {
            return Err(format!(
                "the schema's migration table (`refinery_schema_history`) holds a row this program did not write: version {version} `{name}`, applied on `{applied_on}`\n  \
                 hint: the schema belongs to something else, or its table was edited by hand; give Switchboard a schema of its own (`?schema=NAME`)"
            ));
        }
    }
    Ok(())
}

/// How long the server lets a session sit in a transaction waiting for this process:
/// a process stopped mid-transaction (paused, swapped out) would otherwise hold its locks
/// (a lease's row among them) for as long as it is stopped, and every other node waiting
/// on them. The server ends such a session; the process makes a new one when it wakes.
const IDLE_IN_TRANSACTION: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a lost connection is tried again before the calls waiting on it fail.
const RECONNECT_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// A new connection after the last one was lost, tried with growing pauses for
/// [`RECONNECT_FOR`].
fn reconnect(target: &Target) -> Result<Client, StateError> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        match connect(target) {
            Ok(client) => {
                tracing::warn!(database = %target.shown, "the state database's connection was lost and is back");
                return Ok(client);
            }
            // Someone else holds the state now: waiting will not help.
            Err(e @ StateError::Locked(_)) => return Err(e),
            Err(e) if started.elapsed() >= RECONNECT_FOR => return Err(e),
            Err(e) => {
                tracing::warn!(database = %target.shown, error = %e, "the state database cannot be reached; runs wait for it");
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

impl PgStore {
    /// Connect to the database at `url` (`postgres://user@host/db[?schema=NAME]`), take
    /// the state's lock and migrate its tables. One process may hold it at a time.
    pub fn open(url: &str) -> Result<PgStore, StateError> {
        Self::start(target(url)?, None)
    }

    /// Open the database at `url` as one node (`node`) of a cluster: several daemons
    /// share it, each flow run by one at a time (see [`Cluster`]). A process that holds
    /// it alone ([`PgStore::open`]) and a cluster exclude each other.
    pub fn open_cluster(url: &str, node: &str) -> Result<PgStore, StateError> {
        let mut target = target(url)?;
        target.shared = true;
        Self::start(target, Some(node))
    }

    fn start(target: Target, node: Option<&str>) -> Result<PgStore, StateError> {
        // The first connection takes the lock and migrates; the others follow.
        let mut shards = vec![Db::start(target.clone())?];
        for _ in 1..CONNECTIONS {
            shards.push(Db::start(Target {
                leads: false,
                ..target.clone()
            })?);
        }
        let shards = Shards(shards.into());
        let cluster = node.map(|node| {
            Arc::new(PgCluster {
                shards: shards.clone(),
                node: node.to_string(),
                holder: format!("{node}/{:016x}", rand::random::<u64>()),
                fences: Default::default(),
            })
        });
        Ok(PgStore { shards, cluster })
    }

    /// After the state moved elsewhere: rename its schema (`<schema>_moved_<time>`), so
    /// that nothing runs on the old copy by mistake; the new name.
    pub fn retire(&self) -> Result<String, StateError> {
        on_db!(self.shards.first(), |client, err| {
            let schema: String = client
                .query_one("SELECT current_schema()", &[])
                .map_err(&err)?
                .get(0);
            let renamed = format!("{schema}_moved_{}", Utc::now().format("%Y%m%d%H%M%S"));
            client
                .batch_execute(&format!(
                    "ALTER SCHEMA \"{schema}\" RENAME TO \"{renamed}\""
                ))
                .map_err(&err)?;
            Ok(renamed)
        })
    }

    fn pg_flow(&self, name: &str) -> PgFlow {
        PgFlow {
            name: name.to_string(),
            db: self.shards.of(name),
            fence: None,
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<Value, StateError> {
    Ok(serde_json::to_value(value)?)
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, StateError> {
    Ok(serde_json::from_value(value)?)
}

fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
    }
}

/// A flow's chunk epoch as it is now (0 before it first moved), in a statement whose `$1`
/// is the flow.
const CHUNK_EPOCH_NOW: &str = "COALESCE((SELECT epoch FROM chunk_epochs WHERE flow = $1), 0)";

/// Move a flow's chunk epoch on (see `migrations/postgres/V3__settled_chunks.sql`).
const NEXT_CHUNK_EPOCH: &str = "INSERT INTO chunk_epochs (flow, epoch) VALUES ($1, 1)
     ON CONFLICT (flow) DO UPDATE SET epoch = chunk_epochs.epoch + 1";

fn row_status_word(status: RowStatus) -> &'static str {
    match status {
        RowStatus::Sent => "sent",
        RowStatus::Skipped => "skipped",
        RowStatus::Failed => "failed",
        RowStatus::Filtered => "filtered",
    }
}

fn row_status_of(word: &str) -> RowStatus {
    match word {
        "skipped" => RowStatus::Skipped,
        "failed" => RowStatus::Failed,
        "filtered" => RowStatus::Filtered,
        _ => RowStatus::Sent,
    }
}

/// The places of the last of each key (`None`: not counted), in order: an upsert may
/// not touch one row twice in a statement, and the last word on a key is the one kept.
fn last_of_each<'k>(keys: impl Iterator<Item = Option<&'k str>>) -> Vec<usize> {
    let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, key) in keys.enumerate() {
        if let Some(key) = key {
            last.insert(key, i);
        }
    }
    let mut places: Vec<usize> = last.into_values().collect();
    places.sort_unstable();
    places
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for PgStore {
    fn flow(&self, name: &str) -> Result<Arc<dyn FlowState>, StateError> {
        Ok(Arc::new(self.pg_flow(name)))
    }

    async fn flush(&self) -> Result<(), StateError> {
        self.shards.durable().await
    }

    fn interrupt_stale_runs(&self, at: DateTime<Utc>) -> Result<Vec<(String, u64)>, StateError> {
        let running: Vec<(String, i64)> = self.shards.first().rows(
            "SELECT flow, id FROM runs WHERE status = 'running' ORDER BY flow, id",
            vec![],
            |row| (row.get(0), row.get(1)),
        )?;
        let mut stale = Vec::new();
        for (name, id) in running {
            let flow = self.pg_flow(&name);
            if let Some(mut summary) = flow.run(id as u64)? {
                super::mark_interrupted(&flow, &mut summary, at)?;
                stale.push((name, id as u64));
            }
        }
        Ok(stale)
    }

    fn cluster(&self) -> Option<Arc<dyn Cluster>> {
        self.cluster
            .as_ref()
            .map(|c| Arc::clone(c) as Arc<dyn Cluster>)
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<Found>, StateError> {
        let terms = search::query_terms(query);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_db!(self.shards.first(), |client, err| {
            let mut found: Vec<Found> = Vec::new();
            for term in &terms {
                let rows = if !search::matches_start(term) {
                    client.query(
                        "SELECT flow, run, seq FROM found WHERE term = $1 ORDER BY flow, run, seq LIMIT $2",
                        &[&term, &limit],
                    )
                } else {
                    let end = format!("{term}\u{10FFFF}");
                    client.query(
                        "SELECT flow, run, seq FROM found WHERE term >= $1 AND term < $2 ORDER BY term, flow, run, seq LIMIT $3",
                        &[&term, &end, &limit],
                    )
                }
                .map_err(&err)?;
                for row in rows {
                    let hit = Found {
                        flow: row.get(0),
                        run: row.get::<_, i64>(1) as u64,
                        seq: row.get::<_, i64>(2) as u64,
                    };
                    if !found.contains(&hit) {
                        found.push(hit);
                    }
                    if found.len() as i64 >= limit {
                        return Ok(found);
                    }
                }
            }
            Ok(found)
        })
    }
}

/// One flow's rows of the tables.
#[derive(Clone)]
pub struct PgFlow {
    name: String,
    db: Arc<Db>,
    /// The lease a run holds the flow by, in a cluster: its writes are checked against it.
    fence: Option<Arc<Fence>>,
}

impl PgFlow {
    /// The JSON values `sql` returns in its first column, for this flow (`$1`) and
    /// `params` (`$2`…), read as `T`.
    fn values<T: serde::de::DeserializeOwned>(
        &self,
        sql: &'static str,
        params: Vec<i64>,
    ) -> Result<Vec<T>, StateError> {
        let mut args: Vec<Param> = vec![Box::new(self.name.clone())];
        args.extend(params.into_iter().map(|p| Box::new(p) as Param));
        let values: Vec<Value> = self.db.rows(sql, args, |row| row.get(0))?;
        values.into_iter().map(parse).collect()
    }

    fn summaries(
        &self,
        sql: &'static str,
        params: Vec<i64>,
    ) -> Result<Vec<RunSummary>, StateError> {
        self.values(sql, params)
    }

    fn outcomes(&self, sql: &'static str, params: Vec<i64>) -> Result<Vec<RowOutcome>, StateError> {
        self.values(sql, params)
    }

    fn indexed(&self) -> Result<u64, StateError> {
        Ok(self
            .load_meta(INDEXED)?
            .and_then(|v| v.as_u64())
            .unwrap_or(0))
    }
}

impl FlowState for PgFlow {
    fn name(&self) -> &str {
        &self.name
    }
}

impl ChunkNotes for PgFlow {
    fn handled_many(&self, keys: &[&str]) -> Result<Vec<Option<Handled>>, StateError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let flow = self.name.clone();
        // The keys go to the connection's thread; the answer is matched to `keys` here.
        let sent: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let found: std::collections::HashMap<String, Handled> = on_db!(self.db, |client, err| {
            // One probe of the primary key per key, whatever the statistics say:
            // `key = ANY($2)` with 5,000 keys was planned as a scan of the flow's rows
            // (80–110 ms a chunk at a million remembered keys, ~10 ms this way). The
            // LIMIT keeps the planner from turning the probes into a join.
            let probe = prepared(
                client,
                "SELECT k.key, s.run, s.status, s.digest FROM unnest($2::text[]) AS k(key)
                     CROSS JOIN LATERAL (SELECT run, status, digest FROM seen
                                         WHERE flow = $1 AND key = k.key LIMIT 1) s",
            )
            .map_err(&err)?;
            Ok(client
                .query(&probe, &[&flow, &sent])
                .map_err(&err)?
                .iter()
                .map(|row| {
                    (
                        row.get::<_, String>(0),
                        Handled {
                            run: row.get::<_, i64>(1) as u64,
                            status: row_status_of(row.get(2)),
                            digest: row.get(3),
                        },
                    )
                })
                .collect())
        })?;
        // A key asked twice (a source repeating it) is told twice.
        Ok(keys.iter().map(|key| found.get(*key).cloned()).collect())
    }

    fn chunk_epoch(&self) -> Result<u64, StateError> {
        let flow = self.name.clone();
        on_db!(self.db, |client, err| {
            Ok(client
                .query_one(&format!("SELECT {CHUNK_EPOCH_NOW}"), &[&flow])
                .map_err(&err)?
                .get::<_, i64>(0) as u64)
        })
    }

    fn chunk_settled(&self, print: &ChunkPrint, run: u64) -> Result<bool, StateError> {
        let (flow, print, run) = (self.name.clone(), print.as_bytes().to_vec(), i64_of(run));
        on_db!(self.db, |client, err| {
            Ok(client
                .query_opt(
                    &format!(
                        "UPDATE settled_chunks SET run = $3
                         WHERE flow = $1 AND print = $2 AND epoch = {CHUNK_EPOCH_NOW}
                         RETURNING 1"
                    ),
                    &[&flow, &print, &run],
                )
                .map_err(&err)?
                .is_some())
        })
    }

    fn settle_chunk(&self, print: &ChunkPrint, epoch: u64, run: u64) -> Result<(), StateError> {
        let (flow, print) = (self.name.clone(), print.as_bytes().to_vec());
        let (epoch, run) = (i64_of(epoch), i64_of(run));
        on_db!(self.db, |client, err| {
            client
                .execute(
                    "INSERT INTO settled_chunks (flow, print, epoch, run) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (flow, print) DO UPDATE SET epoch = EXCLUDED.epoch, run = EXCLUDED.run",
                    &[&flow, &print, &epoch, &run],
                )
                .map_err(&err)?;
            Ok(())
        })
    }

    fn forget_chunks_unseen_by(&self, run: u64) -> Result<(), StateError> {
        let (flow, run) = (self.name.clone(), i64_of(run));
        on_db!(self.db, |client, err| {
            client
                .execute(
                    &format!(
                        "DELETE FROM settled_chunks
                         WHERE flow = $1 AND (run <> $2 OR epoch <> {CHUNK_EPOCH_NOW})"
                    ),
                    &[&flow, &run],
                )
                .map_err(&err)?;
            Ok(())
        })
    }
}

#[async_trait]
impl Journal for PgFlow {
    fn begin_run(&self, trigger: Trigger, at: DateTime<Utc>) -> Result<RunSummary, StateError> {
        let flow = self.name.clone();
        let id: i64 = on_db!(self.db, |client, err| {
            Ok(client
                .query_one(
                    "SELECT COALESCE(MAX(id), 0) + 1 FROM runs WHERE flow = $1",
                    &[&flow],
                )
                .map_err(&err)?
                .get(0))
        })?;
        let summary = RunSummary {
            version: 1,
            id: id as u64,
            flow: self.name.clone(),
            trigger,
            started_at: at,
            finished_at: None,
            status: RunStatus::Running,
            counts: Default::default(),
            error: None,
            node: self.fence.as_ref().map(|f| f.node.clone()),
        };
        let (flow, value, fence) = (self.name.clone(), json(&summary)?, self.fence.clone());
        on_db!(self.db, |client, err| {
            let mut tx = client.transaction().map_err(&err)?;
            fenced(&mut tx, &flow, fence.as_deref(), &err)?;
            tx.execute(
                "INSERT INTO runs (flow, id, status, summary) VALUES ($1, $2, 'running', $3)",
                &[&flow, &id, &value],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(())
        })?;
        Ok(summary)
    }

    fn save_run(&self, summary: &RunSummary) -> Result<(), StateError> {
        let (flow, id, status, value) = (
            self.name.clone(),
            i64_of(summary.id),
            status_word(summary.status),
            json(summary)?,
        );
        let fence = self.fence.clone();
        on_db!(self.db, |client, err| {
            let mut tx = client.transaction().map_err(&err)?;
            fenced(&mut tx, &flow, fence.as_deref(), &err)?;
            tx.execute(
                "INSERT INTO runs (flow, id, status, summary) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (flow, id) DO UPDATE SET status = EXCLUDED.status, summary = EXCLUDED.summary",
                &[&flow, &id, &status, &value],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(())
        })
    }

    fn handled(&self, key: &str) -> Result<Option<Handled>, StateError> {
        let (flow, key) = (self.name.clone(), key.to_string());
        on_db!(self.db, |client, err| {
            Ok(client
                .query_opt(
                    "SELECT run, status, digest FROM seen WHERE flow = $1 AND key = $2",
                    &[&flow, &key],
                )
                .map_err(&err)?
                .map(|row| Handled {
                    run: row.get::<_, i64>(0) as u64,
                    status: row_status_of(row.get(1)),
                    digest: row.get(2),
                }))
        })
    }

    fn sort_chunk(
        &self,
        print: Option<ChunkPrint>,
        keys: &[&str],
        run: u64,
    ) -> Result<Sorted, StateError> {
        chunks::sort(self, print, keys, run)
    }

    fn settle(&self, note: ChunkNote, run: u64) -> Result<(), StateError> {
        chunks::settle(self, note, run)
    }

    fn primed(&self) -> Result<bool, StateError> {
        chunks::primed(self)
    }

    fn read_to_end(&self, run: u64, whole: bool) -> Result<(), StateError> {
        chunks::read_to_end(self, run, whole)
    }

    fn mark_in_flight(
        &self,
        run: u64,
        first_seq: u64,
        entries: &[InFlight],
    ) -> Result<(LedgerMark, Durable), StateError> {
        // No send starts on a lease that may have lapsed.
        if let Some(fence) = &self.fence {
            fence.may_send(&self.name)?;
        }
        let mark = format!("{run:020}:{first_seq:020}");
        let (flow, value, key) = (self.name.clone(), json(&entries)?, mark.clone());
        let shown = self.db.shown.clone();
        let fence = self.fence.clone();
        self.db.submit(move |client| {
            let err = db_error(&shown);
            // One statement (one round trip), refused once the lease is another's.
            let insert = prepared(
                client,
                "WITH held AS (SELECT 1 FROM leases WHERE flow = $1 AND fence = $4 FOR SHARE)
                 INSERT INTO ledger (flow, mark, entries)
                 SELECT $1, $2, $3 WHERE $4::bigint IS NULL OR EXISTS (SELECT 1 FROM held)
                 ON CONFLICT (flow, mark) DO UPDATE SET entries = EXCLUDED.entries",
            )
            .map_err(&err)?;
            let fence_value = fence.as_ref().map(|f| f.value);
            let written = client
                .execute(&insert, &[&flow, &key, &value, &fence_value])
                .map_err(&err)?;
            if written == 0 {
                return Err(refused(fence.as_deref(), &flow));
            }
            Ok(())
        })?;
        // Durable with the next synchronous commit, which marks made at the same time
        // share; a failure of the write before it fails it (no send may start then), and
        // so does a lease lost meanwhile (the mark was refused).
        let db = Arc::clone(&self.db);
        let (fence, name) = (self.fence.clone(), self.name.clone());
        let durable: Durable = async move {
            db.durable().await.map_err(Arc::new)?;
            match fence {
                Some(fence) => fence.held(&name).map_err(Arc::new),
                None => Ok(()),
            }
        }
        .boxed()
        .shared();
        Ok((LedgerMark(mark.into_bytes()), durable))
    }

    fn record(
        &self,
        outcomes: &[(&RowOutcome, bool)],
        settled: &[LedgerMark],
    ) -> Result<(), StateError> {
        if outcomes.is_empty() && settled.is_empty() {
            return Ok(());
        }
        if let Some(fence) = &self.fence {
            fence.held(&self.name)?;
        }
        let flow = self.name.clone();
        let (mut runs, mut seqs, mut values) = (Vec::new(), Vec::new(), Vec::new());
        let (mut keys, mut key_runs, mut statuses, mut digests) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // The progress through `steps:` of the records remembered now.
        let mut progress: Vec<String> = Vec::new();
        for (outcome, _) in outcomes {
            runs.push(i64_of(outcome.run));
            seqs.push(i64_of(outcome.seq));
            values.push(json(*outcome)?);
        }
        // A key twice in one group is remembered as its last outcome says.
        let remembered = last_of_each(
            outcomes
                .iter()
                .map(|(outcome, remember)| remember.then_some(outcome.key.as_str())),
        );
        for i in remembered {
            let outcome = outcomes[i].0;
            keys.push(outcome.key.clone());
            key_runs.push(i64_of(outcome.run));
            statuses.push(row_status_word(outcome.status).to_string());
            digests.push(outcome.digest.clone());
            if !outcome.steps.is_empty() {
                progress.push(super::progress_key(&outcome.key));
            }
        }
        let marks: Vec<String> = settled
            .iter()
            .map(|m| String::from_utf8_lossy(&m.0).into_owned())
            .collect();
        let shown = self.db.shown.clone();
        let fence = self.fence.clone();
        self.db.submit(move |client| {
            let err = db_error(&shown);
            // The outcomes, then their keys, then the marks they settle: one transaction,
            // committed without waiting for the disk. As with sled's writes between
            // flushes: lost in a crash, it is lost whole, and the marks it would have
            // settled are still there, so those sends count as in flight. The next
            // durable write (a mark, a flush) makes it durable too: the log is written
            // in order.
            // One statement, so one round trip (a statement is its own transaction);
            // refused whole once another node took the flow over (it records them): the
            // lease's row is share-locked for the statement, so a takeover waits for it.
            let record = prepared(
                client,
                "WITH held AS (SELECT 1 FROM leases WHERE flow = $1 AND fence = $10 FOR SHARE),
                      ok AS (SELECT $10::bigint IS NULL OR EXISTS (SELECT 1 FROM held) AS go),
                      r AS (INSERT INTO rows (flow, run, seq, outcome)
                            SELECT $1, r, s, o FROM ok, UNNEST($2::bigint[], $3::bigint[], $4::jsonb[]) AS t(r, s, o)
                            WHERE ok.go
                            ON CONFLICT (flow, run, seq) DO UPDATE SET outcome = EXCLUDED.outcome),
                      k AS (INSERT INTO seen (flow, key, run, status, digest)
                            SELECT $1, k, r, st, d FROM ok, UNNEST($5::text[], $6::bigint[], $7::text[], $8::text[]) AS t(k, r, st, d)
                            WHERE ok.go
                            ON CONFLICT (flow, key) DO UPDATE SET run = EXCLUDED.run, status = EXCLUDED.status, digest = EXCLUDED.digest),
                      -- a pushed event leaves the queue with its outcome (a probe per key)
                      q AS (DELETE FROM queue WHERE (SELECT go FROM ok) AND flow = $1 AND key = ANY($5::text[])),
                      -- a record's progress through `steps:` goes with its outcome
                      p AS (DELETE FROM meta WHERE (SELECT go FROM ok) AND flow = $1 AND name = ANY($11::text[])),
                      -- each mark found by its own probe and removed by its row's address:
                      -- `mark = ANY($9)` was planned as a walk of the flow's ledger (a table
                      -- of a few live rows and, until vacuumed, thousands of dead ones)
                      d AS (DELETE FROM ledger WHERE (SELECT go FROM ok) AND ctid = ANY(ARRAY(
                                SELECT l.ctid FROM UNNEST($9::text[]) AS m(mark)
                                CROSS JOIN LATERAL (SELECT ctid FROM ledger
                                                    WHERE flow = $1 AND mark = m.mark LIMIT 1) l))),
                      -- a key handled before (the statement sees seen as it was) judged
                      -- again may be new again for a settled chunk's data; a probe per key
                      -- (a join was planned as a walk of every key the flow remembers)
                      e AS (INSERT INTO chunk_epochs (flow, epoch)
                            SELECT $1, 1 FROM ok
                            WHERE ok.go AND EXISTS (
                                SELECT 1 FROM UNNEST($5::text[], $7::text[]) AS t(k, st)
                                CROSS JOIN LATERAL (SELECT 1 FROM seen
                                                    WHERE seen.flow = $1 AND seen.key = t.k LIMIT 1) s
                                WHERE t.st IN ('failed', 'filtered'))
                            ON CONFLICT (flow) DO UPDATE SET epoch = chunk_epochs.epoch + 1)
                 SELECT go FROM ok",
            )
            .map_err(&err)?;
            let fence_value = fence.as_ref().map(|f| f.value);
            let go: bool = client
                .query_one(
                    &record,
                    &[
                        &flow, &runs, &seqs, &values, &keys, &key_runs, &statuses, &digests,
                        &marks, &fence_value, &progress,
                    ],
                )
                .map_err(&err)?
                .get(0);
            if !go {
                return Err(refused(fence.as_deref(), &flow));
            }
            Ok(())
        })
    }

    fn recover(&self) -> Result<Ledger, StateError> {
        let marked: Vec<(String, Value)> = self.db.rows(
            "SELECT mark, entries FROM ledger WHERE flow = $1 ORDER BY mark",
            vec![Box::new(self.name.clone())],
            |row| (row.get(0), row.get(1)),
        )?;
        let mut ledger = Ledger::default();
        for (mark, entries) in marked {
            let members: Vec<InFlight> = parse(entries)?;
            for member in members {
                // Settled: its outcome is stored (its key remembered by its run or later).
                let settled = self
                    .handled(&member.key)?
                    .is_some_and(|h| h.run >= member.run);
                if !settled {
                    ledger.entries.push(member);
                }
            }
            ledger.marks.push(LedgerMark(mark.into_bytes()));
        }
        Ok(ledger)
    }

    async fn durable(&self) -> Result<(), StateError> {
        self.db.durable().await
    }

    fn interrupt_unfinished_runs(&self, at: DateTime<Utc>) -> Result<usize, StateError> {
        let running = self.summaries(
            "SELECT summary FROM runs WHERE flow = $1 AND status = 'running' ORDER BY id",
            vec![],
        )?;
        let count = running.len();
        for mut summary in running {
            super::mark_interrupted(self, &mut summary, at)?;
        }
        Ok(count)
    }
}

impl History for PgFlow {
    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StateError> {
        self.summaries(
            "SELECT summary FROM runs WHERE flow = $1 ORDER BY id DESC LIMIT $2",
            vec![i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    fn run(&self, id: u64) -> Result<Option<RunSummary>, StateError> {
        Ok(self
            .summaries(
                "SELECT summary FROM runs WHERE flow = $1 AND id = $2",
                vec![i64_of(id)],
            )?
            .pop())
    }

    fn rows(&self, run: u64) -> Result<Vec<RowOutcome>, StateError> {
        self.outcomes(
            "SELECT outcome FROM rows WHERE flow = $1 AND run = $2 ORDER BY seq",
            vec![i64_of(run)],
        )
    }

    fn rows_from(
        &self,
        run: u64,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<RowOutcome>, StateError> {
        self.outcomes(
            "SELECT outcome FROM rows WHERE flow = $1 AND run = $2 AND seq >= $3 ORDER BY seq LIMIT $4",
            vec![i64_of(run), i64_of(from_seq), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    fn index_runs(&self) -> Result<u64, StateError> {
        let mut indexed = self.indexed()?;
        let mut rows_indexed = 0;
        let after = self.summaries(
            "SELECT summary FROM runs WHERE flow = $1 AND id > $2 ORDER BY id",
            vec![i64_of(indexed)],
        )?;
        for summary in after {
            // Runs are indexed in order, once they ended: one under way stops the pass.
            if summary.status == RunStatus::Running {
                break;
            }
            let rows = self.rows(summary.id)?;
            let (mut terms, mut runs, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
            for row in &rows {
                for term in search::terms_of(row) {
                    terms.push(term);
                    runs.push(i64_of(row.run));
                    seqs.push(i64_of(row.seq));
                }
            }
            let flow = self.name.clone();
            on_db!(self.db, |client, err| {
                client
                    .execute(
                        "INSERT INTO found (term, flow, run, seq)
                         SELECT t, $1, r, s FROM UNNEST($2::text[], $3::bigint[], $4::bigint[]) AS x(t, r, s)
                         ON CONFLICT DO NOTHING",
                        &[&flow, &terms, &runs, &seqs],
                    )
                    .map_err(&err)?;
                Ok(())
            })?;
            rows_indexed += rows.len() as u64;
            indexed = summary.id;
            self.save_meta(INDEXED, &Value::from(indexed))?;
        }
        Ok(rows_indexed)
    }

    fn all_rows(&self) -> Box<dyn Iterator<Item = Result<RowOutcome, StateError>> + Send + '_> {
        // A run at a time, oldest first: the history is not held in memory at once.
        let ids = match self.summaries(
            "SELECT summary FROM runs WHERE flow = $1 ORDER BY id",
            vec![],
        ) {
            Ok(runs) => runs.into_iter().map(|r| r.id).collect::<Vec<_>>(),
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        Box::new(ids.into_iter().flat_map(move |id| match self.rows(id) {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        }))
    }

    fn prune(&self, retention: &Retention, dry_run: bool) -> Result<Pruned, StateError> {
        let runs = self.summaries(
            "SELECT summary FROM runs WHERE flow = $1 ORDER BY id",
            vec![],
        )?;
        let ids: Vec<i64> = super::prunable(&runs, retention)
            .map(|r| i64_of(r.id))
            .collect();
        if ids.is_empty() {
            return Ok(Pruned::default());
        }
        let (flow, forget) = (self.name.clone(), retention.forget_handled);
        on_db!(self.db, |client, err| {
            let mut tx = client.transaction().map_err(&err)?;
            let records: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM rows WHERE flow = $1 AND run = ANY($2)",
                    &[&flow, &ids],
                )
                .map_err(&err)?
                .get(0);
            // A key is forgotten when a pruned run is the last to have handled it.
            let keys: i64 = if forget {
                tx.query_one(
                    "SELECT COUNT(*) FROM seen WHERE flow = $1 AND run = ANY($2)",
                    &[&flow, &ids],
                )
                .map_err(&err)?
                .get(0)
            } else {
                0
            };
            if !dry_run {
                if forget && keys > 0 {
                    tx.execute(
                        "DELETE FROM seen WHERE flow = $1 AND run = ANY($2)",
                        &[&flow, &ids],
                    )
                    .map_err(&err)?;
                    // Forgotten keys are new again: no settled chunk is taken as it was.
                    tx.execute(NEXT_CHUNK_EPOCH, &[&flow]).map_err(&err)?;
                }
                for table in ["rows", "found"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE flow = $1 AND run = ANY($2)"),
                        &[&flow, &ids],
                    )
                    .map_err(&err)?;
                }
                tx.execute(
                    "DELETE FROM runs WHERE flow = $1 AND id = ANY($2)",
                    &[&flow, &ids],
                )
                .map_err(&err)?;
            }
            tx.commit().map_err(&err)?;
            Ok(Pruned {
                runs: ids.len() as u64,
                records: records as u64,
                keys: keys as u64,
            })
        })
    }

    fn backlog(&self) -> Result<(usize, usize), StateError> {
        let flow = self.name.clone();
        on_db!(self.db, |client, err| {
            let row = client
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM queue WHERE flow = $1),
                            (SELECT COALESCE(SUM(jsonb_array_length(entries)), 0)::bigint FROM ledger WHERE flow = $1)",
                    &[&flow],
                )
                .map_err(&err)?;
            Ok((row.get::<_, i64>(0) as usize, row.get::<_, i64>(1) as usize))
        })
    }

    fn failed_since(&self, run: u64) -> Result<u64, StateError> {
        let flow = self.name.clone();
        let run = i64_of(run);
        on_db!(self.db, |client, err| {
            let row = client
                .query_one(
                    "SELECT COUNT(*) FROM seen WHERE flow = $1 AND run >= $2 AND status = 'failed'",
                    &[&flow, &run],
                )
                .map_err(&err)?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }
}

impl Inbox for PgFlow {
    fn enqueue(&self, records: &[Record]) -> Result<(), StateError> {
        let flow = self.name.clone();
        // Each key once, its last event (an event with a key already queued replaces it,
        // as the latest arrival).
        let order = last_of_each(records.iter().map(|r| Some(r.key.as_str())));
        let keys: Vec<String> = order.iter().map(|i| records[*i].key.clone()).collect();
        let fields: Vec<Value> = order
            .iter()
            .map(|i| Value::Object(records[*i].fields.clone()))
            .collect();
        let shown = self.db.shown.clone();
        // Durable once the store is flushed (as the trait says): the webhook door flushes
        // before it answers, sharing the flush with its neighbours.
        self.db.submit(move |client| {
            let err = db_error(&shown);
            let insert = prepared(
                client,
                "INSERT INTO queue (flow, key, fields)
                 SELECT $1, k, f FROM UNNEST($2::text[], $3::jsonb[]) WITH ORDINALITY AS t(k, f, n) ORDER BY n
                 ON CONFLICT (flow, key) DO UPDATE SET fields = EXCLUDED.fields, arrived = EXCLUDED.arrived",
            )
            .map_err(&err)?;
            client.execute(&insert, &[&flow, &keys, &fields]).map_err(&err)?;
            Ok(())
        })
    }

    fn queued(&self) -> Result<Vec<Record>, StateError> {
        let queued: Vec<(String, Value)> = self.db.rows(
            "SELECT key, fields FROM queue WHERE flow = $1 ORDER BY arrived",
            vec![Box::new(self.name.clone())],
            |row| (row.get(0), row.get(1)),
        )?;
        queued
            .into_iter()
            .map(|(key, fields)| Ok(Record::new(key, parse::<Map<String, Value>>(fields)?)))
            .collect()
    }

    fn has_queued(&self) -> Result<bool, StateError> {
        let flow = self.name.clone();
        on_db!(self.db, |client, err| {
            Ok(client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM queue WHERE flow = $1)",
                    &[&flow],
                )
                .map_err(&err)?
                .get(0))
        })
    }

    fn drop_handled_from_queue(&self) -> Result<usize, StateError> {
        let flow = self.name.clone();
        on_db!(self.db, |client, err| {
            Ok(client
                .execute(
                    "DELETE FROM queue q USING seen s WHERE q.flow = $1 AND s.flow = q.flow AND s.key = q.key",
                    &[&flow],
                )
                .map_err(&err)? as usize)
        })
    }
}

impl Meta for PgFlow {
    fn load_meta(&self, key: &str) -> Result<Option<Value>, StateError> {
        let (flow, key) = (self.name.clone(), key.to_string());
        on_db!(self.db, |client, err| {
            Ok(client
                .query_opt(
                    "SELECT value FROM meta WHERE flow = $1 AND name = $2",
                    &[&flow, &key],
                )
                .map_err(&err)?
                .map(|row| row.get(0)))
        })
    }

    fn save_metas(&self, entries: &[(String, Value)]) -> Result<(), StateError> {
        let flow = self.name.clone();
        let (names, values): (Vec<String>, Vec<Value>) = entries.iter().cloned().unzip();
        on_db!(self.db, |client, err| {
            client
                .execute(
                    "INSERT INTO meta (flow, name, value)
                     SELECT $1, n, v FROM UNNEST($2::text[], $3::jsonb[]) AS t(n, v)
                     ON CONFLICT (flow, name) DO UPDATE SET value = EXCLUDED.value",
                    &[&flow, &names, &values],
                )
                .map_err(&err)?;
            Ok(())
        })
    }

    fn metas_under(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        let (flow, from, to) = (
            self.name.clone(),
            prefix.to_string(),
            super::after_prefix(prefix),
        );
        on_db!(self.db, |client, err| {
            Ok(client
                .query(
                    "SELECT name, value FROM meta WHERE flow = $1 AND name >= $2 AND name < $3 ORDER BY name",
                    &[&flow, &from, &to],
                )
                .map_err(&err)?
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect())
        })
    }

    fn save_meta(&self, key: &str, value: &Value) -> Result<(), StateError> {
        let (flow, key, value) = (self.name.clone(), key.to_string(), value.clone());
        on_db!(self.db, |client, err| {
            client
                .execute(
                    "INSERT INTO meta (flow, name, value) VALUES ($1, $2, $3)
                     ON CONFLICT (flow, name) DO UPDATE SET value = EXCLUDED.value",
                    &[&flow, &key, &value],
                )
                .map_err(&err)?;
            Ok(())
        })
    }

    fn replace_meta(
        &self,
        key: &str,
        expected: Option<&Value>,
        value: &Value,
    ) -> Result<bool, StateError> {
        let (flow, key, expected, value) = (
            self.name.clone(),
            key.to_string(),
            expected.cloned(),
            value.clone(),
        );
        on_db!(self.db, |client, err| {
            let changed = match &expected {
                None => client.execute(
                    "INSERT INTO meta (flow, name, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&flow, &key, &value],
                ),
                Some(expected) => client.execute(
                    "UPDATE meta SET value = $3 WHERE flow = $1 AND name = $2 AND value = $4",
                    &[&flow, &key, &value, expected],
                ),
            }
            .map_err(&err)?;
            Ok(changed == 1)
        })
    }
}

impl super::migrate::Portable for PgStore {
    fn put_handled(&self, flow: &str, handled: &[(String, Handled)]) -> Result<(), StateError> {
        let flow = flow.to_string();
        let keys: Vec<String> = handled.iter().map(|(k, _)| k.clone()).collect();
        let runs: Vec<i64> = handled.iter().map(|(_, h)| i64_of(h.run)).collect();
        let statuses: Vec<String> = handled
            .iter()
            .map(|(_, h)| row_status_word(h.status).to_string())
            .collect();
        let digests: Vec<Option<String>> = handled.iter().map(|(_, h)| h.digest.clone()).collect();
        on_db!(self.shards.of(&flow), |client, err| {
            client
                .execute(
                    "INSERT INTO seen (flow, key, run, status, digest)
                     SELECT $1, k, r, s, d FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[]) AS t(k, r, s, d)
                     ON CONFLICT (flow, key) DO UPDATE SET run = EXCLUDED.run, status = EXCLUDED.status, digest = EXCLUDED.digest",
                    &[&flow, &keys, &runs, &statuses, &digests],
                )
                .map_err(&err)?;
            Ok(())
        })
    }
}

impl super::migrate::Export for PgStore {
    fn flow_names(&self) -> Result<Vec<String>, StateError> {
        self.shards.first().rows(
            "SELECT flow FROM runs UNION SELECT flow FROM seen UNION SELECT flow FROM queue
             UNION SELECT flow FROM ledger UNION SELECT flow FROM meta ORDER BY 1",
            vec![],
            |row| row.get(0),
        )
    }

    fn all_handled(&self, flow: &str) -> Result<Vec<(String, Handled)>, StateError> {
        self.shards.of(flow).rows(
            "SELECT key, run, status, digest FROM seen WHERE flow = $1 ORDER BY key",
            vec![Box::new(flow.to_string())],
            |row| {
                (
                    row.get(0),
                    Handled {
                        run: row.get::<_, i64>(1) as u64,
                        status: row_status_of(row.get(2)),
                        digest: row.get(3),
                    },
                )
            },
        )
    }

    fn all_in_flight(&self, flow: &str) -> Result<Vec<(u64, u64, Vec<InFlight>)>, StateError> {
        let marked: Vec<(String, Value)> = self.shards.of(flow).rows(
            "SELECT mark, entries FROM ledger WHERE flow = $1 ORDER BY mark",
            vec![Box::new(flow.to_string())],
            |row| (row.get(0), row.get(1)),
        )?;
        marked
            .into_iter()
            .map(|(mark, entries)| {
                let (run, seq) = mark.split_once(':').unwrap_or((&mark, "0"));
                Ok((
                    run.parse().unwrap_or(0),
                    seq.parse().unwrap_or(0),
                    parse(entries)?,
                ))
            })
            .collect()
    }

    fn all_meta(&self, flow: &str) -> Result<Vec<(String, Value)>, StateError> {
        let values: Vec<(String, Value)> = self.shards.of(flow).rows(
            "SELECT name, value FROM meta WHERE flow = $1 ORDER BY name",
            vec![Box::new(flow.to_string())],
            |row| (row.get(0), row.get(1)),
        )?;
        Ok(super::migrate::moved_meta(values))
    }
}
