//! The executions projector's batch path: a batch of run events folded in
//! memory into one change per run and one per node execution, written by
//! one statement (see [`crate::projector::Projector::bulk`]) instead of a
//! statement per event. A run's events mostly land in one batch when the
//! log is replayed, and in a handful when it is tailed live.
//!
//! A change either creates its row (the run or node execution began in the
//! batch) or updates the row an earlier batch wrote; which one is decided in
//! SQL by whether the row is there, so the fold needs no read. Events whose
//! effect depends on other rows than their own (a run resumed, reviews asked
//! for or answered) are rare: a batch holding one is declined and applied
//! event by event, as is an order the fold does not model.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::blocks::{self, BlockType};
use domain::execution::{ExecutionEvent, ExecutionStatus};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use uuid::Uuid;

use crate::projector::{bind, json, micros, ProjectionError};

/// One run's change in a batch.
#[derive(Debug, Default, Serialize)]
struct RunChange {
    id: Uuid,
    /// The row to insert, when the run was queued in the batch.
    #[serde(flatten)]
    queued: Option<QueuedRun>,
    status: Option<&'static str>,
    /// The first start (a later one keeps it).
    started_at: Option<DateTime<Utc>>,
    ended: bool,
    error: Option<String>,
    ended_at: Option<DateTime<Utc>>,
    ran: i32,
    failed: i32,
    deleted: bool,
    share_set: bool,
    share_token: Option<Uuid>,
    updated_at: Option<DateTime<Utc>>,
    /// Values given to AgentOutput nodes whose block the batch names.
    outs: Vec<Output>,
}

/// What a queued run's row starts from.
#[derive(Debug, Serialize)]
struct QueuedRun {
    user_id: Uuid,
    graph_id: Uuid,
    graph_version: i32,
    preset_id: Option<Uuid>,
    inputs: Value,
    created_at: DateTime<Utc>,
}

/// A value given to an output, at its place in the batch.
#[derive(Debug, Serialize)]
struct Output {
    ord: usize,
    name: String,
    value: Value,
}

/// One node execution's change in a batch.
#[derive(Debug, Default, Serialize)]
struct NodeChange {
    /// Creation order, for the table's `seq`.
    ord: usize,
    id: Uuid,
    execution_id: Uuid,
    /// The row to insert, when the node execution began in the batch.
    #[serde(flatten)]
    created: Option<CreatedNode>,
    status: Option<&'static str>,
    /// `merge` (pins received) or `replace` (the input it was queued with,
    /// and pins after it); none leaves the input alone.
    input_mode: Option<&'static str>,
    input: Map<String, Value>,
    /// Values produced, by pin, in order.
    #[serde(skip_serializing_if = "Map::is_empty")]
    outputs: Map<String, Value>,
    queue_time: Option<DateTime<Utc>>,
    start_time: Option<DateTime<Utc>>,
    end_time: Option<DateTime<Utc>>,
    stats: Option<Value>,
    /// A queued input shaped like an output's, for a node whose block only
    /// its stored row knows: SQL adds it to the run's outputs if the block
    /// is an AgentOutput.
    #[serde(flatten)]
    queued_out: Option<QueuedOutput>,
    /// Closes a review left waiting, when the node ended.
    ended_message: Option<String>,
    #[serde(skip)]
    queued: bool,
}

/// What a node execution's row starts from.
#[derive(Debug, Serialize)]
struct CreatedNode {
    node_id: String,
    block_id: String,
    add_time: DateTime<Utc>,
    created_status: &'static str,
}

/// See [`NodeChange::queued_out`].
#[derive(Debug, Serialize)]
struct QueuedOutput {
    queued_ord: usize,
    queued_name: String,
    queued_value: Value,
}

/// A batch folded, or why it cannot be.
#[derive(Default)]
struct Fold {
    runs: Vec<RunChange>,
    run_at: HashMap<Uuid, usize>,
    nodes: Vec<NodeChange>,
    node_at: HashMap<Uuid, usize>,
    /// Outputs given so far: their order within a run's output.
    outputs: usize,
}

