//! When the state cannot be written (the disk is full, its files cannot be written): the
//! daemon keeps answering — webhooks `500` so their senders try again, runs failing with
//! the reason — says so on `/healthz`, and tries the state again every few seconds. Once
//! a write succeeds it goes on by itself, and the runs the trouble cut short are recorded
//! as failed with its cause (they could not be while it lasted).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Shared;

/// How often the state is tried again while it cannot be written.
const TRY_EVERY: Duration = Duration::from_secs(2);

/// What went wrong with the state, since when, and the flows whose runs it cut short.
#[derive(Debug, Clone)]
pub struct Trouble {
    pub since: DateTime<Utc>,
    pub what: String,
    flows: BTreeSet<String>,
}

/// The state's trouble, if any (shared by the daemon's parts).
#[derive(Debug, Clone, Default)]
pub struct Troubles(Arc<Mutex<Option<Trouble>>>);

impl Troubles {
    /// The state could not be written: `flow`'s run (if one) was cut short by it.
    pub fn report(&self, error: &engine::StateError, flow: Option<&str>) {
        if !writes_failed(error) {
            return;
        }
        let Ok(mut trouble) = self.0.lock() else {
            return;
        };
        let trouble = trouble.get_or_insert_with(|| {
            tracing::error!(error = %error, "the state cannot be written: webhooks are answered 500 and runs fail until it can");
            Trouble {
                since: Utc::now(),
                what: error.to_string(),
                flows: BTreeSet::new(),
            }
        });
        trouble.what = error.to_string();
        if let Some(flow) = flow {
            trouble.flows.insert(flow.to_string());
        }
    }

    /// What is wrong now, if anything.
    pub fn now(&self) -> Option<Trouble> {
        self.0.lock().ok().and_then(|t| t.clone())
    }

    fn clear(&self) -> Option<Trouble> {
        self.0.lock().ok().and_then(|mut t| t.take())
    }
}

/// Whether an error says the state's files could not be written (not a bug, not a lost
/// database: something the machine's operator fixes, after which the state goes on).
fn writes_failed(error: &engine::StateError) -> bool {
    match error {
        engine::StateError::DiskFull(_)
        | engine::StateError::Io(_)
        | engine::StateError::Database(_) => true,
        engine::StateError::NotDurable(cause) => writes_failed(cause),
        _ => false,
    }
}

/// Try the state again while it is in trouble: a flush that succeeds ends the trouble,
/// and the runs it cut short are recorded as failed with its cause.
pub async fn recover(shared: Arc<Shared>, mut stop: tokio::sync::broadcast::Receiver<()>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TRY_EVERY) => {}
            _ = stop.recv() => return,
        }
        if shared.trouble.now().is_none() {
            continue;
        }
        if shared.store.flush().await.is_err() {
            continue;
        }
        let Some(trouble) = shared.trouble.clear() else {
            continue;
        };
        let reason = format!(
            "the state could not be written ({}); the run stopped there and its unsent rows wait for the next run",
            trouble.what
        );
        for flow in &trouble.flows {
            match shared
                .store
                .flow(flow)
                .and_then(|state| engine::fail_unfinished_runs(&*state, Utc::now(), &reason))
            {
                Ok(n) if n > 0 => tracing::warn!(
                    flow,
                    "{n} run(s) the state's trouble cut short are recorded as failed"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(flow, error = %e, "cannot record the runs the state's trouble cut short")
                }
            }
        }
        tracing::warn!(
            since = %trouble.since,
            "the state can be written again: webhooks and runs go on"
        );
    }
}
