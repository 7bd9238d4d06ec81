//! A flow's `steps:` at run time: one record's way through its look-ups and actions, in
//! order, each step's answer offered to the later ones as `steps.NAME`.
//!
//! The delivery promise holds per step. The record is marked in flight by the run before
//! its first step (as any send is); before each action after the first that does
//! something, what the record's earlier steps did is stored, durably, as its *progress*
//! ([`crate::state::progress_key`]), and the store drops it with the record's outcome.
//! So a crash leaves the record in the ledger with its progress: the next run resumes it
//! at its first step without an outcome — never sending a finished step again — and only
//! the step that was sending may arrive twice (marked `repeat`). A step that fails stops
//! the record (unless `on_error: continue`); a failure a later run may cure keeps the
//! progress, and a replay of a failed record goes on from the failed step with the
//! stored answers of those before it.

use std::collections::HashMap;
use std::sync::Arc;

use flows::steps::OnError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::connector::{Prepared, Receiver, SendError};
use crate::delivery::{send_with_retry, RetryPolicy};
use crate::lookup::LookupStep;
use crate::mapper::Mapper;
use crate::record::Record;
use crate::run::RunContext;
use crate::stages::{self, Judged};
use crate::state::{progress_key, StateError, StepOutcome, StepStatus, PROGRESS_PREFIX};

/// A flow's steps, ready to run — for one run: it keeps that run's progress book.
pub struct Chain {
    steps: Vec<ChainStep>,
    book: Book,
}

/// The progress of a run's records: what earlier runs left (read once, when the run's
/// first record starts), and the progress of records under way, written and made durable
/// together — each writer waits for the write that holds its entry (group commit), so a
/// window of records costs a few transactions and flushes, not one per step.
#[derive(Default)]
struct Book {
    /// Read for the run it names; a chain kept for another run reads again.
    left: std::sync::Mutex<Option<(u64, Left)>>,
    queue: std::sync::Mutex<Queue>,
    flushed: std::sync::Mutex<Flushed>,
}

/// Each record's finished steps, by key.
type Left = HashMap<String, Vec<StepOutcome>>;

#[derive(Default)]
struct Queue {
    entries: Vec<(String, Value)>,
    /// Entries queued since the run began.
    count: u64,
}

#[derive(Default)]
struct Flushed {
    /// Entries written so far (the first `upto` queued).
    upto: u64,
    /// A write failed: every entry after it is lost, so every writer hears of it.
    broken: Option<Arc<StateError>>,
}

impl Book {
    /// What earlier runs left of `key`'s progress (taken: a record is walked once a run).
    fn left(
        &self,
        state: &dyn crate::state::FlowState,
        run: u64,
        key: &str,
    ) -> Result<Vec<StepOutcome>, StateError> {
        let mut left = self.left.lock().unwrap_or_else(|p| p.into_inner());
        if left.as_ref().is_none_or(|(read_for, _)| *read_for != run) {
            let mut found = HashMap::new();
            for (name, value) in state.metas_under(PROGRESS_PREFIX)? {
                if let (Some(key), Ok(progress)) = (
                    name.strip_prefix(PROGRESS_PREFIX),
                    serde_json::from_value::<Progress>(value),
                ) {
                    found.insert(key.to_string(), progress.steps);
                }
            }
            *left = Some((run, found));
        }
        Ok(left
            .as_mut()
            .and_then(|(_, found)| found.remove(key))
            .unwrap_or_default())
    }

    /// Store `key`'s progress and return once it is durable. The entries queued when a
    /// writer comes are written together, in one transaction; the flush to the disk is
    /// the store's group commit, shared with every writer waiting at that moment.
    async fn save(
        &self,
        state: &dyn crate::state::FlowState,
        key: &str,
        progress: &Progress,
    ) -> Result<(), StateError> {
        let value = serde_json::to_value(progress)?;
        let ticket = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.entries.push((progress_key(key), value));
            queue.count += 1;
            queue.count
        };
        // The records whose step ended at the same moment queue theirs first: one
        // transaction holds them all.
        tokio::task::yield_now().await;
        {
            let mut flushed = self.flushed.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(broken) = &flushed.broken {
                return Err(StateError::NotDurable(broken.clone()));
            }
            if flushed.upto < ticket {
                let (entries, upto) = {
                    let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                    (std::mem::take(&mut queue.entries), queue.count)
                };
                if let Err(e) = state.save_metas(&entries) {
                    let e = Arc::new(e);
                    flushed.broken = Some(e.clone());
                    return Err(StateError::NotDurable(e));
                }
                flushed.upto = upto;
            }
        }
        // Committed, it survives the process's death; a flush makes it survive the
        // machine's too. Where the boot can be told, a record resumed on another boot
        // marks each of its sends instead (see [`Repeat`]), so the flush is not waited for.
        match crate::boot_id() {
            Some(_) => Ok(()),
            None => state.durable().await,
        }
    }
}