/// The fold declines the batch: it is applied event by event.
struct Decline;

/// The output an AgentOutput node's queued input gives, if it has one.
fn output_of(input: &Map<String, Value>) -> Option<(String, Value)> {
    match (input.get("name"), input.get("value")) {
        (Some(Value::String(name)), Some(value)) => Some((name.clone(), value.clone())),
        _ => None,
    }
}

fn is_output_block(block_id: &str) -> bool {
    blocks::find(block_id).map(|b| b.block_type) == Some(BlockType::Output)
}

impl Fold {
    fn run(&mut self, id: Uuid) -> &mut RunChange {
        let runs = &mut self.runs;
        let i = *self.run_at.entry(id).or_insert_with(|| {
            runs.push(RunChange { id, ..RunChange::default() });
            runs.len() - 1
        });
        &mut self.runs[i]
    }

    /// A node execution an event changes; `None` creates nothing.
    fn node(&mut self, run: Uuid, id: Uuid, create: Option<CreatedNode>) -> Result<&mut NodeChange, Decline> {
        let ord = self.nodes.len();
        match self.node_at.get(&id) {
            // Created after it was changed: whether the row was there first
            // decides the outcome, which only SQL knows.
            Some(&i) if create.is_some() && self.nodes[i].created.is_none() => Err(Decline),
            Some(&i) => Ok(&mut self.nodes[i]),
            None => {
                self.node_at.insert(id, ord);
                self.nodes.push(NodeChange { ord, id, execution_id: run, created: create, ..NodeChange::default() });
                Ok(&mut self.nodes[ord])
            }
        }
    }

    fn next_output(&mut self) -> usize {
        self.outputs += 1;
        self.outputs
    }

