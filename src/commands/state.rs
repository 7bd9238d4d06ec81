//! `switchboard state …`: the state itself — moved off an old sled directory (or to
//! PostgreSQL and back), checked, backed up while it is in use, vacuumed.

use runtime::engine;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use engine::migrate::{self, Export, Portable};
use engine::sled_import::SledState;
use engine::{PgStore, SqliteStore};

use crate::cli::StateCommand;
use runtime::Global;
use runtime::{report, wiring};

pub async fn state(global: &Global, command: StateCommand) -> anyhow::Result<ExitCode> {
    match command {
        StateCommand::Migrate { to, json } => migrate(global, to.as_deref(), json).await,
        StateCommand::Check { file, json } => check(global, file.as_deref(), json),
        StateCommand::Backup { file } => backup(global, &file),
        StateCommand::Vacuum => vacuum(global),
    }
}

/// A state that can be moved from (every one) or to (all but an old sled directory).
enum Place {
    Sled(PathBuf, SledState),
    Sqlite(PathBuf, SqliteStore),
    Postgres(String, PgStore),
}

impl Place {
    fn export(&self) -> &dyn Export {
        match self {
            Place::Sled(_, s) => s,
            Place::Sqlite(_, s) => s,
            Place::Postgres(_, s) => s,
        }
    }

    /// The store a state moves into: an old sled directory is only ever read.
    fn store(&self) -> anyhow::Result<&dyn Portable> {
        match self {
            Place::Sled(dir, _) => anyhow::bail!(
                "`{}` is an old sled directory, which is only read from: a state moves into SQLite or PostgreSQL",
                dir.display()
            ),
            Place::Sqlite(_, s) => Ok(s),
            Place::Postgres(_, s) => Ok(s),
        }
    }

    fn shown(&self) -> String {
        match self {
            Place::Sled(dir, _) => format!("{} (sled)", dir.display()),
            Place::Sqlite(dir, _) => dir
                .join(engine::sqlite::guard::DB_FILE)
                .display()
                .to_string(),
            Place::Postgres(url, _) => engine::redact_url(url),
        }
    }
}

/// The state `--state` names, opened as it is (an old sled directory too).
fn source(global: &Global) -> anyhow::Result<Place> {
    if let Some(url) = wiring::state_url(global) {
        return Ok(Place::Postgres(url.clone(), PgStore::open(&url)?));
    }
    let dir = wiring::state_dir(global);
    if engine::sqlite::guard::is_old_state(&dir) {
        let store = SledState::open(&dir, global.accept_state_loss)?;
        return Ok(Place::Sled(dir, store));
    }
    if !dir.join(engine::sqlite::guard::DB_FILE).exists() {
        anyhow::bail!(
            "there is no state in `{}` to move (no state.db, no old sled database)",
            dir.display()
        );
    }
    let store = SqliteStore::open_with(&dir, global.accept_state_loss)?;
    Ok(Place::Sqlite(dir, store))
}

