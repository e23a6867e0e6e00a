//! Basic utility blocks (`backend/blocks/basic.py`).

use serde_json::{json, Value};

use super::schema::{any, enumeration, list, string, Schema};
use super::{Block, BlockType, BASIC};

pub(super) fn blocks() -> Vec<Block> {
    vec![store_value(), print_to_console(), note(), universal_type_converter(), reverse_list_order()]
}

fn store_value() -> Block {
    let input = Schema::input()
        .field(
            "input",
            any().desc("Trigger the block to produce the output. The value is only used when `data` is None."),
        )
        .field(
            "data",
            any()
                .desc("The constant data to be retained in the block. This value is passed as `output`.")
                .default(Value::Null),
        );
    Block::new(
        "1ff065e9-88e8-4358-9d82-8dc91f622ba9",
        "StoreValueBlock",
        "A basic block that stores and forwards a value throughout workflows, allowing it to be reused without changes across multiple blocks.",
        &[BASIC],
        input,
        Schema::output().field("output", any().desc("The stored data retained in the block.")),
    )
    .with_static_output()
}

fn print_to_console() -> Block {
    Block::new(
        "f3b1c1b2-4c4f-4f0d-8d2f-4c4f0d8d2f4c",
        "PrintToConsoleBlock",
        "A debugging block that outputs text to the console for monitoring and troubleshooting workflow execution.",
        &[BASIC],
        Schema::input().field("text", any().desc("The data to print to the console.")),
        Schema::output()
            .field("output", any().desc("The data printed to the console."))
            .field("status", string().desc("The status of the print operation.")),
    )
}

fn note() -> Block {
    Block::new(
        "cc10ff7b-7753-4ff2-9af6-9399b1a7eddc",
        "NoteBlock",
        "A visual annotation block that displays a sticky note in the workflow editor for documentation and organization purposes.",
        &[BASIC],
        Schema::input().field("text", string().desc("The text to display in the sticky note.")),
        Schema::output().field("output", string().desc("The text to display in the sticky note.")),
    )
    .with_type(BlockType::Note)
}

fn universal_type_converter() -> Block {
    let input = Schema::input().field("value", any().desc("The value to convert to a universal type.")).field(
        "type",
        enumeration("TypeOptions", &["string", "number", "boolean", "list", "dictionary"])
            .desc("The type to convert the value to."),
    );
    Block::new(
        "95d1b990-ce13-4d88-9737-ba5c2070c97b",
        "UniversalTypeConverterBlock",
        "This block is used to convert a value to a universal type.",
        &[BASIC],
        input,
        Schema::output().field("value", any().desc("The converted value.")),
    )
}

fn reverse_list_order() -> Block {
    Block::new(
        "422cb708-3109-4277-bfe3-bc2ae5812777",
        "ReverseListOrderBlock",
        "Reverses the order of elements in a list",
        &[BASIC],
        Schema::input().field("input_list", list(json!({})).desc("The list to reverse")),
        Schema::output().field("reversed_list", list(json!({})).desc("The list in reversed order")),
    )
}