    fn apply(&mut self, run: Uuid, event: &ExecutionEvent) -> Result<(), Decline> {
        match event {
            ExecutionEvent::ExecutionQueued {
                user_id,
                graph_id,
                graph_version,
                inputs,
                preset_id,
                starting,
                at,
                ..
            } => {
                let at = micros(*at);
                let change = self.run(run);
                if change.queued.is_some() {
                    return Err(Decline);
                }
                change.queued = Some(QueuedRun {
                    user_id: *user_id,
                    graph_id: *graph_id,
                    graph_version: *graph_version,
                    preset_id: *preset_id,
                    inputs: Value::Object(inputs.clone()),
                    created_at: at,
                });
                for node in starting {
                    if self.node_at.contains_key(&node.node_exec_id) {
                        return Err(Decline);
                    }
                    let created = CreatedNode {
                        node_id: node.node_id.clone(),
                        block_id: node.block_id.clone(),
                        add_time: at,
                        created_status: ExecutionStatus::Queued.as_str(),
                    };
                    let change = self.node(run, node.node_exec_id, Some(created))?;
                    change.input_mode = Some("replace");
                    change.input = node.input_data.clone();
                    change.queue_time = Some(at);
                    change.queued = true;
                    if is_output_block(&node.block_id) {
                        if let Some((name, value)) = output_of(&node.input_data) {
                            let ord = self.next_output();
                            self.run(run).outs.push(Output { ord, name, value });
                        }
                    }
                }
            }
            ExecutionEvent::ExecutionStarted { at, .. } => {
                let change = self.run(run);
                change.status = Some(ExecutionStatus::Running.as_str());
                change.started_at.get_or_insert(micros(*at));
                change.updated_at = Some(micros(*at));
            }
            ExecutionEvent::NodeInputReceived { node_exec_id, node_id, block_id, pin, value, at } => {
                let created = CreatedNode {
                    node_id: node_id.clone(),
                    block_id: block_id.clone(),
                    add_time: micros(*at),
                    created_status: ExecutionStatus::Incomplete.as_str(),
                };
                let change = self.node(run, *node_exec_id, Some(created))?;
                change.input_mode.get_or_insert("merge");
                change.input.insert(pin.clone(), value.clone());
            }
            ExecutionEvent::NodeExecutionQueued { node_exec_id, input_data, at } => {
                let ord = self.next_output();
                let change = self.node(run, *node_exec_id, None)?;
                if change.queued {
                    return Err(Decline);
                }
                change.queued = true;
                change.status = Some(ExecutionStatus::Queued.as_str());
                change.input_mode = Some("replace");
                change.input = input_data.clone();
                change.queue_time = Some(micros(*at));
                let Some((name, value)) = output_of(input_data) else { return Ok(()) };
                match &change.created {
                    Some(created) if is_output_block(&created.block_id) => {
                        self.run(run).outs.push(Output { ord, name, value })
                    }
                    Some(_) => {}
                    None => {
                        change.queued_out =
                            Some(QueuedOutput { queued_ord: ord, queued_name: name, queued_value: value });
                        // The run's row takes the output, if SQL finds one.
                        self.run(run);
                    }
                }
            }
            ExecutionEvent::NodeExecutionStarted { node_exec_id, at, .. } => {
                let change = self.node(run, *node_exec_id, None)?;
                change.status = Some(ExecutionStatus::Running.as_str());
                change.start_time = Some(micros(*at));
            }
            ExecutionEvent::NodeOutputProduced { node_exec_id, pin, value, .. } => {
                let change = self.node(run, *node_exec_id, None)?;
                let values = change.outputs.entry(pin.clone()).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(values) = values {
                    values.push(value.clone());
                }
            }
            ExecutionEvent::NodeEffectAnswered { node_exec_id, answer, .. } => {
                // An answer that could decide a review is left to the
                // event-by-event path, which knows the review rows.
                if matches!(answer.get("status").and_then(Value::as_str), Some("APPROVED" | "REJECTED" | "FAILED")) {
                    return Err(Decline);
                }
                if let Some(stats) = domain::execution::llm_stats([answer]) {
                    let change = self.node(run, *node_exec_id, None)?;
                    change.stats = Some(add_stats(change.stats.take(), &stats));
                }
            }
            ExecutionEvent::NodeExecutionEnded { node_exec_id, status, at } => {
                let at = micros(*at);
                let change = self.node(run, *node_exec_id, None)?;
                if change.ended_message.is_some() {
                    return Err(Decline);
                }
                change.status = Some(status.as_str());
                change.end_time = Some(at);
                change.ended_message = Some(crate::reviews::ended_before_a_decision(*status));
                let run = self.run(run);
                run.ran += i32::from(matches!(status, ExecutionStatus::Completed | ExecutionStatus::Failed));
                run.failed += i32::from(*status == ExecutionStatus::Failed);
                run.updated_at = Some(at);
            }
            // Where a replay diverged is in the error its end carries.
            ExecutionEvent::ExecutionDiverged { .. } => {}
            ExecutionEvent::ExecutionEnded { status, error, at } => {
                let change = self.run(run);
                change.status = Some(status.as_str());
                change.ended = true;
                change.error.clone_from(error);
                change.ended_at = Some(micros(*at));
                change.updated_at = Some(micros(*at));
            }
            ExecutionEvent::ExecutionDeleted { at } => {
                let change = self.run(run);
                change.deleted = true;
                change.updated_at = Some(micros(*at));
            }
            ExecutionEvent::ExecutionShared { share_token, at } => {
                let change = self.run(run);
                (change.share_set, change.share_token) = (true, Some(*share_token));
                change.updated_at = Some(micros(*at));
            }
            ExecutionEvent::ExecutionUnshared { at } => {
                let change = self.run(run);
                (change.share_set, change.share_token) = (true, None);
                change.updated_at = Some(micros(*at));
            }
            ExecutionEvent::ExecutionResumed { .. }
            | ExecutionEvent::NodeReviewRequested { .. }
            | ExecutionEvent::ExecutionPaused { .. }
            | ExecutionEvent::ExecutionReviewed { .. } => return Err(Decline),
        }
        Ok(())
    }
}

