//! Several daemons on one PostgreSQL state ([`Cluster`]): the `leases` and `fires`
//! tables (`migrations/postgres/V2__cluster.sql`). A flow's lease is a row: its holder, its
//! fencing number (from a sequence: every new holding gets a higher one) and its expiry
//! on the database's clock, so the nodes' clocks need not agree. A run writes through a
//! [`Fence`]: each of its write transactions share-locks the lease's row and checks the
//! number, so once another node took the flow over, the late writes of the one it took
//! it from are refused whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{db_error, PgFlow, Shards};
use crate::state::{Claim, Cluster, FlowState, Lease, LeaseTerms, StateError};

/// A run's hold on its flow, as its writes check it.
pub(crate) struct Fence {
    pub(crate) value: i64,
    pub(crate) node: String,
    send_for: Duration,
    /// New sends may start until then: `send_for` after the last renewal was sent.
    sends_until: Mutex<Instant>,
    lost: AtomicBool,
}

impl Fence {
    /// The lease was found taken by another holding.
    pub(crate) fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Whether the lease still stands, as far as this node knows.
    pub(crate) fn held(&self, flow: &str) -> Result<(), StateError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StateError::Fenced(flow.to_string()));
        }
        Ok(())
    }

    /// Whether a send may start now: the lease stands and was renewed recently enough
    /// that it outlasts the send (the database keeps it `delivery.max_time` longer).
    pub(crate) fn may_send(&self, flow: &str) -> Result<(), StateError> {
        self.held(flow)?;
        let until = *self.sends_until.lock().unwrap_or_else(|p| p.into_inner());
        if Instant::now() > until {
            return Err(StateError::Database(format!(
                "flow `{flow}`: this node's lease on the flow could not be renewed in time (the database did not answer), so no new send starts: another node may take the flow over"
            )));
        }
        Ok(())
    }
}

/// This node's side of the cluster.
pub(crate) struct PgCluster {
    /// The flows' connections (a leased flow's state writes on its own; leases are
    /// taken and renewed on the first).
    pub(crate) shards: Shards,
    pub(crate) node: String,
    /// This process (a node restarted under the same name is another holder).
    pub(crate) holder: String,
    /// The fences of the leases this node holds, by (flow, fencing number).
    pub(crate) fences: Mutex<HashMap<(String, u64), Arc<Fence>>>,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl PgCluster {
    fn fence(&self, lease: &Lease) -> Option<Arc<Fence>> {
        self.fences
            .lock()
            .ok()?
            .get(&(lease.flow.clone(), lease.fence))
            .cloned()
    }

    fn forget(&self, lease: &Lease) {
        if let Ok(mut fences) = self.fences.lock() {
            fences.remove(&(lease.flow.clone(), lease.fence));
        }
    }
}

impl Cluster for PgCluster {
    fn node(&self) -> &str {
        &self.node
    }

    fn lease(&self, flow: &str, terms: LeaseTerms) -> Result<Claim, StateError> {
        let (name, holder, node, ttl) = (
            flow.to_string(),
            self.holder.clone(),
            self.node.clone(),
            millis(terms.ttl),
        );
        let asked = Instant::now();
        let taken: Result<i64, String> = on_db!(self.shards.first(), |client, err| {
            // Free (given back) or expired: this holder's, with a new fencing number.
            let taken = client
                .query_opt(
                    "INSERT INTO leases AS l (flow, holder, node, fence, expires)
                     VALUES ($1, $2, $3, nextval('fences'), clock_timestamp() + make_interval(secs => $4::float8 / 1000))
                     ON CONFLICT (flow) DO UPDATE SET holder = EXCLUDED.holder, node = EXCLUDED.node,
                         fence = EXCLUDED.fence, expires = EXCLUDED.expires, pending = NULL
                     WHERE l.holder IS NULL OR l.expires < clock_timestamp()
                     RETURNING fence",
                    &[&name, &holder, &node, &ttl],
                )
                .map_err(&err)?;
            if let Some(row) = taken {
                return Ok(Ok(row.get(0)));
            }
            let by = client
                .query_opt("SELECT node FROM leases WHERE flow = $1", &[&name])
                .map_err(&err)?
                .map(|row| row.get(0))
                .unwrap_or_default();
            Ok(Err(by))
        })?;
        let value = match taken {
            Ok(value) => value,
            Err(node) => return Ok(Claim::Busy { node }),
        };
        let fence = Arc::new(Fence {
            value,
            node: self.node.clone(),
            send_for: terms.send_for,
            sends_until: Mutex::new(asked + terms.send_for),
            lost: AtomicBool::new(false),
        });
        if let Ok(mut fences) = self.fences.lock() {
            fences.insert((flow.to_string(), value as u64), Arc::clone(&fence));
        }
        let state: Arc<dyn FlowState> = Arc::new(PgFlow {
            name: flow.to_string(),
            db: self.shards.of(flow),
            fence: Some(fence),
        });
        let lease = Lease {
            flow: flow.to_string(),
            fence: value as u64,
            terms,
            state,
        };
        // Sends may start for `send_for` from when the lease was asked for (the database
        // granted it later, so it lasts at least that long); a grant that waited on a
        // lock would leave little of it: renewed at once, from now.
        if asked.elapsed() > terms.send_for / 4 && !self.renew(&lease)? {
            return Ok(Claim::Busy {
                node: "another node".into(),
            });
        }
        Ok(Claim::Taken(lease))
    }

