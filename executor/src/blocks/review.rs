//! Human review (HumanInTheLoopBlock): the block asks for a decision; the
//! answer (`{"status": "APPROVED"|"REJECTED"|"FAILED", "data", "message"}`)
//! picks the pin the data leaves on.

use super::{out, Act, Answer, BlockContext, Effect, Input, Turn};

pub(super) const ACTING: &[(&str, Act)] = &[(domain::blocks::review::HUMAN_IN_THE_LOOP, human_in_the_loop)];

fn human_in_the_loop(input: &Input, _: &BlockContext, answers: &[Answer]) -> Result<Turn, String> {
    let Some(answer) = answers.first() else {
        let timeout_seconds = match input.get("timeout_seconds") {
            None => None,
            Some(value) => match value.as_u64() {
                Some(0) => None,
                Some(s) if s <= domain::blocks::review::MAX_TIMEOUT_SECONDS => Some(s),
                _ => {
                    let max = domain::blocks::review::MAX_TIMEOUT_SECONDS;
                    return Err(format!("timeout_seconds must be a whole number from 0 to {max}"));
                }
            },
        };
        let effect = Effect::Review {
            payload: input.value("data"),
            instructions: input.get("name").map(|_| input.text("name", "")),
            editable: input.flag("editable", true),
            timeout_seconds,
            timeout_action: input.text("timeout_action", "reject"),
        };
        return Ok(Turn { steps: vec![], effect: Some(effect) });
    };
    let data = answer.get("data").cloned().unwrap_or_else(|| input.value("data"));
    let message = answer.get("message").and_then(|m| m.as_str()).filter(|m| !m.is_empty());
    let pin = match answer.get("status").and_then(|s| s.as_str()) {
        Some("APPROVED") => "approved_data",
        Some("REJECTED") => "rejected_data",
        _ => return Err(message.unwrap_or("the review failed").to_owned()),
    };
    let mut steps = vec![out(pin, data)];
    if let Some(message) = message {
        steps.push(out("review_message", message));
    }
    Ok(Turn { steps, effect: None })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::testing::outcome;
    use crate::blocks::{Effect, Step};

    const ID: &str = domain::blocks::review::HUMAN_IN_THE_LOOP;

    #[test]
    fn it_asks_for_a_review_then_routes_the_data_by_the_decision() {
        let input = json!({"data": {"name": "John Doe", "age": 30}, "name": "User profile data", "timeout_seconds": 5});
        let asked = outcome(ID, input.clone(), &[]);
        assert_eq!(
            asked.effect,
            Some(Effect::Review {
                payload: json!({"name": "John Doe", "age": 30}),
                instructions: Some("User profile data".into()),
                editable: true,
                timeout_seconds: Some(5),
                timeout_action: "reject".into(),
            })
        );
        let approved =
            outcome(ID, input.clone(), &[json!({"status": "APPROVED", "data": {"name": "Jane"}, "message": "ok"})]);
        assert_eq!(
            approved.steps,
            vec![
                Step::Yield("approved_data".into(), json!({"name": "Jane"})),
                Step::Yield("review_message".into(), json!("ok"))
            ]
        );
        let rejected = outcome(ID, input.clone(), &[json!({"status": "REJECTED", "data": {"a": 1}, "message": null})]);
        assert_eq!(rejected.steps, vec![Step::Yield("rejected_data".into(), json!({"a": 1}))]);
        let failed = outcome(ID, input, &[json!({"status": "FAILED", "message": "The review timed out"})]);
        assert!(failed.error.unwrap().contains("The review timed out"));
        for bad in [json!(-1), json!(1.5), json!(30 * 24 * 3600 + 1)] {
            let refused = outcome(ID, json!({"data": 1, "name": "n", "timeout_seconds": bad}), &[]);
            assert!(refused.error.unwrap().contains("timeout_seconds"), "{bad}");
        }
    }
}
