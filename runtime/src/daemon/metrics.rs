//! `/metrics`, in the OpenMetrics text format through prometheus-client (labels escaped
//! by it): runs by status and their duration, records by outcome, the latency of each
//! send per receiver, schedule lag and next run, problems, pushed events waiting and
//! records in flight, flows paused or failing, auto-pauses, alerts, and runs that ended in
//! a panic. Counters and histograms grow as runs end; the gauges that describe the flows
//! now are refilled at each scrape, so a removed flow leaves no stale series.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use engine::{Delivered, Prepared, Receiver, RunStatus, RunSummary, SendError, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use scheduler::FlowStatus;
use serde_json::{Map, Value};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabel {
    flow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    flow: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    flow: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    flow: String,
    condition: String,
}

/// `flow`, `receiver` (connector and action) and, for a step of `steps:`, `step`: a
/// one-step flow's series keep the two labels they always had.
type ReceiverLabels = Vec<(&'static str, String)>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

type Seconds = Family<ReceiverLabels, Histogram, fn() -> Histogram>;

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    runs: Family<StatusLabels, Counter>,
    run_seconds: Family<FlowLabel, Histogram, fn() -> Histogram>,
    records: Family<OutcomeLabels, Counter>,
    panics: Family<FlowLabel, Counter>,
    pauses: Family<FlowLabel, Counter>,
    alerts: Family<ConditionLabels, Counter>,
    flows: Family<StateLabel, Gauge>,
    lag: Family<FlowLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    next_run: Family<FlowLabel, Gauge>,
    problems: Family<FlowLabel, Gauge>,
    queued: Family<FlowLabel, Gauge>,
    in_flight: Family<FlowLabel, Gauge>,
    paused: Family<FlowLabel, Gauge>,
    failing: Family<FlowLabel, Gauge>,
}

/// The send-latency histograms, shared with the receivers runs build (see [`timed`]).
static SEND_SECONDS: OnceLock<Seconds> = OnceLock::new();

fn run_buckets() -> Histogram {
    // 10 ms to ~1.5 h.
    Histogram::new(exponential_buckets(0.01, 2.0, 20))
}

fn send_buckets() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let runs = Family::<StatusLabels, Counter>::default();
        let run_seconds: Family<FlowLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(run_buckets);
        let records = Family::<OutcomeLabels, Counter>::default();
        let panics = Family::<FlowLabel, Counter>::default();
        let pauses = Family::<FlowLabel, Counter>::default();
        let alerts = Family::<ConditionLabels, Counter>::default();
        let flows = Family::<StateLabel, Gauge>::default();
        let lag = Family::<FlowLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let next_run = Family::<FlowLabel, Gauge>::default();
        let problems = Family::<FlowLabel, Gauge>::default();
        let queued = Family::<FlowLabel, Gauge>::default();
        let in_flight = Family::<FlowLabel, Gauge>::default();
        let paused = Family::<FlowLabel, Gauge>::default();
        let failing = Family::<FlowLabel, Gauge>::default();
        let send_seconds = SEND_SECONDS
            .get_or_init(|| Family::new_with_constructor(send_buckets as fn() -> Histogram))
            .clone();
        registry.register("switchboard_flows", "Flows loaded, by state", flows.clone());
        registry.register(
            "switchboard_runs",
            "Runs finished, by flow and status",
            runs.clone(),
        );
        registry.register(
            "switchboard_run_duration_seconds",
            "How long runs took, by flow",
            run_seconds.clone(),
        );
        registry.register(
            "switchboard_records",
            "Records handled, by flow and outcome",
            records.clone(),
        );
        registry.register(
            "switchboard_send_duration_seconds",
            "How long each request to a receiver took (retries apart), by flow and receiver",
            send_seconds,
        );
        registry.register(
            "switchboard_schedule_lag_seconds",
            "How late the last scheduled start was",
            lag.clone(),
        );
        registry.register(
            "switchboard_next_run_timestamp_seconds",
            "When each flow runs next (Unix time)",
            next_run.clone(),
        );
        registry.register(
            "switchboard_flow_problems",
            "Problems that keep a flow (or its schedule) from running as written",
            problems.clone(),
        );
        registry.register(
            "switchboard_queued_events",
            "Pushed events waiting for their flow's run",
            queued.clone(),
        );
        registry.register(
            "switchboard_in_flight_records",
            "Records sent or being sent whose outcome is not stored yet (the ledger)",
            in_flight.clone(),
        );
        registry.register(
            "switchboard_flow_paused",
            "1 while a flow is paused by its failing runs",
            paused.clone(),
        );
        registry.register(
            "switchboard_flow_failing",
            "1 while a flow's last run failed",
            failing.clone(),
        );
        registry.register(
            "switchboard_auto_pauses",
            "Times a flow was paused by its failing runs",
            pauses.clone(),
        );
        registry.register(
            "switchboard_alerts",
            "Alerts queued for the alert flows, by flow and condition",
            alerts.clone(),
        );
        registry.register(
            "switchboard_run_panics",
            "Runs that ended in a panic (a bug), by flow",
            panics.clone(),
        );
        Metrics {
            registry,
            runs,
            run_seconds,
            records,
            panics,
            pauses,
            alerts,
            flows,
            lag,
            next_run,
            problems,
            queued,
            in_flight,
            paused,
            failing,
        }
    }
}

fn flow(name: &str) -> FlowLabel {
    FlowLabel {
        flow: name.to_string(),
    }
}