/// One step, ready to run.
pub struct ChainStep {
    name: String,
    /// `connector action`, for reasons.
    what: String,
    when: Option<flows::Filter>,
    on_error: OnError,
    work: Work,
}

enum Work {
    Lookup(LookupStep),
    Action {
        receiver: Arc<dyn Receiver>,
        mapper: Mapper,
    },
}

impl ChainStep {
    /// A look-up step.
    pub fn lookup(step: &flows::steps::Step, lookup: LookupStep) -> ChainStep {
        ChainStep::new(step, Work::Lookup(lookup))
    }

    /// An action step: its receiver and its compiled `map:`.
    pub fn action(
        step: &flows::steps::Step,
        receiver: Arc<dyn Receiver>,
        mapper: Mapper,
    ) -> ChainStep {
        ChainStep::new(step, Work::Action { receiver, mapper })
    }

    fn new(step: &flows::steps::Step, work: Work) -> ChainStep {
        ChainStep {
            name: step.name.clone(),
            what: step.what(),
            when: step.when.clone(),
            on_error: step.on_error,
            work,
        }
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Which sends of a record resumed after a crash may repeat one that went before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// None: the record was not interrupted.
    No,
    /// Its first: the process died (its progress, written before each send, survives).
    FirstSend,
    /// Each: the machine may have restarted since (another boot), and progress written
    /// without a flush may be gone with it.
    EverySend,
}

/// What the store keeps of a record under way.
#[derive(Serialize, Deserialize)]
struct Progress {
    run: u64,
    steps: Vec<StepOutcome>,
}

/// A record's way through the steps, as far as it went.
pub(crate) struct Walked {
    pub steps: Vec<StepOutcome>,
    /// The step that stopped the record, and why.
    pub failure: Option<Failure>,
    /// Tries made in this run, over every step.
    pub attempts: u32,
}

/// Why a record stopped at a step.
pub(crate) struct Failure {
    pub reason: String,
    pub code: Option<String>,
    /// A later run may cure it: the record is not remembered (its progress is kept).
    pub retry_next_run: bool,
    /// It may have been delivered (the connection ended after the request went).
    pub uncertain: bool,
}

impl Walked {
    /// The last action's id, for the record's outcome (each step keeps its body).
    pub fn last_id(&self) -> Option<String> {
        self.steps.iter().rev().find_map(|s| s.remote_id.clone())
    }

    /// Whether a step was sent again after a crash interrupted it.
    pub fn repeat(&self) -> bool {
        self.steps.iter().any(|s| s.repeat)
    }

    /// Whether no action was done (each skipped by its `when`).
    pub fn nothing_done(&self, chain: &Chain) -> bool {
        self.failure.is_none()
            && !self.steps.iter().any(|s| {
                s.status == StepStatus::Done
                    && chain.steps.iter().any(|c| c.name == s.step && c.sends())
            })
    }

    /// What a person reads about a record that went through: its skipped and failed
    /// (continued) steps, if any.
    pub fn note(&self) -> Option<String> {
        let notes: Vec<String> = self
            .steps
            .iter()
            .filter(|s| s.status != StepStatus::Done)
            .map(|s| {
                let word = match s.status {
                    StepStatus::Skipped => "skipped",
                    _ => "failed",
                };
                format!(
                    "step `{}` {word}: {}",
                    s.step,
                    s.reason.as_deref().unwrap_or("")
                )
            })
            .collect();
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

/// One record as [`Chain::walk`] takes it: its key and fields, the steps an earlier try
/// finished, and whether a crash may have sent some of it already.
pub(crate) struct Walk<'a> {
    pub key: &'a str,
    pub fields: &'a Map<String, Value>,
    pub resume: Vec<StepOutcome>,
    pub repeat: Repeat,
}

impl Chain {
    pub fn new(steps: Vec<ChainStep>) -> Chain {
        Chain {
            steps,
            book: Book::default(),
        }
    }

    pub fn steps(&self) -> &[ChainStep] {
        &self.steps
    }

