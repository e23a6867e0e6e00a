//! One block's run, in a task of its own beside its worker: its values,
//! its requests to the outside world and their answers, and its end, sent
//! to the worker, which alone appends.

use std::sync::Arc;

use commands::services::Commands;
use commands::PgEventStore;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::blocks::{self, BlockContext, Effect, Step};
use crate::outside::Outside;
use crate::MAX_REQUESTS;

/// Postgres text cannot hold NUL: a block output carrying one would stall
/// every projector copying it, so it becomes U+FFFD.
pub(crate) fn without_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "\u{FFFD}")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k.replace('\0', "\u{FFFD}"), without_nul(v))).collect())
        }
        other => other,
    }
}

/// A block task that panicked outside the block's pure code (which
/// `blocks::run_turn` guards) would never report its end, and its node would
/// stay in flight for ever, holding the run open: end the node FAILED
/// instead, as AutoGPT fails a node whose block raised.
pub(crate) async fn fail_on_panic(
    running: JoinHandle<()>,
    reports: mpsc::Sender<Report>,
    node_exec_id: Uuid,
    block_id: String,
) {
    let Err(failure) = running.await else { return };
    if !failure.is_panic() {
        return;
    }
    let message = blocks::panic_message(failure.into_panic().as_ref());
    tracing::error!(%node_exec_id, block_id, %message, "a block's task panicked");
    let error = Some(blocks::block_error(&block_id, &message));
    let _ = reports.send(Report::Done { node_exec_id, error }).await;
}

/// What a running block tells its worker.
pub(crate) enum Report {
    /// Values it yielded (up to a wait, or all of them).
    Outputs {
        /// The node execution.
        node_exec_id: Uuid,
        /// The pins and values, in yield order.
        outputs: Vec<(String, Value)>,
    },
    /// A request it made to the outside world was answered.
    Answered {
        /// The node execution.
        node_exec_id: Uuid,
        /// Which of its requests.
        seq: u32,
        /// What it asked.
        request: Value,
        /// What came back.
        answer: Value,
        /// Taken from the recording a replay re-runs, not asked anew.
        replayed: bool,
    },
    /// In a replay, it asked something the recording does not hold.
    Diverged {
        /// The node execution.
        node_exec_id: Uuid,
        /// What differed.
        reason: String,
    },
    /// It asked a person to review data; it stops here until the answer.
    Review {
        /// The node execution.
        node_exec_id: Uuid,
        /// Which of its requests.
        seq: u32,
        /// The review it asks for.
        effect: Effect,
    },
    /// It ended, failed with this error when it did.
    Done {
        /// The node execution.
        node_exec_id: Uuid,
        /// The error text, on failure.
        error: Option<String>,
    },
}

/// What a block's task needs besides the block: the store for the blocks
/// that remember, the outside world for those that call out, where to
/// report, and when to stop.
pub(crate) struct BlockTask {
    pub(crate) commands: Arc<Commands<PgEventStore>>,
    pub(crate) outside: Outside,
    pub(crate) reports: mpsc::Sender<Report>,
    pub(crate) stop: CancellationToken,
    /// In a replay, the recorded requests and answers of the node
    /// execution it re-runs, in order.
    pub(crate) recording: Option<Vec<(Value, Value)>>,
}

/// How a block's steps went.
enum Flow {
    /// On to the next turn or the end.
    Go,
    /// The run stopped or the worker is gone: report nothing more.
    Gone,
    /// A step failed with this error.
    Failed(String),
}

/// Whether a replayed block asks what the recording says it asked. A
/// review is recorded with its decision's shape, so only its payload is
/// compared.
fn asks_the_same(recorded: &Value, request: &Value) -> bool {
    match recorded.get("kind").and_then(Value::as_str) {
        Some("review") => recorded.get("payload") == request.get("payload"),
        _ => recorded == request,
    }
}

