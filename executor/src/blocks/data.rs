//! Dictionaries, lists, iteration and conversion (`data_manipulation.py`,
//! `iteration.py`, `basic.py`, `maths.py`).

use serde_json::{json, Value};

use super::convert::{convert, py_eq, Target};
use super::{out, within_items, BlockContext, BlockResult, Input, Run, MAX_ITEMS};

pub(super) const RUNNERS: &[(&str, Run)] = &[
    ("b924ddf4-de4f-4b56-9a85-358930dcbc91", create_dictionary),
    ("31d1064e-7446-4693-a7d4-65e5ca1180d1", add_to_dictionary),
    ("0e50422c-6dee-4145-83d6-3a5a392f65de", find_in_dictionary),
    ("a912d5c7-6e00-4542-b2a9-8034136930e4", create_list),
    ("aeb08fc1-2fc1-4141-bc8e-f758f183a822", add_to_list),
    ("262ca24c-1025-43cf-a578-534e23234e97", get_list_item),
    ("5e2c6d0a-1e37-489f-b1d0-8e1812b23333", find_in_list),
    ("3cf9298b-5817-4141-9d80-7c2cc5199c8e", concatenate_lists),
    ("f66a3543-28d3-4ab5-8945-9b336371e2ce", step_through_items),
    ("422cb708-3109-4277-bfe3-bc2ae5812777", reverse_list_order),
    ("3c9c2f42-b0c3-435f-ba35-05f7a25c772a", count_items),
    ("95d1b990-ce13-4d88-9737-ba5c2070c97b", universal_type_converter),
    ("1d055e55-a2b9-4547-8311-907d05b0304d", persist_information),
    ("d8710fc9-6e29-481e-a7d5-165eb16f8471", retrieve_information),
];

/// The storage key of the block's `key` in its `scope`.
fn storage_key(input: &Input, ctx: &BlockContext) -> String {
    domain::memory::storage_key(&input.text("scope", "within_agent"), &input.text("key", ""), ctx.graph_id)
}

/// Store the value for the user (the worker does the storing).
fn persist_information(input: &Input, ctx: &BlockContext) -> BlockResult {
    Ok(vec![super::Step::Persist { storage_key: storage_key(input, ctx), value: input.value("value") }])
}

/// What is stored under the key for the user, else the default.
fn retrieve_information(input: &Input, ctx: &BlockContext) -> BlockResult {
    Ok(vec![super::Step::Recall { storage_key: storage_key(input, ctx), default: input.value("default_value") }])
}

fn create_dictionary(input: &Input, _: &BlockContext) -> BlockResult {
    Ok(vec![out("dictionary", Value::Object(input.object("values")))])
}

/// `key`/`value` (when both are set), then every entry, over a copy.
fn add_to_dictionary(input: &Input, _: &BlockContext) -> BlockResult {
    let mut dictionary = input.object("dictionary");
    let key = input.text("key", "");
    if let (Some(value), false) = (input.get("value"), key.is_empty()) {
        dictionary.insert(key, value.clone());
    }
    dictionary.extend(input.object("entries"));
    within_items("the dictionary", dictionary.len())?;
    Ok(vec![out("updated_dictionary", Value::Object(dictionary))])
}

/// A key of a dictionary, an index of a list, or a key plucked from a list
/// of dictionaries (text is read as JSON first); `missing` with the input
/// otherwise.
fn find_in_dictionary(input: &Input, _: &BlockContext) -> BlockResult {
    let original = input.value("input");
    let object = match &original {
        Value::String(s) => serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}"))?,
        other => other.clone(),
    };
    let key = input.value("key");
    let found = match (&object, &key) {
        (Value::Object(map), Value::String(k)) => map.get(k).cloned(),
        (Value::Array(items), Value::Number(n)) => n.as_u64().and_then(|i| items.get(i as usize)).cloned(),
        (Value::Array(items), Value::String(k)) => match items.first() {
            None => Some(json!([])),
            Some(Value::Object(first)) if first.contains_key(k) => {
                Some(Value::Array(items.iter().filter_map(|i| i.get(k).cloned()).collect()))
            }
            Some(_) => {
                Some(Value::Array(items.iter().filter_map(|i| i.as_object().and_then(|o| o.get(k)).cloned()).collect()))
            }
        },
        _ => None,
    };
    Ok(vec![match found {
        Some(value) => out("output", value),
        None => out("missing", original),
    }])
}

