//! Group commit: a writer that needs its writes on disk asks for a flush, and one flush
//! serves every writer that asked before it started. Concurrent sends of a run and
//! concurrent webhook requests so share one `fsync` instead of queueing for one each.
//!
//! The flush a writer leads runs in a task of its own: if that writer goes away (its
//! request dropped, its run cut short), the flush still ends and still wakes the others.
//! A flush that fails wakes them too, and each tries again (and reports its own error):
//! nobody waits for a flush that will never come.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::FutureExt;

use super::{Durable, StateError};

/// What makes everything written so far durable (run on a blocking thread).
pub(crate) type Flush = Arc<dyn Fn() -> Result<(), StateError> + Send + Sync>;

pub(crate) struct GroupCommit {
    flush: Flush,
    /// Tickets handed out: a writer takes one after its writes.
    asked: AtomicU64,
    /// The highest ticket whose writes are on disk, and how many flushes ended (failed
    /// ones too): a change wakes every waiter.
    done: tokio::sync::watch::Sender<(u64, u64)>,
    /// Held by the flush under way.
    leader: Arc<tokio::sync::Mutex<()>>,
}

/// Writes waiting to be durable: everything written before the ticket was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticket(u64);

impl GroupCommit {
    pub(crate) fn new(flush: Flush) -> GroupCommit {
        GroupCommit {
            flush,
            asked: AtomicU64::new(0),
            done: tokio::sync::watch::Sender::new((0, 0)),
            leader: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// A ticket for everything written so far. Taking it right after the writes (not
    /// when the waiting starts) lets writers that wrote before a flush began share it.
    fn ticket(&self) -> Ticket {
        Ticket(self.asked.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Return once everything this task wrote before the call is durable.
    pub(crate) async fn durable(self: &Arc<Self>) -> Result<(), StateError> {
        let ticket = self.ticket();
        self.wait(ticket).await
    }

    /// A future, shareable, that resolves once what was written before now is durable.
    pub(crate) fn durable_later(self: &Arc<Self>) -> Durable {
        let ticket = self.ticket();
        let commits = Arc::clone(self);
        async move { commits.wait(ticket).await.map_err(Arc::new) }
            .boxed()
            .shared()
    }

    /// Return once the writes made before `ticket` was taken are durable.
    async fn wait(self: &Arc<Self>, Ticket(ticket): Ticket) -> Result<(), StateError> {
        let mut done = self.done.subscribe();
        loop {
            if done.borrow_and_update().0 >= ticket {
                return Ok(());
            }
            match Arc::clone(&self.leader).try_lock_owned() {
                Ok(leading) => {
                    // Every ticket up to here was taken after its writes: this flush,
                    // which starts now, covers them all.
                    let covered = self.asked.load(Ordering::SeqCst);
                    let commits = Arc::clone(self);
                    // One blocking task does the flush and wakes everyone: it ends (and
                    // wakes them) even if this writer stops waiting.
                    let flushed = tokio::task::spawn_blocking(move || {
                        let flushed = (commits.flush)();
                        // Free the lead before waking the others, so that one of them
                        // can lead the next flush at once.
                        drop(leading);
                        commits.done.send_modify(|(d, ended)| {
                            if flushed.is_ok() {
                                *d = (*d).max(covered);
                            }
                            *ended += 1;
                        });
                        flushed
                    })
                    .await;
                    match flushed {
                        Ok(result) => result?,
                        Err(e) => {
                            return Err(StateError::Stopped(format!("the flush stopped: {e}")))
                        }
                    }
                }
                Err(_) => {
                    // Someone is flushing; their flush may have started before our
                    // writes, so wait for it to end and look again.
                    if done.changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