impl BlockTask {
    /// Run one block, turn by turn: its values go to the worker in batches
    /// cut at its waits and its requests; each request is carried out (or
    /// its recorded answer, from before a takeover, reused) and its answer
    /// reported before the block sees it. A stop cuts a wait or a request
    /// short, and nothing more is reported.
    pub(crate) async fn run(
        self,
        block_id: String,
        input: Map<String, Value>,
        ctx: BlockContext,
        mut answers: Vec<Value>,
    ) {
        let node_exec_id = ctx.node_exec_id;
        let mut outputs = Vec::new();
        let error = loop {
            let outcome = blocks::run_turn(&block_id, &input, &ctx, &answers);
            match self.steps(outcome.steps, &ctx, &mut outputs).await {
                Flow::Go => {}
                Flow::Gone => return,
                Flow::Failed(error) => break Some(error),
            }
            if outcome.error.is_some() {
                break outcome.error;
            }
            let Some(effect) = outcome.effect else { break None };
            if !self.flush(node_exec_id, &mut outputs).await {
                return;
            }
            let seq = answers.len();
            let request = serde_json::to_value(&effect).unwrap_or(Value::Null);
            let (answer, replayed) = match &self.recording {
                // A replay answers from the recording, never from outside.
                Some(recording) => match recording.get(seq) {
                    Some((asked, answer)) if asks_the_same(asked, &request) => (answer.clone(), true),
                    recorded => {
                        let reason = match recorded {
                            Some(_) => format!("its request {} differs from the recording", seq + 1),
                            None => "it asked the outside world more often than the recording holds".to_owned(),
                        };
                        let _ = self.reports.send(Report::Diverged { node_exec_id, reason }).await;
                        return;
                    }
                },
                None => {
                    if let Effect::Review { .. } = effect {
                        // The node waits for a person: its answer comes
                        // through the review API, and the block runs again
                        // with it then.
                        let seq = u32::try_from(seq).unwrap_or(u32::MAX);
                        let _ = self.reports.send(Report::Review { node_exec_id, seq, effect }).await;
                        return;
                    }
                    if seq >= MAX_REQUESTS {
                        break Some(format!("the block asked the outside world more than {MAX_REQUESTS} times"));
                    }
                    let answer = tokio::select! {
                        _ = self.stop.cancelled() => return,
                        answer = self.outside.perform(&self.commands, ctx.user_id, &effect) => without_nul(answer),
                    };
                    (answer, false)
                }
            };
            let seq = u32::try_from(seq).unwrap_or(u32::MAX);
            let report = Report::Answered { node_exec_id, seq, request, answer: answer.clone(), replayed };
            if self.reports.send(report).await.is_err() {
                return;
            }
            answers.push(answer);
        };
        if !self.flush(node_exec_id, &mut outputs).await {
            return;
        }
        let _ = self.reports.send(Report::Done { node_exec_id, error }).await;
    }

    /// Report the values gathered so far; false when the worker is gone.
    async fn flush(&self, node_exec_id: Uuid, outputs: &mut Vec<(String, Value)>) -> bool {
        if outputs.is_empty() {
            return true;
        }
        let batch = std::mem::take(outputs);
        self.reports.send(Report::Outputs { node_exec_id, outputs: batch }).await.is_ok()
    }

    /// Carry out one turn's steps, gathering its values in `outputs`.
    async fn steps(&self, steps: Vec<Step>, ctx: &BlockContext, outputs: &mut Vec<(String, Value)>) -> Flow {
        let node_exec_id = ctx.node_exec_id;
        for step in steps {
            match step {
                Step::Yield(pin, value) => outputs.push((pin, without_nul(value))),
                Step::Sleep(wait) => {
                    if !self.flush(node_exec_id, outputs).await {
                        return Flow::Gone;
                    }
                    tokio::select! {
                        _ = self.stop.cancelled() => return Flow::Gone,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Step::Persist { storage_key, value } => {
                    let value = without_nul(value);
                    match self.commands.persist_information(ctx.user_id, storage_key, value.clone(), node_exec_id).await
                    {
                        Ok(()) => outputs.push(("value".to_owned(), value)),
                        Err(e) => return Flow::Failed(format!("Could not store the information: {e}")),
                    }
                }
                Step::Recall { storage_key, default } => {
                    match self.commands.recall_information(ctx.user_id, &storage_key).await {
                        Ok(stored) => outputs.push(("value".to_owned(), stored.unwrap_or(default))),
                        Err(e) => return Flow::Failed(format!("Could not read the information: {e}")),
                    }
                }
            }
        }
        Flow::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_block_task_that_panics_still_reports_its_node_failed() {
        let (reports, mut inbox) = mpsc::channel(1);
        let node_exec_id = Uuid::new_v4();
        let running = tokio::spawn(async { panic!("lost in the task") });
        fail_on_panic(running, reports.clone(), node_exec_id, "x".into()).await;
        match inbox.try_recv() {
            Ok(Report::Done { node_exec_id: id, error: Some(error) }) => {
                assert_eq!(id, node_exec_id);
                assert!(error.starts_with("raised by UnknownBlock with message: lost in the task"), "{error}");
            }
            _ => panic!("no failure reported"),
        }
        fail_on_panic(tokio::spawn(async {}), reports, node_exec_id, "x".into()).await;
        assert!(inbox.try_recv().is_err(), "a task that ended on its own reported for itself");
    }
}
