//! Asking a run to stop (Ctrl-C on `switchboard run`, the daemon's drain limit): it takes
//! no more records and starts no more sends; sends under way may finish for at most
//! [`GRACE`], waits between retries are cut short, and the run is recorded as
//! interrupted with the counts of what it did. Sends still under way after the grace stay
//! in the ledger, for the next run to settle as a crash's.

use std::time::Duration;

use tokio::sync::watch;

/// How long sends under way may take to finish once a run is asked to stop.
pub const GRACE: Duration = Duration::from_secs(10);

/// The run's side: whether it has been asked to stop.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

/// The asking side.
#[derive(Debug)]
pub struct StopHandle(watch::Sender<bool>);

impl Stop {
    /// A signal and the handle that raises it.
    pub fn new() -> (StopHandle, Stop) {
        let (tx, rx) = watch::channel(false);
        (StopHandle(tx), Stop(rx))
    }

    /// A signal nobody raises.
    pub fn never() -> Stop {
        // One sender kept for the life of the process and never raised.
        static NEVER: std::sync::OnceLock<watch::Sender<bool>> = std::sync::OnceLock::new();
        Stop(NEVER.get_or_init(|| watch::channel(false).0).subscribe())
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolve once the run is asked to stop (never, for [`Stop::never`]).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Default for Stop {
    fn default() -> Self {
        Stop::never()
    }
}

impl StopHandle {
    /// Ask every run holding the signal to stop.
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }

    /// Another signal raised by this handle.
    pub fn subscribe(&self) -> Stop {
        Stop(self.0.subscribe())
    }
}
