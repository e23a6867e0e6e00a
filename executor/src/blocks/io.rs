//! Graph inputs and outputs, and the note (`backend/blocks/io.py`, `basic.py`).

use serde_json::{json, Map, Value};

use super::{out, BlockContext, BlockResult, Input, Run};
use crate::template;

pub(super) const RUNNERS: &[(&str, Run)] = &[
    ("c0a8e994-ebf1-4a9c-a4d8-89d09c86741b", agent_input),
    ("7fcd3bcb-8e1b-4e69-903d-32d3d4a92158", agent_input),
    ("90a56ffb-7024-4b2b-ab50-e26c5e5ab8ba", agent_input),
    ("96dae2bb-97a2-41c2-bd2f-13a3b5a8ea98", agent_input),
    ("7e198b09-4994-47db-8b4d-952d98241817", agent_input),
    ("2a1c757e-86cf-4c7e-aacf-060dc382e434", agent_input),
    ("655d6fdf-a334-421c-b733-520549c07cd1", agent_input),
    ("cbf36ab5-df4a-43b6-8a7f-f7ed8652116e", toggle_input),
    ("5603b273-f41e-4020-af7d-fbc9c6a8d928", table_input),
    ("363ae599-353e-4804-937e-b2ee3cef3da4", agent_output),
    ("cc10ff7b-7753-4ff2-9af6-9399b1a7eddc", note),
];

/// Yields the value it was given, if any.
fn agent_input(input: &Input, _: &BlockContext) -> BlockResult {
    Ok(input.get("value").map(|v| out("result", v.clone())).into_iter().collect())
}

/// A toggle is false until set, so it always yields.
fn toggle_input(input: &Input, _: &BlockContext) -> BlockResult {
    Ok(vec![out("result", input.flag("value", false))])
}

/// A table is empty until filled, so it always yields.
fn table_input(input: &Input, _: &BlockContext) -> BlockResult {
    Ok(vec![out("result", input.get("value").cloned().unwrap_or_else(|| json!([])))])
}

/// With a `format`, the template rendered with the output's name bound to
/// its value (a template error becomes the text `Error: …, <value>`);
/// without, the value and the name.
fn agent_output(input: &Input, _: &BlockContext) -> BlockResult {
    let value = input.value("value");
    let name = input.text("name", "");
    let format = input.text("format", "");
    if format.is_empty() {
        return Ok(vec![out("output", value), out("name", name)]);
    }
    let mut values = Map::new();
    values.insert(name, value.clone());
    let rendered = template::render(&format, &values, input.flag("escape_html", false))
        .unwrap_or_else(|e| format!("Error: {e}, {}", template::py_str(&minijinja::Value::from_serialize(&value))));
    Ok(vec![out("output", Value::String(rendered))])
}

/// A note only echoes its text (graphs never run it).
fn note(input: &Input, _: &BlockContext) -> BlockResult {
    Ok(vec![out("output", input.text("text", ""))])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::testing::{expect, yields};

    #[test]
    fn inputs_yield_their_value_when_they_have_one() {
        let input = "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b";
        assert_eq!(
            yields(input, json!({"value": "Hello, World!", "name": "input_1"})),
            expect(json!([["result", "Hello, World!"]]))
        );
        assert_eq!(yields(input, json!({"value": 42, "name": "input_2"})), expect(json!([["result", 42]])));
        assert!(yields(input, json!({"name": "input_3", "value": null})).is_empty(), "no value, nothing yielded");
        assert_eq!(
            yields("cbf36ab5-df4a-43b6-8a7f-f7ed8652116e", json!({"name": "t"})),
            expect(json!([["result", false]]))
        );
        assert_eq!(
            yields("5603b273-f41e-4020-af7d-fbc9c6a8d928", json!({"name": "t"})),
            expect(json!([["result", []]]))
        );
    }

    #[test]
    fn the_output_formats_or_passes_its_value_and_name() {
        let output = "363ae599-353e-4804-937e-b2ee3cef3da4";
        let formatted =
            yields(output, json!({"value": "Hello, World!", "name": "output_1", "format": "{{ output_1 }}!!"}));
        assert_eq!(formatted, expect(json!([["output", "Hello, World!!!"]])));
        assert_eq!(
            yields(output, json!({"value": "42", "name": "output_2", "format": "{{ output_2 }}"})),
            expect(json!([["output", "42"]]))
        );
        assert_eq!(yields(output, json!({"value": 5, "name": "n"})), expect(json!([["output", 5], ["name", "n"]])));
        let broken = yields(output, json!({"value": "v", "name": "n", "format": "{{ n"}));
        assert!(
            broken[0].1.as_str().unwrap().starts_with("Error: ") && broken[0].1.as_str().unwrap().ends_with(", v"),
            "{broken:?}"
        );
    }
}