    /// Take one record through the steps, from the first one `resume` (or its stored
    /// progress) does not hold. `repeat`: a crash interrupted the record, so what it
    /// sends now may have been sent already (see [`Repeat`]).
    pub(crate) async fn walk(
        &self,
        ctx: &RunContext<'_>,
        policy: &RetryPolicy,
        run: u64,
        record: Walk<'_>,
    ) -> Result<Walked, StateError> {
        let Walk {
            key,
            fields,
            resume,
            mut repeat,
        } = record;
        let mut resume: Vec<StepOutcome> = resume.into_iter().filter(|s| s.finished()).collect();
        if resume.is_empty() {
            resume = self
                .book
                .left(ctx.state, run, key)?
                .into_iter()
                .filter(|s| s.finished())
                .collect();
        }
        let mut answers = Map::new();
        let mut walked = Walked {
            steps: Vec::with_capacity(self.steps.len()),
            failure: None,
            attempts: 0,
        };
        // Whether an action finished since the progress was last stored.
        let mut unsaved = false;
        for step in &self.steps {
            if let Some(done) = resume.iter().find(|s| s.step == step.name) {
                if done.status == StepStatus::Done {
                    answers.insert(step.name.clone(), done.answer.clone());
                }
                walked.steps.push(done.clone());
                continue;
            }
            let mut context = fields.clone();
            context.insert("steps".into(), Value::Object(answers.clone()));
            if step.sends() && unsaved {
                // What the earlier steps did reaches the disk before this step's
                // request leaves.
                let progress = Progress {
                    run,
                    // Without the bodies sent: the ids and answers are what a resumed
                    // record needs (its history keeps the bodies of the steps it did
                    // after the resume).
                    steps: walked
                        .steps
                        .iter()
                        .map(|s| StepOutcome {
                            sent: None,
                            ..s.clone()
                        })
                        .collect(),
                };
                self.book.save(ctx.state, key, &progress).await?;
                unsaved = false;
            }
            let at = Attempt {
                flow: &ctx.flow.name,
                key,
                policy,
                stop: &ctx.stop,
                now: (ctx.now)(),
                send: true,
            };
            let (mut outcome, failure, _) = step.attempt(&at, context).await;
            if outcome.sent.is_some() {
                outcome.repeat = repeat != Repeat::No;
                if repeat == Repeat::FirstSend {
                    repeat = Repeat::No;
                }
                walked.attempts += outcome.attempts;
                unsaved |= failure.is_none();
            }
            if outcome.status == StepStatus::Skipped {
                walked.steps.push(outcome);
                continue;
            }
            match failure {
                None => {
                    answers.insert(step.name.clone(), outcome.answer.clone());
                    walked.steps.push(outcome);
                }
                Some(failure) => {
                    walked.steps.push(outcome);
                    if step.on_error == OnError::Stop || failure.uncertain {
                        walked.failure = Some(Failure {
                            reason: format!(
                                "step `{}` ({}): {}",
                                step.name, step.what, failure.reason
                            ),
                            ..failure
                        });
                        break;
                    }
                }
            }
        }
        Ok(walked)
    }
}

/// How a step is tried: for a run (`send`) or a preview (actions rendered, not sent).
pub struct Attempt<'a> {
    pub flow: &'a str,
    pub key: &'a str,
    pub policy: &'a RetryPolicy,
    pub stop: &'a crate::stop::Stop,
    pub now: chrono::DateTime<chrono::Utc>,
    /// Send actions; else each is only prepared, and answers a stand-in id.
    pub send: bool,
}

impl ChainStep {
    /// Whether the step sends (an action).
    pub fn sends(&self) -> bool {
        matches!(self.work, Work::Action { .. })
    }

