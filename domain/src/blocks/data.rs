//! Structured-data blocks: dictionaries and lists (`data_manipulation.py`),
//! per-user key-value persistence (`persistence.py`) and the XML parser.

use serde_json::{json, Value};

use super::schema::{
    any, any_of, boolean, dict, integer, integer_type, list, literal, nullable, string, string_type, Field, Schema,
};
use super::{Block, BASIC, DATA};

pub(super) fn blocks() -> Vec<Block> {
    vec![
        create_dictionary(),
        add_to_dictionary(),
        find_in_dictionary(),
        create_list(),
        add_to_list(),
        find_in_list(),
        get_list_item(),
        concatenate_lists(),
        persist_information(),
        retrieve_information(),
        xml_parser(),
    ]
}

fn create_dictionary() -> Block {
    let input = Schema::input().field(
        "values",
        dict().desc("Key-value pairs to create the dictionary with").placeholder("e.g., {'name': 'Alice', 'age': 25}"),
    );
    let output = Schema::output()
        .field("dictionary", dict().desc("The created dictionary containing the specified key-value pairs"))
        .field("error", string().desc("Error message if dictionary creation failed"));
    Block::new(
        "b924ddf4-de4f-4b56-9a85-358930dcbc91",
        "CreateDictionaryBlock",
        "Creates a dictionary with the specified key-value pairs. Use this when you know all the values you want to add upfront.",
        &[DATA],
        input,
        output,
    )
}

fn add_to_dictionary() -> Block {
    let input = Schema::input()
        .field(
            "dictionary",
            dict()
                .desc("The dictionary to add the entry to. If not provided, a new dictionary will be created.")
                .factory()
                .advanced(false),
        )
        .field(
            "key",
            string().desc("The key for the new entry.").default(json!("")).placeholder("new_key").advanced(false),
        )
        .field(
            "value",
            any().desc("The value for the new entry.").default(Value::Null).placeholder("new_value").advanced(false),
        )
        .field(
            "entries",
            dict()
                .desc(
                    "The entries to add to the dictionary. This is the batch version of the `key` \
                     and `value` fields.",
                )
                .factory()
                .advanced(true),
        );
    Block::new(
        "31d1064e-7446-4693-a7d4-65e5ca1180d1",
        "AddToDictionaryBlock",
        "Adds a new key-value pair to a dictionary. If no dictionary is provided, a new one is created.",
        &[BASIC],
        input,
        Schema::output().field("updated_dictionary", dict().desc("The dictionary with the new entry added.")),
    )
}

fn find_in_dictionary() -> Block {
    let input = Schema::input()
        .field("input", any().desc("Dictionary to lookup from"))
        .field("key", any_of(json!([string_type(), integer_type()])).desc("Key to lookup in the dictionary"));
    let output = Schema::output()
        .field("output", any().desc("Value found for the given key"))
        .field("missing", any().desc("Value of the input that missing the key"));
    Block::new(
        "0e50422c-6dee-4145-83d6-3a5a392f65de",
        "FindInDictionaryBlock",
        "A block that looks up a value in a dictionary, list, or object by key or index and returns the corresponding value.",
        &[BASIC],
        input,
        output,
    )
}

fn create_list() -> Block {
    let input = Schema::input()
        .field(
            "values",
            list(json!({}))
                .desc("A list of values to be combined into a new list.")
                .placeholder("e.g., ['Alice', 25, True]"),
        )
        .field(
            "max_size",
            nullable(integer_type())
                .desc("Maximum size of the list. If provided, the list will be yielded in chunks of this size.")
                .default(Value::Null)
                .advanced(true),
        )
        .field(
            "max_tokens",
            nullable(integer_type())
                .desc(
                    "Maximum tokens for the list. If provided, the list will be yielded in chunks \
                     that fit within this token limit.",
                )
                .default(Value::Null)
                .advanced(true),
        );
    Block::new(
        "a912d5c7-6e00-4542-b2a9-8034136930e4",
        "CreateListBlock",
        "Creates a list with the specified values. Use this when you know all the values you want to add upfront. This block can also yield the list in batches based on a maximum size or token limit.",
        &[DATA],
        input,
        Schema::output().field(
            "list",
            list(json!({})).desc("The created list containing the specified values."),
        ),
    )
}

