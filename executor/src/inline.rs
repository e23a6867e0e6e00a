//! Blocks run by the worker itself, before their start is appended: those
//! that finish in their first turn with values only, asking nothing of the
//! outside world or the store (inputs, outputs, templates, most text and
//! math blocks). Their start, values and end then go in the append that
//! starts them, with the starts of whatever they feed, so a run of such
//! blocks is claimed and ended in one commit instead of one per node.
//!
//! Exactly once still holds: nothing such a block does is seen before that
//! append commits. A worker that dies first leaves the node queued, and the
//! next one runs it again, to the same values (a block is a function of its
//! input and context). A block that wants anything else (a request, a wait,
//! the store) is started and run in a task, as before; its first turn,
//! being pure, is simply computed again there.

use serde_json::{Map, Value};

use crate::blocks::{self, BlockContext, Step};
use crate::task::{without_nul, Report};

/// Blocks run inline per append at most; the rest start as tasks. It bounds
/// an append, and a loop of such blocks still appends as it goes.
pub(crate) const INLINE_PER_APPEND: usize = 32;

/// The reports of a block run to its end here, if it is one that can be.
pub(crate) fn run(block_id: &str, input: &Map<String, Value>, ctx: &BlockContext) -> Option<Vec<Report>> {
    let outcome = blocks::run_turn(block_id, input, ctx, &[]);
    if outcome.effect.is_some() {
        return None;
    }
    // Any step but a value (a wait, the store) leaves the block to a task.
    let outputs: Vec<(String, Value)> = outcome
        .steps
        .into_iter()
        .map(|step| match step {
            Step::Yield(pin, value) => Some((pin, without_nul(value))),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let node_exec_id = ctx.node_exec_id;
    let mut reports = Vec::with_capacity(2);
    if !outputs.is_empty() {
        reports.push(Report::Outputs { node_exec_id, outputs });
    }
    reports.push(Report::Done { node_exec_id, error: outcome.error });
    Some(reports)
}
