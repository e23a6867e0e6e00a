//! Webhook triggers (`backend/blocks/generic_webhook/triggers.py`). The
//! delivered body reaches the trigger node as its `payload` input (the run's
//! input mask for that node, with the preset's trigger config), so running
//! the node only hands it on.

use serde_json::Value;

use super::{out, BlockContext, BlockResult, Input, Run};

pub(super) const RUNNERS: &[(&str, Run)] = &[(domain::blocks::webhook::GENERIC_WEBHOOK_TRIGGER, generic_trigger)];

/// The constants set on the node, then the delivered payload (`{}` when the
/// graph was run by hand), in AutoGPT's order.
fn generic_trigger(input: &Input, _: &BlockContext) -> BlockResult {
    Ok(vec![
        out("constants", Value::Object(input.object("constants"))),
        out("payload", Value::Object(input.object("payload"))),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{expect, yields};
    use domain::blocks::webhook::GENERIC_WEBHOOK_TRIGGER;

    #[test]
    fn the_trigger_yields_its_constants_and_the_delivered_payload() {
        let input = json!({"constants": {"key": "value"}, "payload": {"message": "Hello, World!"}});
        assert_eq!(
            yields(GENERIC_WEBHOOK_TRIGGER, input),
            expect(json!([["constants", {"key": "value"}], ["payload", {"message": "Hello, World!"}]]))
        );
        assert_eq!(yields(GENERIC_WEBHOOK_TRIGGER, json!({})), expect(json!([["constants", {}], ["payload", {}]])));
    }
}