    fn renew(&self, lease: &Lease) -> Result<bool, StateError> {
        let Some(fence) = self.fence(lease) else {
            return Ok(false);
        };
        let (name, value, ttl) = (lease.flow.clone(), fence.value, millis(lease.terms.ttl));
        let asked = Instant::now();
        let renewed: u64 = on_db!(self.shards.first(), |client, err| {
            client
                .execute(
                    "UPDATE leases SET expires = clock_timestamp() + make_interval(secs => $3::float8 / 1000)
                     WHERE flow = $1 AND fence = $2",
                    &[&name, &value, &ttl],
                )
                .map_err(&err)
        })?;
        if renewed == 0 {
            fence.lose();
            return Ok(false);
        }
        if let Ok(mut until) = fence.sends_until.lock() {
            *until = asked + fence.send_for;
        }
        Ok(true)
    }

    fn release(&self, lease: &Lease) -> Result<Option<String>, StateError> {
        let (name, value, ttl) = (
            lease.flow.clone(),
            lease.fence as i64,
            millis(lease.terms.ttl),
        );
        let pending: Option<String> = on_db!(self.shards.first(), |client, err| {
            // Atomically: a trigger left meanwhile keeps the lease for one more run;
            // otherwise the lease is given back.
            Ok(client
                .query_opt(
                    "WITH old AS (SELECT pending FROM leases WHERE flow = $1 AND fence = $2 FOR UPDATE)
                     UPDATE leases l SET
                         holder = CASE WHEN old.pending IS NULL THEN NULL ELSE l.holder END,
                         expires = CASE WHEN old.pending IS NULL THEN clock_timestamp()
                                   ELSE clock_timestamp() + make_interval(secs => $3::float8 / 1000) END,
                         pending = NULL
                     FROM old WHERE l.flow = $1 AND l.fence = $2
                     RETURNING old.pending",
                    &[&name, &value, &ttl],
                )
                .map_err(&err)?
                .and_then(|row| row.get::<_, Option<String>>(0)))
        })?;
        if pending.is_none() {
            self.forget(lease);
        } else if let Some(fence) = self.fence(lease) {
            if let Ok(mut until) = fence.sends_until.lock() {
                *until = Instant::now() + fence.send_for;
            }
        }
        Ok(pending)
    }

    fn leave_pending(&self, flow: &str, reason: &str) -> Result<bool, StateError> {
        let (name, reason) = (flow.to_string(), reason.to_string());
        let left: u64 = on_db!(self.shards.first(), |client, err| {
            client
                .execute(
                    "UPDATE leases SET pending = COALESCE(pending, $2)
                     WHERE flow = $1 AND holder IS NOT NULL AND expires > clock_timestamp()",
                    &[&name, &reason],
                )
                .map_err(&err)
        })?;
        Ok(left == 1)
    }

    fn claim_fire(&self, flow: &str, due: DateTime<Utc>) -> Result<bool, StateError> {
        let (name, node) = (flow.to_string(), self.node.clone());
        let won: u64 = on_db!(self.shards.first(), |client, err| {
            let won = client
                .execute(
                    "INSERT INTO fires (flow, due, node) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&name, &due, &node],
                )
                .map_err(&err)?;
            // Claims older than a day decide nothing any more.
            client
                .execute(
                    "DELETE FROM fires WHERE flow = $1 AND due < $2::timestamptz - interval '1 day'",
                    &[&name, &due],
                )
                .map_err(&err)?;
            Ok(won)
        })?;
        Ok(won == 1)
    }

    fn abandoned(&self) -> Result<Vec<String>, StateError> {
        self.shards.first().rows(
            "SELECT flow FROM leases WHERE holder IS NOT NULL AND expires < clock_timestamp() ORDER BY flow",
            vec![],
            |row| row.get(0),
        )
    }

    fn unattended_queues(&self) -> Result<Vec<String>, StateError> {
        self.shards.first().rows(
            "SELECT DISTINCT q.flow FROM queue q WHERE NOT EXISTS
                 (SELECT 1 FROM leases l WHERE l.flow = q.flow AND l.holder IS NOT NULL)
             ORDER BY q.flow",
            vec![],
            |row| row.get(0),
        )
    }

    fn holders(&self) -> Result<BTreeMap<String, String>, StateError> {
        Ok(self
            .shards
            .first()
            .rows(
                "SELECT flow, node FROM leases WHERE holder IS NOT NULL AND expires > clock_timestamp()",
                vec![],
                |row| (row.get(0), row.get(1)),
            )?
            .into_iter()
            .collect())
    }
}