fn add_to_list() -> Block {
    let input = Schema::input()
        .field(
            "list",
            list(json!({}))
                .desc("The list to add the entry to. If not provided, a new list will be created.")
                .factory()
                .advanced(false),
        )
        .field(
            "entry",
            any()
                .desc("The entry to add to the list. Can be of any type (string, int, dict, etc.).")
                .default(Value::Null)
                .advanced(false),
        )
        .field(
            "entries",
            list(json!({}))
                .desc("The entries to add to the list. This is the batch version of the `entry` field.")
                .factory()
                .advanced(true),
        )
        .field(
            "position",
            nullable(integer_type())
                .desc(
                    "The position to insert the new entry. If not provided, the entry will be \
                     appended to the end of the list.",
                )
                .default(Value::Null),
        );
    Block::new(
        "aeb08fc1-2fc1-4141-bc8e-f758f183a822",
        "AddToListBlock",
        "Adds a new entry to a list. The entry can be of any type. If no list is provided, a new one is created.",
        &[BASIC],
        input,
        Schema::output().field("updated_list", list(json!({})).desc("The list with the new entry added.")),
    )
}

fn find_in_list() -> Block {
    let input = Schema::input()
        .field("list", list(json!({})).desc("The list to search in."))
        .field("value", any().desc("The value to search for."));
    let output = Schema::output()
        .field("index", integer().desc("The index of the value in the list."))
        .field("found", boolean().desc("Whether the value was found in the list."))
        .field("not_found_value", any().desc("The value that was not found in the list."));
    Block::new(
        "5e2c6d0a-1e37-489f-b1d0-8e1812b23333",
        "FindInListBlock",
        "Finds the index of the value in the list.",
        &[BASIC],
        input,
        output,
    )
}

fn get_list_item() -> Block {
    let input = Schema::input()
        .field("list", list(json!({})).desc("The list to get the item from."))
        .field("index", integer().desc("The 0-based index of the item (supports negative indices)."));
    Block::new(
        "262ca24c-1025-43cf-a578-534e23234e97",
        "GetListItemBlock",
        "Returns the element at the given index.",
        &[BASIC],
        input,
        Schema::output().field("item", any().desc("The item at the specified index.")),
    )
}

fn concatenate_lists() -> Block {
    let input = Schema::input().field(
        "lists",
        list(json!({"type": "array", "items": {}}))
            .desc(
                "A list of lists to concatenate together. All lists will be combined in order into \
                 a single list.",
            )
            .placeholder("e.g., [[1, 2], [3, 4], [5, 6]]"),
    );
    let output = Schema::output()
        .field(
            "concatenated_list",
            list(json!({})).desc("The concatenated list containing all elements from all input lists in order."),
        )
        .field("error", string().desc("Error message if concatenation failed due to invalid input types."));
    Block::new(
        "3cf9298b-5817-4141-9d80-7c2cc5199c8e",
        "ConcatenateListsBlock",
        "Concatenates multiple lists into a single list. All elements from all input lists are combined in order.",
        &[BASIC],
        input,
        output,
    )
}

/// The `scope` pin both persistence blocks share.
fn storage_scope() -> Field {
    literal(&["within_agent", "across_agents"])
        .desc(
            "Scope of persistence: within_agent (shared across all runs of this agent) or \
             across_agents (shared across all agents for this user)",
        )
        .default(json!("within_agent"))
}

fn persist_information() -> Block {
    let input = Schema::input()
        .field("key", string().desc("Key to store the information under"))
        .field("value", any().desc("Value to store"))
        .field("scope", storage_scope());
    Block::new(
        "1d055e55-a2b9-4547-8311-907d05b0304d",
        "PersistInformationBlock",
        "Persist key-value information for the current user",
        &[DATA],
        input,
        Schema::output().field("value", any().desc("Value that was stored")),
    )
}

fn retrieve_information() -> Block {
    let input = Schema::input()
        .field("key", string().desc("Key to retrieve the information for"))
        .field("scope", storage_scope())
        .field("default_value", any().desc("Default value to return if key is not found").default(Value::Null));
    Block::new(
        "d8710fc9-6e29-481e-a7d5-165eb16f8471",
        "RetrieveInformationBlock",
        "Retrieve key-value information for the current user",
        &[DATA],
        input,
        Schema::output().field("value", any().desc("Retrieved value or default value")),
    )
    .with_static_output()
}

fn xml_parser() -> Block {
    let output = Schema::output()
        .field("parsed_xml", dict().desc("output parsed xml to dict"))
        .field("error", string().desc("Error in parsing"));
    // AutoGPT declares no category for this block.
    Block::new(
        "286380af-9529-4b55-8be0-1d7c854abdb5",
        "XMLParserBlock",
        "Parses XML using gravitasml to tokenize and coverts it to dict",
        &[],
        Schema::input().field("input_xml", string().desc("input xml to be parsed")),
        output,
    )
}
