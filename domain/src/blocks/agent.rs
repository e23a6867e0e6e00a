//! The sub-agent block (`backend/blocks/agent.py`). Its real pins are the
//! child graph's inputs and outputs, carried in `input_schema` and
//! `output_schema`; the static schemas below only describe the wiring.

use serde_json::{json, Value};

use super::schema::{dict, integer, nullable, string, Schema};
use super::{Block, BlockType, AGENT};

pub(super) fn blocks() -> Vec<Block> {
    let masks = json!({
        "type": "object",
        "additionalProperties": {"type": "object", "additionalProperties": true},
    });
    let input = Schema::input()
        .field("user_id", string().desc("User ID"))
        .field("graph_id", string().desc("Graph ID"))
        .field("graph_version", integer().desc("Graph Version"))
        .field(
            "agent_name",
            nullable(json!({"type": "string"})).desc("Name to display in the Builder UI").default(Value::Null),
        )
        .field("inputs", dict().desc("Input data for the graph"))
        .field("input_schema", dict().desc("Input schema for the graph"))
        .field("output_schema", dict().desc("Output schema for the graph"))
        .field("nodes_input_masks", nullable(masks).default(Value::Null).hidden());
    vec![Block::new(
        "e189baac-8c20-45a1-94a7-55177ea42565",
        "AgentExecutorBlock",
        "Executes an existing agent inside your agent",
        &[AGENT],
        input,
        Schema::output(),
    )
    .with_type(BlockType::Agent)]
}