/// Two token counts added key by key, as the event-by-event path adds them.
fn add_stats(sum: Option<Value>, more: &Value) -> Value {
    let count = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).and_then(Value::as_u64).unwrap_or(0);
    let mut total = Map::new();
    for key in ["llm_call_count", "input_token_count", "output_token_count"] {
        total.insert(key.into(), Value::from(count(sum.as_ref(), key) + count(Some(more), key)));
    }
    Value::Object(total)
}

/// The batch's events as one statement's CTEs, up to the first event the
/// fold declines (the runner applies that one alone), with how many events
/// that is.
pub(crate) fn statement(
    events: &[(Uuid, ExecutionEvent)],
    args: &mut PgArguments,
) -> Result<Option<(&'static str, usize)>, ProjectionError> {
    let mut fold = Fold::default();
    let mut covered = events.len();
    for (i, (run, event)) in events.iter().enumerate() {
        if fold.apply(*run, event).is_err() {
            covered = i;
            break;
        }
    }
    if covered < events.len() {
        // The fold has taken the declined event in part: the runner asks
        // again for the events before it.
        return Ok(Some((STATEMENT, covered)));
    }
    bind(args, json(&fold.runs)?)?;
    bind(args, json(&fold.nodes)?)?;
    let outputs: Vec<&str> =
        blocks::catalog().iter().filter(|b| b.block_type == BlockType::Output).map(|b| b.id).collect();
    bind(args, outputs)?;
    Ok(Some((STATEMENT, covered)))
}

