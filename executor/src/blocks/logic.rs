//! Arithmetic and branching (`backend/blocks/maths.py`, `branching.py`).

use std::cmp::Ordering;

use serde_json::{json, Value};

use super::convert::{convert, py_eq, target_of};
use super::{out, BlockContext, BlockResult, Input, Run};

pub(super) const RUNNERS: &[(&str, Run)] = &[
    ("b1ab9b19-67a6-406d-abf5-2dba76d00c79", calculator),
    ("715696a0-e1da-45c8-b209-c2fa9c3b0be6", condition),
    ("6dbbc4b3-ca6c-42b6-b508-da52d23e13f2", if_input_matches),
];

fn number(input: &Input, field: &str) -> f64 {
    match input.get(field) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

/// A float operation. Division by zero gives infinity and an overflow not a
/// number, as AutoGPT answers; JSON has neither, so both are yielded as
/// null. Rounding is Python's (half to even).
fn calculator(input: &Input, _: &BlockContext) -> BlockResult {
    let (a, b) = (number(input, "a"), number(input, "b"));
    let operation = input.text("operation", "Add");
    let result = match operation.as_str() {
        "Add" => a + b,
        "Subtract" => a - b,
        "Multiply" => a * b,
        "Divide" if b == 0.0 => f64::INFINITY,
        "Divide" => a / b,
        "Power" => a.powf(b),
        other => return Err(format!("Unknown operation: {other}")),
    };
    if !result.is_finite() {
        return Ok(vec![out("result", Value::Null)]);
    }
    if !input.flag("round_result", false) {
        return Ok(vec![out("result", result)]);
    }
    let rounded = result.round_ties_even();
    // Past i64 a cast would saturate to a wrong number; Python's int is
    // exact there, and the rounded float is the nearest JSON can carry.
    let value = if rounded.abs() < 9_223_372_036_854_775_808.0 { json!(rounded as i64) } else { json!(rounded) };
    Ok(vec![out("result", value)])
}

/// Text that reads as a number compares as one.
fn comparable(value: Value) -> Value {
    match &value {
        Value::String(s) => s.trim().parse::<f64>().map_or_else(|_| Value::String(s.trim().to_owned()), |f| json!(f)),
        _ => value,
    }
}

/// Python's ordering of two values, where it has one.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => number(a)?.partial_cmp(&number(b)?),
    }
}

/// Compare two values; `result`, then `yes_output` (default: value1) or
/// `no_output` (default: value2, as AutoGPT does).
fn condition(input: &Input, _: &BlockContext) -> BlockResult {
    let (a, b) = (comparable(input.value("value1")), comparable(input.value("value2")));
    let operator = input.text("operator", "==");
    let result = match operator.as_str() {
        "==" => py_eq(&a, &b),
        "!=" => !py_eq(&a, &b),
        op => {
            let ordering =
                order(&a, &b).ok_or_else(|| format!("Comparison failed: cannot compare {a} and {b} with {op}"))?;
            match op {
                ">" => ordering == Ordering::Greater,
                "<" => ordering == Ordering::Less,
                ">=" => ordering != Ordering::Less,
                "<=" => ordering != Ordering::Greater,
                other => return Err(format!("Unknown operator: {other}")),
            }
        }
    };
    let branch = if result {
        out("yes_output", input.get("yes_value").cloned().unwrap_or(a))
    } else {
        out("no_output", input.get("no_value").cloned().unwrap_or(b))
    };
    Ok(vec![out("result", result), branch])
}

/// Whether the input equals the value, the value first converted to the
/// input's type; `result`, then `yes_output` or `no_output`.
fn if_input_matches(input: &Input, _: &BlockContext) -> BlockResult {
    let given = input.value("input");
    let mut value = input.value("value");
    if !py_eq(&given, &value) && !value.is_null() {
        if let Some(target) = target_of(&given) {
            value = convert(&value, target);
        }
    }
    Ok(if py_eq(&given, &value) {
        vec![out("result", true), out("yes_output", input.value("yes_value"))]
    } else {
        vec![out("result", false), out("no_output", input.value("no_value"))]
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::testing::{expect, yields};

    const CALCULATOR: &str = "b1ab9b19-67a6-406d-abf5-2dba76d00c79";

    #[test]
    fn the_calculator_computes_in_floats() {
        let r = |input| yields(CALCULATOR, input);
        assert_eq!(
            r(json!({"operation": "Add", "a": 10.0, "b": 5.0, "round_result": false})),
            expect(json!([["result", 15.0]]))
        );
        assert_eq!(r(json!({"operation": "Divide", "a": 1, "b": 0})), expect(json!([["result", null]])), "infinity");
        assert_eq!(
            r(json!({"operation": "Divide", "a": 7, "b": 2, "round_result": true})),
            expect(json!([["result", 4]]))
        );
        assert_eq!(
            r(json!({"operation": "Multiply", "a": 2.5, "b": 1, "round_result": true})),
            expect(json!([["result", 2]])),
            "half to even"
        );
        assert_eq!(r(json!({"operation": "Power", "a": 2, "b": 10})), expect(json!([["result", 1024.0]])));
        assert_eq!(r(json!({"operation": "Power", "a": 10, "b": 400})), expect(json!([["result", null]])), "overflow");
        assert_eq!(
            r(json!({"operation": "Power", "a": 10, "b": 20, "round_result": true})),
            expect(json!([["result", 1e20]])),
            "beyond i64 the rounded float, not i64::MAX"
        );
        assert_eq!(
            r(json!({"operation": "Power", "a": 2, "b": 62, "round_result": true})),
            expect(json!([["result", 4_611_686_018_427_387_904_i64]]))
        );
    }

    #[test]
    fn conditions_compare_numbers_read_from_text() {
        let block = "715696a0-e1da-45c8-b209-c2fa9c3b0be6";
        let given =
            json!({"value1": 10, "operator": ">", "value2": 5, "yes_value": "Greater", "no_value": "Not greater"});
        assert_eq!(yields(block, given), expect(json!([["result", true], ["yes_output", "Greater"]])));
        assert_eq!(
            yields(block, json!({"value1": "3", "operator": "<", "value2": 2})),
            expect(json!([["result", false], ["no_output", 2]]))
        );
        assert_eq!(
            yields(block, json!({"value1": "10", "operator": "==", "value2": 10})),
            expect(json!([["result", true], ["yes_output", 10.0]]))
        );
        assert_eq!(yields(block, json!({"value1": "abc", "operator": ">", "value2": 1}))[0].0, "error");
    }

    #[test]
    fn if_input_matches_converts_the_value_to_the_inputs_type() {
        let block = "6dbbc4b3-ca6c-42b6-b508-da52d23e13f2";
        let cases = [
            (
                json!({"input": 10, "value": 10, "yes_value": "Greater", "no_value": "Not greater"}),
                json!([["result", true], ["yes_output", "Greater"]]),
            ),
            (
                json!({"input": 10, "value": 20, "yes_value": "Greater", "no_value": "Not greater"}),
                json!([["result", false], ["no_output", "Not greater"]]),
            ),
            (
                json!({"input": 10, "value": "None", "yes_value": "Yes", "no_value": "No"}),
                json!([["result", false], ["no_output", "No"]]),
            ),
            (json!({"input": 10, "value": "10"}), json!([["result", true], ["yes_output", null]])),
        ];
        for (input, output) in cases {
            assert_eq!(yields(block, input.clone()), expect(output), "{input}");
        }
    }
}