    /// Do the step for a record whose fields (with `steps`, the earlier answers) are
    /// `context`: its outcome, why it stops the record (if it failed), and — in a
    /// preview — the request an action would make.
    async fn attempt(
        &self,
        at: &Attempt<'_>,
        context: Map<String, Value>,
    ) -> (StepOutcome, Option<Failure>, Option<Prepared>) {
        let mut outcome = StepOutcome {
            step: self.name.clone(),
            status: StepStatus::Done,
            reason: None,
            code: None,
            remote_id: None,
            answer: Value::Null,
            attempts: 0,
            repeat: false,
            sent: None,
            at: at.now,
        };
        let failed = |reason: String, code: Option<String>, retry_next_run: bool| Failure {
            reason,
            code,
            retry_next_run,
            uncertain: false,
        };
        let mut request = None;
        let failure = match stages::judge(self.when.as_ref(), &context) {
            Judged::Filtered(why) => {
                outcome.status = StepStatus::Skipped;
                outcome.reason = Some(why.replacen("filter:", "when:", 1));
                None
            }
            Judged::Failed(why) => Some(failed(why.replacen("filter:", "when:", 1), None, false)),
            Judged::Pass => match &self.work {
                Work::Lookup(lookup) => match lookup.answer(&context, at.policy, at.stop).await {
                    Ok(found) => {
                        outcome.answer = found.unwrap_or(Value::Null);
                        None
                    }
                    Err(e) => Some(failed(e.reason, e.code, e.retry_next_run)),
                },
                Work::Action { receiver, mapper } => {
                    let (_, mapped) = stages::map(mapper, Record::new(at.key, context), at.now);
                    let prepared = mapped.and_then(|fields| {
                        stages::prepare(receiver.as_ref(), at.flow, at.key, fields)
                    });
                    match prepared {
                        Err(unsendable) => Some(failed(unsendable.reason, unsendable.code, false)),
                        Ok(prepared) if !at.send => {
                            outcome.answer = json!({
                                "id": format!("[the id step `{}` gets]", self.name),
                                "status": "preview",
                            });
                            outcome.sent = Some(prepared.body.clone());
                            request = Some(prepared);
                            None
                        }
                        Ok(prepared) => {
                            let (result, attempts) =
                                send_with_retry(receiver.as_ref(), &prepared, at.policy, at.stop)
                                    .await;
                            outcome.attempts = attempts;
                            // What went out is recorded (moved: a run keeps no other copy).
                            outcome.sent = Some(prepared.body);
                            match result {
                                Ok(delivered) => {
                                    outcome.answer =
                                        json!({"id": delivered.remote_id, "status": "sent"});
                                    outcome.remote_id = delivered.remote_id;
                                    None
                                }
                                Err(e) => Some(failure_of(at.flow, &e)),
                            }
                        }
                    }
                }
            },
        };
        if let Some(failure) = &failure {
            outcome.status = StepStatus::Failed;
            outcome.reason = Some(failure.reason.clone());
            outcome.code = failure.code.clone();
        }
        (outcome, failure, request)
    }
}

/// What one step would do for one record (`switchboard test`).
#[derive(Debug, Clone, Serialize)]
pub struct StepPreview {
    #[serde(flatten)]
    pub outcome: StepOutcome,
    /// The request an action makes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Prepared>,
}

impl Chain {
    /// What the steps do for one record, step after step, without state: look-ups are
    /// asked; actions are prepared and — only with `at.send` — sent, else each answers a
    /// stand-in id so that the steps after it can be shown. Stops where the record would.
    pub async fn preview(&self, at: &Attempt<'_>, fields: &Map<String, Value>) -> Vec<StepPreview> {
        let mut answers = Map::new();
        let mut previews = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let mut context = fields.clone();
            context.insert("steps".into(), Value::Object(answers.clone()));
            let (outcome, failure, request) = step.attempt(at, context).await;
            if outcome.status == StepStatus::Done {
                answers.insert(step.name.clone(), outcome.answer.clone());
            }
            let stops = failure.is_some()
                && (step.on_error == OnError::Stop
                    || failure.as_ref().is_some_and(|f| f.uncertain));
            previews.push(StepPreview { outcome, request });
            if stops {
                break;
            }
        }
        previews
    }
}

/// A step's send that failed, as the record's failure.
fn failure_of(flow: &str, e: &SendError) -> Failure {
    let code = e.code().map(String::from);
    match e {
        SendError::Permanent { .. } => Failure {
            reason: e.to_string(),
            code,
            retry_next_run: false,
            uncertain: false,
        },
        SendError::Transient { .. } => Failure {
            reason: e.to_string(),
            code,
            retry_next_run: true,
            uncertain: false,
        },
        SendError::Unauthorized { .. } => Failure {
            reason: format!("unauthorized: {e}"),
            code,
            retry_next_run: true,
            uncertain: false,
        },
        SendError::Uncertain { reason } => Failure {
            reason: format!(
                "uncertain: {reason}; it may have been delivered, so it is not sent again by itself — if it was not, send it with `switchboard replay {} --uncertain`",
                flow
            ),
            code: None,
            retry_next_run: false,
            uncertain: true,
        },
    }
}