/// The values as one list, or in chunks of at most `max_size` items (or of
/// about `max_tokens` tokens, counted as four characters each).
fn create_list(input: &Input, _: &BlockContext) -> BlockResult {
    let values = input.list("values");
    within_items("the list", values.len())?;
    let max_size = input.get("max_size").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max_tokens = input.get("max_tokens").and_then(Value::as_u64).unwrap_or(0) as usize;
    let tokens = |v: &Value| v.as_str().map_or_else(|| v.to_string().len(), str::len).div_ceil(4);
    let mut steps = Vec::new();
    let (mut chunk, mut chunk_tokens) = (Vec::new(), 0);
    for value in values.iter() {
        let t = if max_tokens > 0 { tokens(value) } else { 0 };
        let over = (max_tokens > 0 && chunk_tokens + t > max_tokens) || (max_size > 0 && chunk.len() + 1 > max_size);
        if over && !chunk.is_empty() {
            steps.push(out("list", std::mem::take(&mut chunk)));
            chunk_tokens = 0;
        }
        chunk.push(value.clone());
        chunk_tokens += t;
    }
    if !chunk.is_empty() || values.is_empty() {
        steps.push(out("list", chunk));
    }
    Ok(steps)
}

/// The entries, then the entry, at `position` (or the end).
fn add_to_list(input: &Input, _: &BlockContext) -> BlockResult {
    let mut added = input.list("entries");
    if let Some(entry) = input.get("entry") {
        added.push(entry.clone());
    }
    let mut list = input.list("list");
    within_items("the list", list.len().saturating_add(added.len()))?;
    let at = match input.get("position").and_then(Value::as_i64) {
        Some(p) if p < 0 => list.len().saturating_sub(p.unsigned_abs() as usize),
        Some(p) => (p as usize).min(list.len()),
        None => list.len(),
    };
    list.splice(at..at, added);
    Ok(vec![out("updated_list", list)])
}

/// A list item by index, from the end when negative.
fn get_list_item(input: &Input, _: &BlockContext) -> BlockResult {
    let list = input.list("list");
    let index = input.get("index").and_then(Value::as_i64).unwrap_or(0);
    let at = if index < 0 { list.len().checked_sub(index.unsigned_abs() as usize) } else { Some(index as usize) };
    match at.and_then(|i| list.get(i)) {
        Some(item) => Ok(vec![out("item", item.clone())]),
        None => Ok(vec![out("error", "Index out of range")]),
    }
}

fn find_in_list(input: &Input, _: &BlockContext) -> BlockResult {
    let value = input.value("value");
    Ok(match input.list("list").iter().position(|v| py_eq(v, &value)) {
        Some(i) => vec![out("index", i), out("found", true)],
        None => vec![out("found", false), out("not_found_value", value)],
    })
}

/// The lists joined (null ones skipped), then nulls removed and duplicates
/// dropped when asked; the list, then its length.
fn concatenate_lists(input: &Input, _: &BlockContext) -> BlockResult {
    let mut joined = Vec::new();
    for (i, list) in input.list("lists").into_iter().enumerate() {
        match list {
            Value::Null => {}
            Value::Array(items) => {
                within_items("the concatenated list", joined.len().saturating_add(items.len()))?;
                joined.extend(items);
            }
            other => {
                let kind = match other {
                    Value::String(_) => "str",
                    Value::Number(n) if n.is_f64() => "float",
                    Value::Number(_) => "int",
                    Value::Bool(_) => "bool",
                    _ => "dict",
                };
                return Ok(vec![out(
                    "error",
                    format!(
                        "Invalid input at index {i}: expected a list, got {kind}. All items in 'lists' must be lists (e.g., [[1, 2], [3, 4]])."
                    ),
                )]);
            }
        }
    }
    if input.flag("remove_none", false) {
        joined.retain(|v| !v.is_null());
    }
    if input.flag("deduplicate", false) {
        let mut unique: Vec<Value> = Vec::with_capacity(joined.len());
        for v in joined {
            // True and 1 stay apart here, as AutoGPT tags booleans.
            if !unique.iter().any(|u| u == &v || (u.is_number() && v.is_number() && py_eq(u, &v))) {
                unique.push(v);
            }
        }
        joined = unique;
    }
    let length = joined.len();
    Ok(vec![out("concatenated_list", joined), out("length", length)])
}

