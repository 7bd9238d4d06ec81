//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Switchboard: app-to-app automations from a directory of YAML flows.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about,
    propagate_version = true,
    after_help = "Start: `switchboard quickstart` runs the bundled example offline.\n\
                  Flow files: README.md (\"Flow files\"), `switchboard connectors NAME` for a connector's\n\
                  options and fields, `switchboard schema flow` for editors."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The directory of flow files.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_FLOWS",
        default_value = "flows"
    )]
    pub flows: PathBuf,
    /// The accounts file [default: accounts.yaml in the flows directory].
    #[arg(long, global = true, env = "SWITCHBOARD_ACCOUNTS")]
    pub accounts: Option<PathBuf>,
    /// The state directory [default: .switchboard in the flows directory], or a
    /// PostgreSQL database: postgres://user@host/db[?schema=NAME].
    #[arg(long, global = true, env = "SWITCHBOARD_STATE")]
    pub state: Option<PathBuf>,
    /// Use a state whose database lost data (deleted, emptied, restored from an older
    /// copy), or that the flows were not run with, as it is: rows it does not know may be
    /// sent again.
    #[arg(long, global = true)]
    pub accept_state_loss: bool,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// What the runtime is given.
    pub fn global(&self) -> runtime::Global {
        runtime::Global {
            flows: self.flows.clone(),
            accounts: self.accounts.clone(),
            state: self.state.clone(),
            accept_state_loss: self.accept_state_loss,
            verbose: self.verbose,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every flow file and the accounts file; report every problem at once.
    #[command(after_help = "Example:\n  switchboard validate --flows examples/quickstart")]
    Validate {
        /// Print the problems as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a new flow file, commented from the connector catalogue, and the accounts
    /// it needs (secrets from the environment).
    #[command(after_help = "Example:\n  switchboard new order-sms --source csv --receiver 8x8")]
    New {
        /// The flow's name (its file is FLOW.yaml in the flows directory).
        flow: String,
        /// Where records come from (`switchboard connectors` lists the sources).
        #[arg(long)]
        source: String,
        /// Where records go.
        #[arg(long)]
        receiver: String,
        /// The receiver's action [default: its first].
        #[arg(long)]
        action: Option<String>,
    },
    /// Run one flow now, whatever its schedule and `enabled` say.
    #[command(after_help = "Example:\n  switchboard run order-sms --flows examples/quickstart")]
    Run {
        /// The flow's name.
        flow: String,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
        /// The flow's `key:` changed: go on with the new key. Rows handled before are
        /// known by their data and not sent again; a row whose data changed since is sent.
        #[arg(long)]
        accept_key_change: bool,
    },
    /// Show exactly what the next run would send (the first records not handled before),
    /// changing no state.
    #[command(
        after_help = "Example:\n  switchboard test order-sms --limit 5\n  switchboard test order-sms --send --to +380501234567"
    )]
    Test {
        /// The flow's name.
        flow: String,
        /// How many records to preview.
        #[arg(long, default_value_t = 3)]
        limit: usize,
        /// Show records handled by earlier runs too.
        #[arg(long)]
        all: bool,
        /// A push flow: preview the events in this file (a body as the service posts it).
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// Really send the first previewed record (not remembered as handled).
        #[arg(long)]
        send: bool,
        /// With --send: deliver to this phone number instead of the record's.
        #[arg(long, requires = "send")]
        to: Option<String>,
        /// Print the preview as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send again the rows of earlier runs that failed (or were parked as uncertain).
    #[command(after_help = "Example:\n  switchboard replay order-sms --run 12")]
    Replay {
        /// The flow's name.
        flow: String,
        /// Only rows of this run (default: every run).
        #[arg(long)]
        run: Option<u64>,
        /// Failed rows, uncertain ones included (the default).
        #[arg(long, conflicts_with = "uncertain")]
        failed: bool,
        /// Only rows a crash left uncertain (`resend_uncertain: false`).
        #[arg(long)]
        uncertain: bool,
        /// Print the run report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drop the runs (with their records) that each flow's `history:` rule does not keep.
    #[command(
        after_help = "Example:\n  switchboard prune --dry-run\n  switchboard prune order-sms"
    )]
    Prune {
        /// Only this flow (default: every flow).
        flow: Option<String>,
        /// Say what would be dropped, dropping nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Resume a flow the daemon paused after its runs kept failing (`auto_pause`).
    #[command(after_help = "Example:\n  switchboard resume order-sms")]
    Resume {
        /// The flow's name.
        flow: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a flow's runs, or one run's records.
    #[command(
        after_help = "Example:\n  switchboard history order-sms\n  switchboard history order-sms --run 12"
    )]
    History {
        /// The flow's name.
        flow: String,
        /// Show the records of this run.
        #[arg(long)]
        run: Option<u64>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the flows directory: run flows on their schedules, watch for changes, and
    /// serve the control API and metrics.
    #[command(
        after_help = "Example:\n  switchboard daemon --flows /etc/switchboard/flows --listen 127.0.0.1:8080"
    )]
    Daemon {
        /// The address of the HTTP API (loopback unless a token is set).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Require `Authorization: Bearer TOKEN` on /api (needed off loopback).
        #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A name the API and the console may be reached by (the daemon's DNS name, a
        /// reverse proxy's); repeat for more. IP addresses and `localhost` always are;
        /// any other `Host` is refused (421), so a site whose name rebinds to this
        /// machine cannot use the daemon. Webhooks (`/hooks/…`) answer any name.
        #[arg(long, env = "SWITCHBOARD_ALLOW_HOSTS", value_delimiter = ',')]
        allow_host: Vec<String>,
        /// The most HTTP connections open at once; more are closed, with a log line
        /// [default: half the open-files limit, at most 4096].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_connections: Option<u32>,
        /// How long a client may take to send a request's headers; also how long an idle
        /// connection is kept.
        #[arg(long, default_value = "10s", value_parser = duration)]
        header_timeout: std::time::Duration,
        /// How long a client may take to send a request's body.
        #[arg(long, default_value = "30s", value_parser = duration)]
        body_timeout: std::time::Duration,
        /// On SIGTERM, how long runs in flight may take to finish before they stop
        /// sending and are recorded as interrupted (keep it under the service manager's
        /// stop timeout).
        #[arg(long, default_value = "30s", value_parser = duration)]
        stop_timeout: std::time::Duration,
        /// How often the history of flows with a `history:` rule is pruned, in the
        /// background.
        #[arg(long, default_value = "1h", value_parser = duration)]
        prune_every: std::time::Duration,
        /// How often the watchdog looks for scheduled flows that have not started by
        /// their next due time plus a grace (one period, at most an hour), and alerts
        /// `overdue`.
        #[arg(long, default_value = "1m", value_parser = duration)]
        watchdog_every: std::time::Duration,
        /// The most runs at once; when more flows are due, the higher `priority` starts
        /// first, then the one waiting longest [default: 4 per CPU core].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        max_runs: Option<u32>,
        /// Run as one node of a cluster: several daemons on one PostgreSQL state
        /// (`--state postgres://…`), each with the same flow files, act as one — each
        /// flow runs on one node at a time, each scheduled fire once, and a node that
        /// dies has its flows taken over by another.
        #[arg(long, env = "SWITCHBOARD_CLUSTER")]
        cluster: bool,
        /// This node's name in the cluster, as status and history show it [default: the
        /// host's name].
        #[arg(long, requires = "cluster")]
        node: Option<String>,
        /// How long a node keeps starting sends for a flow after it last renewed its
        /// lease (renewed every third of it); another node takes the flow over once the
        /// lease is that plus the flow's `delivery.max_time` old.
        #[arg(long, default_value = "30s", value_parser = duration)]
        lease: std::time::Duration,
    },
    /// List the flows of the directory: when each runs, its next and last run, its
    /// problems (from the daemon when one runs, else from the files and the state).
    #[command(after_help = "Example:\n  switchboard flows --flows examples/quickstart")]
    Flows {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the flows as the running daemon sees them.
    #[command(after_help = "Example:\n  switchboard status")]
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a flow's coming run times, as if its schedule were armed at --now.
    #[command(
        after_help = "Example:\n  switchboard next order-sms --now 2026-11-21T12:08:00+02:00"
    )]
    Next {
        /// The flow's name.
        flow: String,
        /// How many run times (1 to 1000).
        #[arg(long, default_value_t = 5, value_parser = count)]
        count: u16,
        /// The arming instant, RFC 3339 (default: now), e.g. 2026-11-21T12:08:00+02:00.
        #[arg(long)]
        now: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the connectors: what each can be (source, receiver actions, look-ups), the
    /// fields of each with type, required, default and doc, and the HTTP calls they make.
    #[command(after_help = "Example:\n  switchboard connectors 8x8")]
    Connectors {
        /// One connector, in full.
        name: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of flow files or of accounts.yaml, for editors
    /// (`# yaml-language-server: $schema=…`) and other tools.
    #[command(after_help = "Example:\n  switchboard schema flow > flow.schema.json")]
    Schema {
        /// Which file's schema.
        #[arg(value_enum, default_value = "flow")]
        of: SchemaOf,
    },
    /// Accounts in accounts.yaml.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// The state: move it (off an old sled directory, to PostgreSQL and back), check it,
    /// back it up while it is in use, give back the space pruned history left.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Serve a local stand-in for every service the connectors talk to, recording what
    /// it receives.
    #[command(
        after_help = "Example:\n  switchboard sandbox --listen 127.0.0.1:4610\n  switchboard sandbox --seed examples/aranda-solved-sms/sandbox.json"
    )]
    Sandbox {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:4610")]
        listen: SocketAddr,
        /// The address of the SMTP stand-in.
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp: SocketAddr,
        /// Start with the data in this file (Aranda cases, Text Request payments, …), as
        /// an example's `sandbox.json` has it.
        #[arg(long, value_name = "FILE")]
        seed: Option<PathBuf>,
    },
    /// Print a shell's completion script for switchboard.
    #[command(
        after_help = "Example:\n  switchboard completions bash > /etc/bash_completion.d/switchboard\n  switchboard completions zsh > \"${fpath[1]}/_switchboard\""
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Run a bundled example against the built-in stand-in: no network, no keys.
    #[command(after_help = "Example:\n  switchboard quickstart\n  switchboard quickstart --list")]
    Quickstart {
        /// A bundled example (`--list` shows them; default `quickstart`), or `all`.
        example: Option<String>,
        /// Use this flows directory instead of a bundled example.
        #[arg(long = "dir", conflicts_with = "example")]
        dir: Option<PathBuf>,
        /// List the bundled examples and what each shows.
        #[arg(long, conflicts_with_all = ["example", "dir"])]
        list: bool,
    },
}

