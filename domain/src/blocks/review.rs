//! Human review (`backend/blocks/human_in_the_loop.py`): the run pauses
//! until the owner approves or rejects the data. The timeout pins are this
//! platform's own: AutoGPT's block waits for ever.

use serde_json::Value;

use super::schema::{any, boolean, enumeration, integer, string, Schema};
use super::{Block, BlockType, BASIC};

/// The longest a review may wait before its timeout decides: 30 days.
pub const MAX_TIMEOUT_SECONDS: u64 = 30 * 24 * 3600;

/// The block's id.
pub const HUMAN_IN_THE_LOOP: &str = "8b2a7b3c-6e9d-4a5f-8c1b-2e3f4a5b6c7d";

pub(super) fn blocks() -> Vec<Block> {
    let input = Schema::input()
        .field(
            "data",
            any().desc(
                "The data to be reviewed by a human user. This exact data will be passed through to either \
                 approved_data or rejected_data output based on the reviewer's decision.",
            ),
        )
        .field(
            "name",
            string().desc(
                "A descriptive name for what this data represents. This helps the reviewer understand what they \
                 are reviewing.",
            ),
        )
        .field(
            "editable",
            boolean()
                .desc("Whether the human reviewer can edit the data before approving or rejecting it")
                .default(Value::Bool(true))
                .advanced(true),
        )
        .field(
            "timeout_seconds",
            integer()
                .desc("Seconds to wait for a decision (at most 30 days); 0 waits for ever.")
                .default(Value::from(0))
                .advanced(true)
                .extra("minimum", Value::from(0))
                .extra("maximum", Value::from(MAX_TIMEOUT_SECONDS)),
        )
        .field(
            "timeout_action",
            enumeration("TimeoutAction", &["reject", "approve", "fail"])
                .desc("What a timed-out review decides.")
                .default(Value::from("reject"))
                .advanced(true),
        );
    let output = Schema::output()
        .field("approved_data", any().desc("Outputs the input data when the reviewer APPROVES it (edited if it was)."))
        .field("rejected_data", any().desc("Outputs the input data when the reviewer REJECTS it."))
        .field(
            "review_message",
            string()
                .desc("Optional message provided by the reviewer explaining their decision.")
                .default(Value::from("")),
        );
    vec![Block::new(
        HUMAN_IN_THE_LOOP,
        "HumanInTheLoopBlock",
        "Pause execution for human review. Data flows through approved_data or rejected_data output based on the \
         reviewer's decision. Outputs contain the actual data, not status strings.",
        &[BASIC],
        input,
        output,
    )
    .with_type(BlockType::HumanInTheLoop)]
}
