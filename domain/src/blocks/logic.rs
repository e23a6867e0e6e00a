//! Flow-control blocks: maths (`maths.py`), branching (`branching.py`) and
//! the loop primitive (`iteration.py`).

use serde_json::{json, Value};

use super::schema::{any, boolean, dict, enumeration, integer, list, number, string, Schema};
use super::{Block, LOGIC};

pub(super) fn blocks() -> Vec<Block> {
    vec![calculator(), count_items(), condition(), if_input_matches(), step_through_items()]
}

fn calculator() -> Block {
    let input = Schema::input()
        .field(
            "operation",
            enumeration("Operation", &["Add", "Subtract", "Multiply", "Divide", "Power"])
                .desc("Choose the math operation you want to perform")
                .placeholder("Select an operation"),
        )
        .field("a", number().desc("Enter the first number (A)").placeholder("For example: 10"))
        .field("b", number().desc("Enter the second number (B)").placeholder("For example: 5"))
        .field(
            "round_result",
            boolean().desc("Do you want to round the result to a whole number?").default(json!(false)),
        );
    Block::new(
        "b1ab9b19-67a6-406d-abf5-2dba76d00c79",
        "CalculatorBlock",
        "Performs a mathematical operation on two numbers.",
        &[LOGIC],
        input,
        Schema::output().field("result", number().desc("The result of your calculation")),
    )
}

fn count_items() -> Block {
    let input = Schema::input().field(
        "collection",
        any()
            .desc(
                "Enter the collection you want to count. This can be a list, dictionary, string, \
                 or any other iterable.",
            )
            .placeholder("For example: [1, 2, 3] or {'a': 1, 'b': 2} or 'hello'"),
    );
    Block::new(
        "3c9c2f42-b0c3-435f-ba35-05f7a25c772a",
        "CountItemsBlock",
        "Counts the number of items in a collection.",
        &[LOGIC],
        input,
        Schema::output().field("count", integer().desc("The number of items in the collection")),
    )
}

/// The three outputs both branching blocks share.
fn branch_output() -> Schema {
    Schema::output()
        .field("result", boolean().desc("The result of the condition evaluation (True or False)"))
        .field("yes_output", any().desc("The output value if the condition is true"))
        .field("no_output", any().desc("The output value if the condition is false"))
}

fn condition() -> Block {
    let input = Schema::input()
        .field(
            "value1",
            any().desc("Enter the first value for comparison").placeholder("For example: 10 or 'hello' or True"),
        )
        .field(
            "operator",
            enumeration("ComparisonOperator", &["==", "!=", ">", "<", ">=", "<="])
                .desc("Choose the comparison operator")
                .placeholder("Select an operator"),
        )
        .field(
            "value2",
            any().desc("Enter the second value for comparison").placeholder("For example: 20 or 'world' or False"),
        )
        .field(
            "yes_value",
            any()
                .desc("(Optional) Value to output if the condition is true. If not provided, value1 will be used.")
                .placeholder("Leave empty to use value1, or enter a specific value")
                .default(Value::Null),
        )
        .field(
            "no_value",
            any()
                .desc("(Optional) Value to output if the condition is false. If not provided, value1 will be used.")
                .placeholder("Leave empty to use value1, or enter a specific value")
                .default(Value::Null),
        );
    Block::new(
        "715696a0-e1da-45c8-b209-c2fa9c3b0be6",
        "ConditionBlock",
        "Handles conditional logic based on comparison operators",
        &[LOGIC],
        input,
        branch_output(),
    )
}

fn if_input_matches() -> Block {
    let input = Schema::input()
        .field("input", any().desc("The input to match against").placeholder("For example: 10 or 'hello' or True"))
        .field(
            "value",
            any().desc("The value to output if the input matches").placeholder("For example: 'Greater' or 20 or False"),
        )
        .field(
            "yes_value",
            any()
                .desc("The value to output if the input matches")
                .placeholder("For example: 'Greater' or 20 or False")
                .default(Value::Null),
        )
        .field(
            "no_value",
            any()
                .desc("The value to output if the input does not match")
                .placeholder("For example: 'Greater' or 20 or False")
                .default(Value::Null),
        );
    Block::new(
        "6dbbc4b3-ca6c-42b6-b508-da52d23e13f2",
        "IfInputMatchesBlock",
        "Handles conditional logic based on comparison operators",
        &[LOGIC],
        input,
        branch_output(),
    )
}

fn step_through_items() -> Block {
    const DESC: &str = "The list or dictionary of items to iterate over";
    const HINT: &str = "[1, 2, 3, 4, 5] or {'key1': 'value1', 'key2': 'value2'}";
    let input = Schema::input()
        .field("items", list(json!({})).desc(DESC).placeholder(HINT).factory().advanced(false))
        .field("items_object", dict().desc(DESC).placeholder(HINT).factory().advanced(false))
        .field("items_str", string().desc(DESC).placeholder(HINT).default(json!("")).advanced(false));
    let output = Schema::output()
        .field("item", any().desc("The current item in the iteration"))
        .field("key", any().desc("The key or index of the current item in the iteration"));
    Block::new(
        "f66a3543-28d3-4ab5-8945-9b336371e2ce",
        "StepThroughItemsBlock",
        "Iterates over a list or dictionary and outputs each item.",
        &[LOGIC],
        input,
        output,
    )
}