/// The files `switchboard schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaOf {
    /// A flow file.
    Flow,
    /// accounts.yaml.
    Accounts,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Try each account with a cheap authenticated call: active, or inactive and why.
    #[command(after_help = "Example:\n  switchboard accounts check --flows examples/quickstart")]
    Check {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Move the state: an old sled directory into SQLite (`state.db` in the same
    /// directory), or the state to `--to postgres://…` (several daemons) or `--to DIR`
    /// (an embedded state there). The old copy is kept, renamed, beside it.
    #[command(
        after_help = "Example:\n  switchboard state migrate\n  switchboard state migrate --to 'postgres://switchboard@db.internal/switchboard?schema=shop'"
    )]
    Migrate {
        /// Where to move it: a PostgreSQL URL, or a directory [default: SQLite in the
        /// state directory, for an old sled directory].
        #[arg(long, value_name = "TARGET")]
        to: Option<String>,
        /// Print what moved as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the state database: SQLite's integrity check, and the directory's marker
    /// against what the database holds (exit 1 if either finds a problem).
    #[command(
        after_help = "Example:\n  switchboard state check\n  switchboard state check backup.db"
    )]
    Check {
        /// A database file (a backup) [default: the state's].
        file: Option<PathBuf>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy the state database into FILE, whole, while the daemon runs (SQLite's online
    /// backup); the copy opens as a state and passes `state check`.
    #[command(
        after_help = "Example:\n  switchboard state backup /var/backups/switchboard-$(date +%F).db"
    )]
    Backup {
        /// The new file.
        file: PathBuf,
    },
    /// Rebuild the database file without the space pruned history left (pruning gives
    /// most of it back by itself); not while a daemon holds the state.
    #[command(after_help = "Example:\n  switchboard state vacuum --flows examples/quickstart")]
    Vacuum,
}

/// A duration such as `10s`, `500ms` or `2m`, between a millisecond and an hour.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|_| format!("`{text}` is not a duration like `10s` or `500ms`"))?;
    if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(3600) {
        return Err(format!("`{text}` must be between 1ms and 1h"));
    }
    Ok(d)
}

/// `next --count`: 1 to 1000 run times.
fn count(text: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .map(|n| n as u16)
        .ok_or_else(|| format!("`{text}` is not a count from 1 to 1000"))
}