/// Every element of `items`, `items_object` and `items_str` (JSON), in that
/// order: the item, then its index or key. The loop primitive.
fn step_through_items(input: &Input, _: &BlockContext) -> BlockResult {
    let mut steps = Vec::new();
    let sources = [input.value("items"), input.value("items_object"), input.value("items_str")];
    for source in sources {
        let items = match source {
            Value::String(s) if !s.is_empty() => serde_json::from_str(&s).map_err(|e| format!("invalid JSON: {e}"))?,
            other => other,
        };
        match items {
            Value::Array(list) if !list.is_empty() => {
                if list.len() > MAX_ITEMS {
                    return Err(format!("Too many items: {} (max {MAX_ITEMS})", list.len()));
                }
                for (i, item) in list.into_iter().enumerate() {
                    steps.push(out("item", item));
                    steps.push(out("key", i));
                }
            }
            Value::Object(map) if !map.is_empty() => {
                if map.len() > MAX_ITEMS {
                    return Err(format!("Too many items: {} (max {MAX_ITEMS})", map.len()));
                }
                for (k, v) in map {
                    steps.push(out("item", v));
                    steps.push(out("key", k));
                }
            }
            _ => {}
        }
    }
    Ok(steps)
}

fn reverse_list_order(input: &Input, _: &BlockContext) -> BlockResult {
    let mut list = input.list("input_list");
    list.reverse();
    Ok(vec![out("reversed_list", list)])
}

/// Length of a text, list or dictionary; -1 for anything else.
fn count_items(input: &Input, _: &BlockContext) -> BlockResult {
    let count: i64 = match input.value("collection") {
        Value::String(s) => s.chars().count() as i64,
        Value::Array(a) => a.len() as i64,
        Value::Object(o) => o.len() as i64,
        _ => -1,
    };
    Ok(vec![out("count", count)])
}