/// The writes, each guarded by the checkpoint move (`ck`). `$6` holds the
/// runs' changes, `$7` the node executions', `$8` the AgentOutput block ids.
/// Rows are updated where they exist and inserted where they do not (a
/// single statement sees one snapshot, so no CTE writes a row twice).
const STATEMENT: &str = "\
r AS (SELECT * FROM jsonb_to_recordset($6::jsonb) AS r(id uuid, user_id uuid, graph_id uuid, graph_version int, \
  preset_id uuid, inputs jsonb, created_at timestamptz, status text, started_at timestamptz, ended boolean, \
  error text, ended_at timestamptz, ran int, failed int, deleted boolean, share_set boolean, share_token uuid, \
  updated_at timestamptz, outs jsonb)), \
n AS (SELECT * FROM jsonb_to_recordset($7::jsonb) AS n(ord int, id uuid, execution_id uuid, node_id text, \
  block_id text, add_time timestamptz, created_status text, status text, input_mode text, input jsonb, \
  outputs jsonb, queue_time timestamptz, start_time timestamptz, end_time timestamptz, stats jsonb, \
  queued_ord int, queued_name text, queued_value jsonb, ended_message text)), \
nx AS (SELECT id FROM rm_node_executions WHERE id IN (SELECT id FROM n)), \
nu AS (UPDATE rm_node_executions t SET status = coalesce(n.status, t.status), \
  input_data = CASE n.input_mode WHEN 'replace' THEN n.input WHEN 'merge' THEN t.input_data || n.input \
    ELSE t.input_data END, \
  output_data = t.output_data || coalesce((SELECT jsonb_object_agg(k, coalesce(t.output_data -> k, '[]'::jsonb) || v) \
    FROM jsonb_each(n.outputs) AS o(k, v)), '{}'::jsonb), \
  queue_time = coalesce(n.queue_time, t.queue_time), start_time = coalesce(n.start_time, t.start_time), \
  end_time = coalesce(n.end_time, t.end_time), \
  stats = CASE WHEN n.stats IS NULL THEN t.stats ELSE jsonb_build_object( \
    'llm_call_count', coalesce((t.stats->>'llm_call_count')::bigint, 0) + (n.stats->>'llm_call_count')::bigint, \
    'input_token_count', coalesce((t.stats->>'input_token_count')::bigint, 0) + (n.stats->>'input_token_count')::bigint, \
    'output_token_count', coalesce((t.stats->>'output_token_count')::bigint, 0) + (n.stats->>'output_token_count')::bigint) END \
  FROM n WHERE t.id = n.id AND EXISTS (SELECT FROM ck) \
  RETURNING t.execution_id, t.block_id, n.queued_ord, n.queued_name, n.queued_value), \
ni AS (INSERT INTO rm_node_executions (id, execution_id, node_id, block_id, status, input_data, output_data, \
    add_time, queue_time, start_time, end_time, stats) \
  SELECT n.id, n.execution_id, n.node_id, n.block_id, coalesce(n.status, n.created_status), n.input, \
    coalesce(n.outputs, '{}'::jsonb), n.add_time, n.queue_time, n.start_time, n.end_time, n.stats \
  FROM n WHERE n.node_id IS NOT NULL AND n.id NOT IN (SELECT id FROM nx) AND EXISTS (SELECT FROM ck) \
  ORDER BY n.ord), \
ro AS (SELECT r.id, o.ord, o.name, o.value FROM r CROSS JOIN LATERAL jsonb_to_recordset(r.outs) \
    AS o(ord int, name text, value jsonb) \
  UNION ALL SELECT execution_id, queued_ord, queued_name, queued_value FROM nu \
    WHERE queued_name IS NOT NULL AND block_id = ANY($8::text[])), \
rout AS (SELECT id, jsonb_object_agg(name, vals) AS outs \
  FROM (SELECT id, name, jsonb_agg(value ORDER BY ord) AS vals FROM ro GROUP BY id, name) g GROUP BY id), \
rx AS (SELECT id FROM rm_graph_executions WHERE id IN (SELECT id FROM r)), \
ru AS (UPDATE rm_graph_executions t SET status = coalesce(r.status, t.status), \
  started_at = coalesce(t.started_at, r.started_at), \
  ended_at = CASE WHEN r.ended THEN r.ended_at ELSE t.ended_at END, \
  error = CASE WHEN r.ended THEN r.error ELSE t.error END, \
  node_exec_count = t.node_exec_count + r.ran, node_error_count = t.node_error_count + r.failed, \
  is_deleted = t.is_deleted OR r.deleted, \
  share_token = CASE WHEN r.share_set THEN r.share_token ELSE t.share_token END, \
  updated_at = coalesce(r.updated_at, t.updated_at), \
  outputs = t.outputs || coalesce((SELECT jsonb_object_agg(k, coalesce(t.outputs -> k, '[]'::jsonb) || v) \
    FROM jsonb_each(rout.outs) AS o(k, v)), '{}'::jsonb) \
  FROM r LEFT JOIN rout ON rout.id = r.id WHERE t.id = r.id AND EXISTS (SELECT FROM ck)), \
ri AS (INSERT INTO rm_graph_executions (id, user_id, graph_id, graph_version, preset_id, status, inputs, outputs, \
    created_at, started_at, ended_at, node_exec_count, node_error_count, error, is_deleted, share_token, updated_at) \
  SELECT r.id, r.user_id, r.graph_id, r.graph_version, r.preset_id, coalesce(r.status, 'QUEUED'), r.inputs, \
    coalesce(rout.outs, '{}'::jsonb), r.created_at, r.started_at, r.ended_at, r.ran, r.failed, r.error, r.deleted, \
    r.share_token, coalesce(r.updated_at, r.created_at) \
  FROM r LEFT JOIN rout ON rout.id = r.id \
  WHERE r.user_id IS NOT NULL AND r.id NOT IN (SELECT id FROM rx) AND EXISTS (SELECT FROM ck)), \
rv AS (UPDATE rm_reviews v SET processed = true, updated_at = n.end_time, \
  status = CASE WHEN v.status = 'WAITING' THEN 'REJECTED' ELSE v.status END, \
  review_message = CASE WHEN v.status = 'WAITING' THEN n.ended_message ELSE v.review_message END \
  FROM n WHERE v.node_exec_id = n.id AND n.ended_message IS NOT NULL AND EXISTS (SELECT FROM ck))";

