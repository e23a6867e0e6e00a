//! Graph interface blocks (`backend/blocks/io.py`): the generic and typed
//! agent inputs, and the agent output.

use serde_json::{json, Value};

use super::schema::{any, boolean, list, nullable, string, typed, Field, Schema};
use super::{Block, BlockType, BASIC, INPUT, OUTPUT};

pub(super) fn blocks() -> Vec<Block> {
    vec![
        Block::new(
            "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b",
            "AgentInputBlock",
            "A block that accepts and processes user input values within a workflow, supporting various input types and validation.",
            &[INPUT, BASIC],
            agent_input(any().desc("The value to be passed as input.").default(Value::Null)),
            Schema::output().field("result", any().desc("The value passed as input.")),
        )
        .with_type(BlockType::Input)
        .with_static_output(),
        typed_input(
            "7fcd3bcb-8e1b-4e69-903d-32d3d4a92158",
            "AgentShortTextInputBlock",
            "Block for short text input (single-line).",
            default_value(json!({"type": "string", "format": "short-text"}), "Short text input."),
            string().desc("Short text result."),
        ),
        typed_input(
            "90a56ffb-7024-4b2b-ab50-e26c5e5ab8ba",
            "AgentLongTextInputBlock",
            "Block for long text input (multi-line).",
            default_value(
                json!({"type": "string", "format": "long-text"}),
                "Long text input (potentially multi-line).",
            ),
            string().desc("Long text result."),
        ),
        typed_input(
            "96dae2bb-97a2-41c2-bd2f-13a3b5a8ea98",
            "AgentNumberInputBlock",
            "Block for number input.",
            default_value(json!({"type": "integer"}), "Number input."),
            typed(json!({"type": "integer"})).desc("Number result."),
        ),
        typed_input(
            "7e198b09-4994-47db-8b4d-952d98241817",
            "AgentDateInputBlock",
            "Block for date input.",
            default_value(json!({"type": "string", "format": "date"}), "Date input (YYYY-MM-DD)."),
            typed(json!({"type": "string", "format": "date"})).desc("Date result."),
        ),
        typed_input(
            "2a1c757e-86cf-4c7e-aacf-060dc382e434",
            "AgentTimeInputBlock",
            "Block for time input.",
            default_value(json!({"type": "string", "format": "time"}), "Time input (HH:MM:SS)."),
            typed(json!({"type": "string", "format": "time"})).desc("Time result."),
        ),
        dropdown_input(),
        typed_input(
            "cbf36ab5-df4a-43b6-8a7f-f7ed8652116e",
            "AgentToggleInputBlock",
            "Block for boolean toggle input.",
            boolean()
                .desc("Boolean toggle input.")
                .default(json!(false))
                .advanced(false)
                .title("Default Value"),
            boolean().desc("Boolean toggle result."),
        ),
        table_input(),
        agent_output(),
    ]
}

/// The pins every agent input shares; typed variants swap in their own
/// `value` (and may add pins), like the pydantic subclasses do.
fn agent_input(value: Field) -> Schema {
    Schema::input()
        .field("name", string().desc("The name of the input."))
        .field("value", value)
        .field(
            "title",
            nullable(json!({"type": "string"})).desc("The title of the input.").default(Value::Null).advanced(true),
        )
        .field(
            "description",
            nullable(json!({"type": "string"}))
                .desc("The description of the input.")
                .default(Value::Null)
                .advanced(true),
        )
        .field(
            "placeholder_values",
            list(json!({})).desc("The placeholder values to be passed as input.").factory().advanced(true).hidden(),
        )
        .field(
            "advanced",
            boolean()
                .desc("Whether to show the input in the advanced section, if the field is not required.")
                .default(json!(false))
                .advanced(true),
        )
        .field(
            "secret",
            boolean().desc("Whether the input should be treated as a secret.").default(json!(false)).advanced(true),
        )
}

/// The optional, non-advanced `value` pin the typed inputs declare.
fn default_value(schema: Value, description: &'static str) -> Field {
    nullable(schema).desc(description).default(Value::Null).advanced(false).title("Default Value")
}

fn typed_input(id: &'static str, name: &'static str, description: &'static str, value: Field, result: Field) -> Block {
    typed_input_with(id, name, description, agent_input(value), result)
}

fn typed_input_with(
    id: &'static str,
    name: &'static str,
    description: &'static str,
    input: Schema,
    result: Field,
) -> Block {
    Block::new(id, name, description, &[INPUT, BASIC], input, Schema::output().field("result", result))
        .with_type(BlockType::Input)
        .with_static_output()
}

fn dropdown_input() -> Block {
    let input = agent_input(default_value(json!({"type": "string"}), "Text selected from a dropdown.")).field(
        "placeholder_values",
        list(json!({})).desc("Possible values for the dropdown.").factory().advanced(false).title("Dropdown Options"),
    );
    typed_input_with(
        "655d6fdf-a334-421c-b733-520549c07cd1",
        "AgentDropdownInputBlock",
        "Block for dropdown text selection.",
        input,
        string().desc("Selected dropdown value."),
    )
}

fn table_input() -> Block {
    let rows = json!({"type": "array", "items": {"type": "object", "additionalProperties": true}});
    let input = agent_input(default_value(rows.clone(), "The table data as a list of dictionaries.")).field(
        "column_headers",
        list(json!({"type": "string"}))
            .desc("Column headers for the table.")
            .factory()
            .advanced(false)
            .title("Column Headers"),
    );
    typed_input_with(
        "5603b273-f41e-4020-af7d-fbc9c6a8d928",
        "AgentTableInputBlock",
        "Block for table data input with customizable headers.",
        input,
        typed(rows).desc("The table data as a list of dictionaries with headers as keys."),
    )
}

fn agent_output() -> Block {
    let input = Schema::input()
        .field("value", any().desc("The value to be recorded as output.").default(Value::Null).advanced(false))
        .field("name", string().desc("The name of the output."))
        .field(
            "title",
            nullable(json!({"type": "string"})).desc("The title of the output.").default(Value::Null).advanced(true),
        )
        .field(
            "description",
            nullable(json!({"type": "string"}))
                .desc("The description of the output.")
                .default(Value::Null)
                .advanced(true),
        )
        .field(
            "format",
            string()
                .desc("The format string to be used to format the recorded_value. Use Jinja2 syntax.")
                .default(json!(""))
                .advanced(true),
        )
        .field(
            "escape_html",
            boolean()
                .desc(
                    "Whether to escape special characters in the inserted values to be HTML-safe. \
                     Enable for HTML output, disable for plain text.",
                )
                .default(json!(false))
                .advanced(true),
        )
        .field(
            "advanced",
            boolean().desc("Whether to treat the output as advanced.").default(json!(false)).advanced(true),
        )
        .field(
            "secret",
            boolean().desc("Whether the output should be treated as a secret.").default(json!(false)).advanced(true),
        );
    let output = Schema::output()
        .field("output", any().desc("The value recorded as output."))
        .field("name", any().desc("The name of the value recorded as output."));
    Block::new(
        "363ae599-353e-4804-937e-b2ee3cef3da4",
        "AgentOutputBlock",
        "A block that records and formats workflow results for display to users, with optional Jinja2 template formatting support.",
        &[OUTPUT, BASIC],
        input,
        output,
    )
    .with_type(BlockType::Output)
    .with_static_output()
}