fn universal_type_converter(input: &Input, _: &BlockContext) -> BlockResult {
    let target = match input.text("type", "string").as_str() {
        "string" => Target::Text,
        "number" => Target::Number,
        "boolean" => Target::Boolean,
        "list" => Target::List,
        "dictionary" => Target::Dictionary,
        other => return Ok(vec![out("error", format!("Failed to convert value: unknown type {other}"))]),
    };
    Ok(vec![out("value", convert(&input.value("value"), target))])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::testing::{expect, yields};

    fn check(block: &str, cases: &[(serde_json::Value, serde_json::Value)]) {
        for (input, output) in cases {
            assert_eq!(yields(block, input.clone()), expect(output.clone()), "{block} {input}");
        }
    }

    #[test]
    fn dictionary_blocks() {
        check(
            "b924ddf4-de4f-4b56-9a85-358930dcbc91",
            &[(
                json!({"values": {"name": "Alice", "age": 25, "city": "New York"}}),
                json!([["dictionary", {"name": "Alice", "age": 25, "city": "New York"}]]),
            )],
        );
        check(
            "31d1064e-7446-4693-a7d4-65e5ca1180d1",
            &[
                (
                    json!({"dictionary": {"existing_key": "existing_value"}, "key": "new_key", "value": "new_value"}),
                    json!([["updated_dictionary", {"existing_key": "existing_value", "new_key": "new_value"}]]),
                ),
                (
                    json!({"key": "first_key", "value": "first_value"}),
                    json!([["updated_dictionary", {"first_key": "first_value"}]]),
                ),
                (
                    json!({"dictionary": {"existing_key": "existing_value"}, "entries": {"new_key": "new_value", "first_key": "first_value"}}),
                    json!([["updated_dictionary", {"existing_key": "existing_value", "new_key": "new_value", "first_key": "first_value"}]]),
                ),
            ],
        );
        check(
            "0e50422c-6dee-4145-83d6-3a5a392f65de",
            &[
                (json!({"input": {"apple": 1, "banana": 2, "cherry": 3}, "key": "banana"}), json!([["output", 2]])),
                (
                    json!({"input": {"x": 10, "y": 20, "z": 30}, "key": "w"}),
                    json!([["missing", {"x": 10, "y": 20, "z": 30}]]),
                ),
                (json!({"input": [1, 2, 3], "key": 1}), json!([["output", 2]])),
                (json!({"input": [1, 2, 3], "key": 3}), json!([["missing", [1, 2, 3]]])),
                (
                    json!({"input": [{"k1": "v1"}, {"k2": "v2"}, {"k1": "v3"}], "key": "k1"}),
                    json!([["output", ["v1", "v3"]]]),
                ),
                (json!({"input": "{\"a\": 5}", "key": "a"}), json!([["output", 5]])),
            ],
        );
    }

    #[test]
    fn list_blocks() {
        check(
            "a912d5c7-6e00-4542-b2a9-8034136930e4",
            &[
                (json!({"values": ["Alice", 25, true]}), json!([["list", ["Alice", 25, true]]])),
                (json!({"values": [1, 2, 3], "max_size": 2}), json!([["list", [1, 2]], ["list", [3]]])),
                (json!({"values": []}), json!([["list", []]])),
            ],
        );
        check(
            "aeb08fc1-2fc1-4141-bc8e-f758f183a822",
            &[
                (
                    json!({"list": [1, "string", {"existing_key": "existing_value"}], "entry": {"new_key": "new_value"}, "position": 1}),
                    json!([["updated_list", [1, {"new_key": "new_value"}, "string", {"existing_key": "existing_value"}]]]),
                ),
                (json!({"entry": "first_entry"}), json!([["updated_list", ["first_entry"]]])),
                (json!({"list": ["a", "b", "c"], "entry": "d"}), json!([["updated_list", ["a", "b", "c", "d"]]])),
                (
                    json!({"entry": "e", "entries": ["f", "g"], "list": ["a", "b"], "position": 1}),
                    json!([["updated_list", ["a", "f", "g", "e", "b"]]]),
                ),
            ],
        );
        check(
            "262ca24c-1025-43cf-a578-534e23234e97",
            &[
                (json!({"list": [1, 2, 3], "index": 1}), json!([["item", 2]])),
                (json!({"list": [1, 2, 3], "index": -1}), json!([["item", 3]])),
            ],
        );
        assert!(yields("262ca24c-1025-43cf-a578-534e23234e97", json!({"list": [1], "index": 5}))[0]
            .1
            .as_str()
            .unwrap()
            .contains("Index out of range"));
        check(
            "5e2c6d0a-1e37-489f-b1d0-8e1812b23333",
            &[
                (json!({"list": [1, 2, 3, 4, 5], "value": 3}), json!([["index", 2], ["found", true]])),
                (json!({"list": [1, 2, 3, 4, 5], "value": 6}), json!([["found", false], ["not_found_value", 6]])),
            ],
        );
        check(
            "3cf9298b-5817-4141-9d80-7c2cc5199c8e",
            &[
                (
                    json!({"lists": [[1, 2, 3], [4, 5, 6]]}),
                    json!([["concatenated_list", [1, 2, 3, 4, 5, 6]], ["length", 6]]),
                ),
                (json!({"lists": [[1, 2], []]}), json!([["concatenated_list", [1, 2]], ["length", 2]])),
                (json!({"lists": []}), json!([["concatenated_list", []], ["length", 0]])),
                (
                    json!({"lists": [[1, 2, 2, 3], [3, 4]], "deduplicate": true}),
                    json!([["concatenated_list", [1, 2, 3, 4]], ["length", 4]]),
                ),
                (
                    json!({"lists": [[1, null, 2], [null, 3]], "remove_none": true}),
                    json!([["concatenated_list", [1, 2, 3]], ["length", 3]]),
                ),
            ],
        );
        check(
            "422cb708-3109-4277-bfe3-bc2ae5812777",
            &[(json!({"input_list": [1, 2, 3, 4, 5]}), json!([["reversed_list", [5, 4, 3, 2, 1]]]))],
        );
        check(
            "3c9c2f42-b0c3-435f-ba35-05f7a25c772a",
            &[
                (json!({"collection": [1, 2, 3, 4, 5]}), json!([["count", 5]])),
                (json!({"collection": 7}), json!([["count", -1]])),
            ],
        );
    }

    #[test]
    fn step_through_items_yields_each_item_then_its_key() {
        check(
            "f66a3543-28d3-4ab5-8945-9b336371e2ce",
            &[
                (
                    json!({"items": [1, 2, 3, {"key1": "value1", "key2": "value2"}]}),
                    json!([["item", 1], ["key", 0], ["item", 2], ["key", 1], ["item", 3], ["key", 2], ["item", {"key1": "value1", "key2": "value2"}], ["key", 3]]),
                ),
                (json!({"items_object": {"a": 1}}), json!([["item", 1], ["key", "a"]])),
                (json!({"items_str": "[\"x\"]"}), json!([["item", "x"], ["key", 0]])),
            ],
        );
    }

    #[test]
    fn collections_are_bounded_at_ten_thousand_items() {
        let error = |block: &str, input: serde_json::Value| match yields(block, input).pop() {
            Some((pin, serde_json::Value::String(text))) if pin == "error" => text,
            other => panic!("no error: {other:?}"),
        };
        let full: Vec<u32> = (0..10_000).collect();
        let half: Vec<u32> = (0..6000).collect();
        let add_to_list = "aeb08fc1-2fc1-4141-bc8e-f758f183a822";
        let fits = yields(add_to_list, json!({"list": &full[1..], "entry": 1}));
        assert_eq!(fits[0].1.as_array().map(Vec::len), Some(10_000), "the most items");
        assert!(error(add_to_list, json!({"list": full, "entry": 1})).contains("Too many items in the list: 10001"));
        let concatenate = "3cf9298b-5817-4141-9d80-7c2cc5199c8e";
        assert!(error(concatenate, json!({"lists": [half, half]})).contains("(max 10000)"));
        let dictionary: serde_json::Map<String, serde_json::Value> =
            (0..10_000).map(|i| (i.to_string(), json!(i))).collect();
        let add_to_dictionary = "31d1064e-7446-4693-a7d4-65e5ca1180d1";
        let grown = error(add_to_dictionary, json!({"dictionary": dictionary, "key": "k", "value": 1}));
        assert!(grown.contains("Too many items in the dictionary: 10001"), "{grown}");
        let create_list = "a912d5c7-6e00-4542-b2a9-8034136930e4";
        let mut many = full.clone();
        many.push(0);
        assert!(error(create_list, json!({"values": many})).contains("Too many items in the list"));
        let step = "f66a3543-28d3-4ab5-8945-9b336371e2ce";
        assert!(error(step, json!({"items": many})).contains("Too many items: 10001 (max 10000)"));
        assert_eq!(yields(step, json!({"items": full})).len(), 20_000, "an item and a key each");
    }

    #[test]
    fn the_type_converter_converts() {
        check(
            "95d1b990-ce13-4d88-9737-ba5c2070c97b",
            &[
                (json!({"value": "42", "type": "number"}), json!([["value", 42.0]])),
                (json!({"value": {"a": 1}, "type": "string"}), json!([["value", "{\"a\": 1}"]])),
            ],
        );
    }
}
