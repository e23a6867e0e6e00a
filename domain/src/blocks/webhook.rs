//! Webhook trigger blocks (`backend/blocks/generic_webhook/triggers.py`):
//! a graph holding one is started by deliveries to a webhook, not by hand.
//! The delivered body reaches the node as its hidden `payload` pin.

use super::schema::{dict, Schema};
use super::{Block, BlockType, INPUT};

/// The generic webhook trigger's block id (AutoGPT's).
pub const GENERIC_WEBHOOK_TRIGGER: &str = "8fa8c167-2002-47ce-aba8-97572fc5d387";
/// The provider its webhooks belong to.
pub const GENERIC_WEBHOOK_PROVIDER: &str = "generic_webhook";
/// The webhook type it asks for (AutoGPT's `GenericWebhookType.PLAIN`),
/// which is also the event type of every delivery.
pub const PLAIN_WEBHOOK_TYPE: &str = "plain";

pub(super) fn blocks() -> Vec<Block> {
    let input = Schema::input()
        .field("payload", dict().factory().hidden())
        .field("constants", dict().desc("The constants to be set when the block is put on the graph").factory());
    let output = Schema::output()
        .field("payload", dict().desc("The complete webhook payload that was received from the generic webhook."))
        .field("constants", dict().desc("The constants to be set when the block is put on the graph"));
    vec![Block::new(
        GENERIC_WEBHOOK_TRIGGER,
        "GenericWebhookTriggerBlock",
        "This block will output the contents of the generic input for the webhook.",
        &[INPUT],
        input,
        output,
    )
    .with_type(BlockType::WebhookManual)]
}

/// The webhook provider and type a trigger block needs (AutoGPT's
/// `webhook_config`), or `None` for a block that is no trigger.
pub fn webhook_config(block_id: &str) -> Option<(&'static str, &'static str)> {
    block_id
        .trim()
        .eq_ignore_ascii_case(GENERIC_WEBHOOK_TRIGGER)
        .then_some((GENERIC_WEBHOOK_PROVIDER, PLAIN_WEBHOOK_TYPE))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::find;
    use super::*;

    #[test]
    fn the_generic_trigger_is_a_manual_webhook_block_with_optional_pins() {
        let block = find(GENERIC_WEBHOOK_TRIGGER).expect("in the catalog");
        assert_eq!(block.name, "GenericWebhookTriggerBlock");
        assert_eq!(block.block_type, BlockType::WebhookManual);
        assert!(block.required_inputs().is_empty());
        assert_eq!(block.input_schema["properties"]["payload"]["hidden"], json!(true));
        assert!(block.input_schema["properties"]["constants"].get("default").is_none());
        for pin in ["payload", "constants", "error"] {
            assert!(block.has_output(pin), "{pin}");
        }
        assert_eq!(block.to_api_json()["uiType"], "Webhook (manual)");
        assert_eq!(webhook_config(&block.id.to_uppercase()), Some(("generic_webhook", "plain")));
        assert_eq!(webhook_config("1ff065e9-88e8-4358-9d82-8dc91f622ba9"), None);
    }
}
