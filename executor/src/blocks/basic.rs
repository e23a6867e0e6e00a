//! Passing values on (`backend/blocks/basic.py`).

use super::{out, BlockContext, BlockResult, Input, Run};

pub(super) const RUNNERS: &[(&str, Run)] = &[
    ("1ff065e9-88e8-4358-9d82-8dc91f622ba9", store_value),
    ("f3b1c1b2-4c4f-4f0d-8d2f-4c4f0d8d2f4c", print_to_console),
];

/// `data or input`: Python's truthiness, so an empty or zero `data` passes
/// the input on.
fn store_value(input: &Input, _: &BlockContext) -> BlockResult {
    let data = input.value("data");
    Ok(vec![out("output", if truthy(&data) { data } else { input.value("input") })])
}

/// Echoes the text (and prints nothing: a server has no console to show).
fn print_to_console(input: &Input, _: &BlockContext) -> BlockResult {
    Ok(vec![out("output", input.value("text")), out("status", "printed")])
}

/// Python's `bool(value)`.
pub(crate) fn truthy(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::testing::{expect, yields};

    #[test]
    fn store_value_prefers_data_and_print_echoes() {
        let store = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";
        assert_eq!(yields(store, json!({"input": "Hello, World!"})), expect(json!([["output", "Hello, World!"]])));
        assert_eq!(
            yields(store, json!({"input": "Hello, World!", "data": "Existing Data"})),
            expect(json!([["output", "Existing Data"]]))
        );
        assert_eq!(yields(store, json!({"input": "in", "data": 0})), expect(json!([["output", "in"]])), "0 is falsy");
        let print = yields("f3b1c1b2-4c4f-4f0d-8d2f-4c4f0d8d2f4c", json!({"text": "Hello, World!"}));
        assert_eq!(print, expect(json!([["output", "Hello, World!"], ["status", "printed"]])));
    }
}
