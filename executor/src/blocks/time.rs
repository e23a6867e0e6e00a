//! Waiting (`backend/blocks/time_blocks.py`). The clock blocks come with
//! the scheduling work; the countdown is a wait the worker carries out.

use std::time::Duration;

use serde_json::Value;

use super::{out, BlockContext, BlockResult, Input, Run, Step};

pub(super) const RUNNERS: &[(&str, Run)] = &[("d67a9c52-5e4e-11e2-bcfd-0800200c9a71", countdown_timer)];

/// A whole number of a unit, given as a number or as text.
fn whole(input: &Input, field: &str) -> Result<u64, String> {
    match input.get(field) {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| format!("invalid literal for int(): {n}")),
        Some(Value::String(s)) => {
            s.trim().parse().map_err(|_| format!("invalid literal for int() with base 10: '{s}'"))
        }
        Some(other) => Err(format!("invalid {field}: {other}")),
    }
}

/// Wait the total time, then yield the message; `repeat` times.
fn countdown_timer(input: &Input, _: &BlockContext) -> BlockResult {
    let total = whole(input, "seconds")?
        + whole(input, "minutes")? * 60
        + whole(input, "hours")? * 3600
        + whole(input, "days")? * 86_400;
    let message = input.get("input_message").cloned().unwrap_or_else(|| Value::String("timer finished".into()));
    let repeat = input.get("repeat").and_then(Value::as_u64).unwrap_or(1);
    let mut steps = Vec::new();
    for _ in 0..repeat {
        if total > 0 {
            steps.push(Step::Sleep(Duration::from_secs(total)));
        }
        steps.push(out("output_message", message.clone()));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::testing::{expect, yields};

    #[test]
    fn the_countdown_yields_its_message_after_the_wait() {
        let block = "d67a9c52-5e4e-11e2-bcfd-0800200c9a71";
        assert_eq!(yields(block, json!({"seconds": 1})), expect(json!([["output_message", "timer finished"]])));
        assert_eq!(
            yields(block, json!({"input_message": "Custom message"})),
            expect(json!([["output_message", "Custom message"]]))
        );
        assert_eq!(yields(block, json!({"seconds": "x"}))[0].0, "error");
        assert_eq!(yields(block, json!({"repeat": 2, "input_message": "m"})).len(), 2);
    }
}