#[cfg(test)]
mod tests {
    use domain::execution::StartingNode;
    use serde_json::json;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn a_run_from_queue_to_end_folds_into_one_change_per_row() {
        let (run, first, second) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let input = Map::from_iter([("name".to_owned(), json!("x"))]);
        let events = vec![
            ExecutionEvent::ExecutionQueued {
                execution_id: run,
                user_id: Uuid::new_v4(),
                graph_id: Uuid::new_v4(),
                graph_version: 1,
                inputs: input.clone(),
                preset_id: None,
                starting: vec![StartingNode {
                    node_exec_id: first,
                    node_id: "in".into(),
                    block_id: "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b".into(),
                    input_data: input.clone(),
                }],
                node_input_masks: Map::new(),
                replay: None,
                at: at(),
            },
            ExecutionEvent::ExecutionStarted { worker: "w".into(), at: at() },
            ExecutionEvent::NodeExecutionStarted { node_exec_id: first, replayed_from: None, at: at() },
            ExecutionEvent::NodeOutputProduced {
                node_exec_id: first,
                pin: "result".into(),
                value: json!("x"),
                at: at(),
            },
            ExecutionEvent::NodeExecutionEnded { node_exec_id: first, status: ExecutionStatus::Completed, at: at() },
            ExecutionEvent::NodeInputReceived {
                node_exec_id: second,
                node_id: "out".into(),
                block_id: "363ae599-353e-4804-937e-b2ee3cef3da4".into(),
                pin: "value".into(),
                value: json!("x"),
                at: at(),
            },
            ExecutionEvent::NodeExecutionQueued {
                node_exec_id: second,
                input_data: Map::from_iter([("name".to_owned(), json!("greeting")), ("value".to_owned(), json!("x"))]),
                at: at(),
            },
            ExecutionEvent::NodeExecutionEnded { node_exec_id: second, status: ExecutionStatus::Completed, at: at() },
            ExecutionEvent::ExecutionEnded { status: ExecutionStatus::Completed, error: None, at: at() },
        ];
        let mut fold = Fold::default();
        for event in &events {
            assert!(fold.apply(run, event).is_ok(), "{event:?}");
        }
        assert_eq!((fold.runs.len(), fold.nodes.len()), (1, 2));
        let change = &fold.runs[0];
        assert_eq!((change.ran, change.status, change.ended), (2, Some("COMPLETED"), true));
        assert_eq!(change.outs.len(), 1, "the AgentOutput's value, its block named in the batch");
        assert_eq!(fold.nodes[1].input_mode, Some("replace"));
        assert_eq!(fold.nodes[0].outputs, Map::from_iter([("result".to_owned(), json!(["x"]))]));
    }

    #[test]
    fn a_queued_output_whose_block_only_the_row_knows_is_left_to_sql_and_reviews_decline() {
        let (run, node) = (Uuid::new_v4(), Uuid::new_v4());
        let mut fold = Fold::default();
        let input = Map::from_iter([("name".to_owned(), json!("o")), ("value".to_owned(), json!(1))]);
        let queued = ExecutionEvent::NodeExecutionQueued { node_exec_id: node, input_data: input, at: at() };
        assert!(fold.apply(run, &queued).is_ok());
        assert!(fold.nodes[0].queued_out.is_some());
        assert_eq!(fold.runs.len(), 1, "the run is there to take the output");
        assert!(fold.apply(run, &queued).is_err(), "queued twice");
        let mut fold = Fold::default();
        assert!(fold.apply(run, &ExecutionEvent::ExecutionPaused { at: at() }).is_err());
        let mut fold = Fold::default();
        let started = ExecutionEvent::NodeExecutionStarted { node_exec_id: node, replayed_from: None, at: at() };
        let received = ExecutionEvent::NodeInputReceived {
            node_exec_id: node,
            node_id: "n".into(),
            block_id: "b".into(),
            pin: "p".into(),
            value: json!(1),
            at: at(),
        };
        assert!(fold.apply(run, &started).is_ok());
        assert!(fold.apply(run, &received).is_err(), "created after it was changed");
    }
}
