//! Dynamic pins: a sink pin `values_#_key`, `items_$_0` or `obj_@_attr`
//! writes into one entry of its base field, and a link's `source_name` can
//! select into a yielded value the same way.

use serde_json::{Map, Value};

/// Separator of a dictionary entry pin (`values_#_key`).
pub const DICT_SEP: &str = "_#_";
/// Separator of a list item pin (`items_$_0`).
pub const LIST_SEP: &str = "_$_";
/// Separator of an object attribute pin (`obj_@_attr`).
pub const OBJECT_SEP: &str = "_@_";

/// The first list index a list item pin may not name: a list built from
/// pins holds at most as many items as a block's lists may (the executor's
/// `MAX_ITEMS`, AutoGPT's StepThroughItems bound).
pub const MAX_LIST_INDEX: usize = 10_000;

/// The input a block runs with: the node's received pins with each dynamic
/// pin also merged into its base field (a dictionary entry, a list item, an
/// attribute). The dynamic keys stay, as AutoGPT keeps them in `input_data`.
/// List items past the end pad the list with nulls; an index of
/// [`MAX_LIST_INDEX`] or more is left out of the list (it would pad it with
/// billions of nulls: one request could exhaust the memory).
pub fn merge_dynamic_pins(input: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = input.clone();
    for (pin, value) in input {
        let Some((base, sep, key)) = split_dynamic(pin) else { continue };
        let slot = merged.entry(base.to_owned()).or_insert(Value::Null);
        match sep {
            LIST_SEP => {
                let Some(index) = key.parse::<usize>().ok().filter(|i| *i < MAX_LIST_INDEX) else { continue };
                if !slot.is_array() {
                    *slot = Value::Array(vec![]);
                }
                if let Value::Array(items) = slot {
                    if items.len() <= index {
                        items.resize(index + 1, Value::Null);
                    }
                    items[index] = value.clone();
                }
            }
            _ => {
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(map) = slot {
                    map.insert(key.to_owned(), value.clone());
                }
            }
        }
    }
    merged
}

/// `(base, separator, key)` of a dynamic pin name, split at its first
/// separator.
fn split_dynamic(pin: &str) -> Option<(&str, &'static str, &str)> {
    [DICT_SEP, LIST_SEP, OBJECT_SEP]
        .into_iter()
        .filter_map(|sep| pin.find(sep).map(|at| (at, sep)))
        .min_by_key(|(at, _)| *at)
        .map(|(at, sep)| (&pin[..at], sep, &pin[at + sep.len()..]))
}

/// What a link whose `source_name` is `selector` carries when its node
/// yields `value` on `pin`: the whole value for the pin itself, the selected
/// part for `pin_#_key` (a dictionary entry), `pin_$_2` (a list item) or
/// `pin_@_attr` (an attribute), possibly nested (`pin_#_a_#_b`); nothing
/// when the selector names another pin or the part is missing.
pub fn select_output(selector: &str, pin: &str, value: &Value) -> Option<Value> {
    if selector == pin {
        return Some(value.clone());
    }
    let mut rest = selector.strip_prefix(pin)?;
    let mut current = value;
    while !rest.is_empty() {
        let (sep, after) =
            [DICT_SEP, LIST_SEP, OBJECT_SEP].into_iter().find_map(|sep| rest.strip_prefix(sep).map(|a| (sep, a)))?;
        let end = [DICT_SEP, LIST_SEP, OBJECT_SEP].iter().filter_map(|s| after.find(s)).min().unwrap_or(after.len());
        let key = &after[..end];
        current = match (sep, current) {
            (LIST_SEP, Value::Array(items)) => items.get(key.parse::<usize>().ok()?)?,
            (DICT_SEP | OBJECT_SEP, Value::Object(map)) => map.get(key)?,
            _ => return None,
        };
        rest = &after[end..];
    }
    Some(current.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dynamic_pins_merge_into_their_base_field_and_stay() {
        let input = json!({"values": {"a": "x"}, "values_#_b": 2, "items_$_2": "c", "obj_@_name": "n"});
        let merged = merge_dynamic_pins(input.as_object().unwrap());
        assert_eq!(merged["values"], json!({"a": "x", "b": 2}));
        assert_eq!(merged["items"], json!([null, null, "c"]), "a gap pads with nulls");
        assert_eq!(merged["obj"], json!({"name": "n"}));
        assert_eq!(merged["values_#_b"], 2, "the dynamic key stays");
    }

    #[test]
    fn a_list_item_pin_past_the_bound_pads_nothing() {
        let input = json!({"items_$_9999": "last", "list_$_10000": "x", "huge_$_18446744073709551615": "y"});
        let merged = merge_dynamic_pins(input.as_object().unwrap());
        assert_eq!(merged["items"].as_array().map(Vec::len), Some(10_000));
        assert_eq!(merged["items"][9999], "last");
        assert!(merged["list"].is_null() && merged["huge"].is_null(), "no list: {merged:?}");
        assert_eq!(merged["list_$_10000"], "x", "the pin itself stays, as any dynamic key does");
    }

    #[test]
    fn selectors_pick_into_a_yielded_value() {
        let value = json!({"key": [10, {"deep": true}]});
        assert_eq!(select_output("output", "output", &value), Some(value.clone()));
        assert_eq!(select_output("output_#_key_$_0", "output", &value), Some(json!(10)));
        assert_eq!(select_output("output_#_key_$_1_@_deep", "output", &value), Some(json!(true)));
        assert_eq!(select_output("output_#_missing", "output", &value), None);
        assert_eq!(select_output("other", "output", &value), None);
        assert_eq!(select_output("outputs", "output", &value), None, "a longer pin name is another pin");
    }
}