impl Metrics {
    pub fn observe(&self, run: &RunSummary) {
        let status = match run.status {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Running => "running",
        };
        self.runs
            .get_or_create(&StatusLabels {
                flow: run.flow.clone(),
                status: status.into(),
            })
            .inc();
        if let Some(finished) = run.finished_at {
            let took = (finished - run.started_at).num_milliseconds().max(0) as f64 / 1000.0;
            self.run_seconds
                .get_or_create(&flow(&run.flow))
                .observe(took);
        }
        for (outcome, n) in [
            ("sent", run.counts.sent),
            ("failed", run.counts.failed),
            ("skipped", run.counts.skipped),
            ("filtered", run.counts.filtered),
        ] {
            self.records
                .get_or_create(&OutcomeLabels {
                    flow: run.flow.clone(),
                    outcome: outcome.into(),
                })
                .inc_by(n);
        }
    }

    /// `flow` was paused by its failures.
    pub fn paused(&self, flow_name: &str) {
        self.pauses.get_or_create(&flow(flow_name)).inc();
    }

    /// An alert of `condition` was queued for `flow`.
    pub fn alerted(&self, flow_name: &str, condition: &'static str) {
        self.alerts
            .get_or_create(&ConditionLabels {
                flow: flow_name.to_string(),
                condition: condition.into(),
            })
            .inc();
    }

    /// A run of `flow` ended in a panic (a bug; the daemon went on).
    pub fn panicked(&self, flow_name: &str) {
        self.panics.get_or_create(&flow(flow_name)).inc();
    }

    /// The text to serve: the flows as they are now, then everything counted so far.
    pub fn render(
        &self,
        status: &BTreeMap<String, FlowStatus>,
        problems: &BTreeMap<String, usize>,
        valid: usize,
        invalid: usize,
        store: &dyn Store,
    ) -> String {
        for (state, n) in [("valid", valid), ("invalid", invalid)] {
            self.flows
                .get_or_create(&StateLabel {
                    state: state.into(),
                })
                .set(n as i64);
        }
        for family in [
            &self.next_run,
            &self.problems,
            &self.queued,
            &self.in_flight,
            &self.paused,
            &self.failing,
        ] {
            family.clear();
        }
        self.lag.clear();
        for (name, s) in status {
            if let Some(lag) = s.last_lag_ms {
                self.lag.get_or_create(&flow(name)).set(lag as f64 / 1000.0);
            }
            if let Some(next) = s.next_run {
                self.next_run
                    .get_or_create(&flow(name))
                    .set(next.timestamp());
            }
            self.failing
                .get_or_create(&flow(name))
                .set(i64::from(s.last_success == Some(false)));
            if let Ok(state) = store.flow(name) {
                if let Ok((queued, in_flight)) = state.backlog() {
                    self.queued.get_or_create(&flow(name)).set(queued as i64);
                    self.in_flight
                        .get_or_create(&flow(name))
                        .set(in_flight as i64);
                }
                let paused = engine::pause::paused(&*state).ok().flatten().is_some();
                self.paused
                    .get_or_create(&flow(name))
                    .set(i64::from(paused));
            }
        }
        for (name, n) in problems {
            self.problems.get_or_create(&flow(name)).set(*n as i64);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

/// `receiver`, timing each request into `switchboard_send_duration_seconds` when a daemon
/// keeps metrics (elsewhere, as it is).
pub fn timed(receiver: Arc<dyn Receiver>, flow: &flows::Flow) -> Arc<dyn Receiver> {
    timed_as(receiver, flow, None)
}

/// [`timed`] for the action step `step` of a flow with `steps:` (`flow` being the
/// one-step flow the step stands for): its series are labelled with the step's name.
pub fn timed_step(
    receiver: Arc<dyn Receiver>,
    flow: &flows::Flow,
    step: &str,
) -> Arc<dyn Receiver> {
    timed_as(receiver, flow, Some(step))
}

fn timed_as(
    receiver: Arc<dyn Receiver>,
    flow: &flows::Flow,
    step: Option<&str>,
) -> Arc<dyn Receiver> {
    let Some(seconds) = SEND_SECONDS.get() else {
        return receiver;
    };
    let mut labels: ReceiverLabels = vec![
        ("flow", flow.name.clone()),
        (
            "receiver",
            format!("{} {}", flow.receiver.connector, flow.receiver.action),
        ),
    ];
    if let Some(step) = step {
        labels.push(("step", step.to_string()));
    }
    let histogram = seconds.get_or_create(&labels).clone();
    Arc::new(Timed {
        inner: receiver,
        histogram,
    })
}

struct Timed {
    inner: Arc<dyn Receiver>,
    histogram: Histogram,
}

fn seconds(took: Duration) -> f64 {
    took.as_secs_f64()
}

#[async_trait]
impl Receiver for Timed {
    fn prepare(&self, fields: Map<String, Value>, reference: &str) -> Result<Prepared, SendError> {
        self.inner.prepare(fields, reference)
    }

    async fn send(&self, request: &Prepared) -> Result<Delivered, SendError> {
        let started = std::time::Instant::now();
        let result = self.inner.send(request).await;
        self.histogram.observe(seconds(started.elapsed()));
        result
    }

    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }

    async fn send_batch(&self, requests: &[Prepared]) -> Vec<Result<Delivered, SendError>> {
        let started = std::time::Instant::now();
        let results = self.inner.send_batch(requests).await;
        self.histogram.observe(seconds(started.elapsed()));
        results
    }
}