/// `state migrate [--to TARGET]`.
async fn migrate(global: &Global, to: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let from = source(global).map_err(|e| match e.downcast_ref::<engine::StateError>() {
        Some(engine::StateError::Locked(dir)) => anyhow::anyhow!(
            "state directory `{}` is in use (is a daemon running on it?)\n  hint: stop the daemon, move the state, then start it again",
            dir.display()
        ),
        _ => e,
    })?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    // Where the new state is made first (an old sled directory: beside it, then swapped).
    let (to_place, swap): (Place, Option<(PathBuf, PathBuf)>) = match (to, &from) {
        (Some(url), _) if engine::is_postgres_url(url) => {
            (Place::Postgres(url.to_string(), PgStore::open(url)?), None)
        }
        (Some(dir), _) => {
            let dir = PathBuf::from(dir);
            (Place::Sqlite(dir.clone(), SqliteStore::open(&dir)?), None)
        }
        (None, Place::Sled(dir, _)) => {
            let fresh = sibling(dir, &format!("migrating-{stamp}"));
            let store = SqliteStore::open(&fresh)?;
            (Place::Sqlite(fresh.clone(), store), Some((dir.clone(), fresh)))
        }
        (None, _) => anyhow::bail!(
            "the state in `{}` is no old sled directory: say where to move it with --to (postgres://… or a directory)",
            from.shown()
        ),
    };
    let moved = migrate::copy(from.export(), to_place.store()?).with_context(|| {
        format!(
            "moving the state from {} to {}",
            from.shown(),
            to_place.shown()
        )
    })?;
    to_place.store()?.flush().await?;
    let (from_shown, mut to_shown) = (from.shown(), to_place.shown());
    // Let go of both before files move.
    let retired = match from {
        Place::Postgres(_, store) => Some(format!("its schema is now `{}`", store.retire()?)),
        Place::Sqlite(dir, store) => {
            drop(store);
            let kept = engine::sqlite::guard::retire(&dir, &to_shown)?;
            Some(format!("the old database is kept as {}", kept.display()))
        }
        Place::Sled(dir, store) => {
            drop(store);
            if swap.is_none() {
                let kept = sibling(&dir, &format!("sled-{stamp}"));
                std::fs::rename(&dir, &kept)?;
                Some(format!("the old directory is kept as {}", kept.display()))
            } else {
                None
            }
        }
    };
    drop(to_place);
    let kept = match swap {
        Some((dir, fresh)) => {
            let kept = sibling(&dir, &format!("sled-{stamp}"));
            std::fs::rename(&dir, &kept)
                .with_context(|| format!("keeping the old directory as {}", kept.display()))?;
            std::fs::rename(&fresh, &dir)
                .with_context(|| format!("putting the new state in {}", dir.display()))?;
            // Said where it now is, not where it was made.
            to_shown = to_shown.replace(&*fresh.to_string_lossy(), &dir.to_string_lossy());
            // What the flows directory remembers of its state goes with it.
            let binding = engine::binding::FILE;
            let _ = std::fs::copy(kept.join(binding), dir.join(binding));
            Some(format!("the old directory is kept as {}", kept.display()))
        }
        None => retired,
    };
    if json {
        let flows: serde_json::Map<String, serde_json::Value> = moved
            .flows
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    serde_json::json!({"runs": t.runs, "records": t.records, "handled": t.handled,
                        "in_flight": t.in_flight, "queued": t.queued, "values": t.values}),
                )
            })
            .collect();
        report::json(
            &serde_json::json!({"from": from_shown, "to": to_shown, "flows": flows, "kept": kept}),
        );
    } else {
        outln!("moved the state from {from_shown} to {to_shown}:");
        for (name, tally) in &moved.flows {
            let name = if name.is_empty() {
                "(the state's own)"
            } else {
                name
            };
            outln!("  {name}: {tally}");
        }
        outln!(
            "in all: {} — the same counts read back from the new state",
            moved.total
        );
        if let Some(kept) = kept {
            outln!("{kept}");
        }
        if to.is_some_and(engine::is_postgres_url) {
            outln!("run with --state (or SWITCHBOARD_STATE) set to the new state from now on");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `<dir>.<suffix>` beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// The state's database file (an embedded state only).
fn database(global: &Global) -> anyhow::Result<PathBuf> {
    if wiring::state_url(global).is_some() {
        anyhow::bail!(
            "the state is in PostgreSQL, which checks and backs up its own data (pg_dump); these commands are for the embedded state"
        );
    }
    let dir = wiring::state_dir(global);
    if engine::sqlite::guard::is_old_state(&dir) {
        return Err(engine::StateError::OldFormat { dir }.into());
    }
    Ok(dir.join(engine::sqlite::guard::DB_FILE))
}

/// `state check [FILE]`.
fn check(global: &Global, file: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let file = match file {
        Some(file) => file.to_path_buf(),
        None => database(global)?,
    };
    let checked = engine::sqlite::check(&file)?;
    if json {
        report::json(&serde_json::json!({
            "file": file, "ok": checked.ok(), "pages": checked.pages, "lost": checked.lost, "bytes": checked.bytes,
        }));
    } else if checked.ok() {
        outln!(
            "{}: ok ({} bytes; SQLite's integrity check and the directory's marker agree)",
            file.display(),
            checked.bytes
        );
    } else {
        outln!("{}: problems found", file.display());
        if checked.pages != ["ok"] {
            for line in &checked.pages {
                outln!("  pages: {line}");
            }
        }
        if let Some(lost) = &checked.lost {
            outln!("  lost data: {lost}");
        }
    }
    Ok(if checked.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `state backup FILE`.
fn backup(global: &Global, to: &Path) -> anyhow::Result<ExitCode> {
    let file = database(global)?;
    let bytes = engine::sqlite::backup(&file, to)?;
    outln!(
        "backed up {} to {} ({bytes} bytes); `switchboard state check {}` checks the copy",
        file.display(),
        to.display(),
        to.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `state vacuum`.
fn vacuum(global: &Global) -> anyhow::Result<ExitCode> {
    let file = database(global)?;
    let store = match SqliteStore::open_with(&wiring::state_dir(global), false) {
        Ok(store) => store,
        Err(engine::StateError::Locked(dir)) => anyhow::bail!(
            "state directory `{}` is in use (is a daemon running on it?)\n  hint: vacuum while it is stopped; pruning gives space back by itself meanwhile",
            dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let (before, after) = store.vacuum()?;
    outln!("{}: {before} bytes before, {after} after", file.display());
    Ok(ExitCode::SUCCESS)
}
