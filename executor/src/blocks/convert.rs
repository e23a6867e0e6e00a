//! AutoGPT's `util/type.convert` for the types a JSON value can take: how
//! UniversalTypeConverter and IfInputMatches turn one value into another.

use serde_json::{json, Map, Value};

/// A conversion target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `str`: text as is, anything else as JSON.
    Text,
    /// `float`: a collection's length, a number, parsed text, else 0.
    Number,
    /// `int`: as a number, truncated.
    Integer,
    /// `bool`: "true"/"1" for text, Python's truthiness otherwise.
    Boolean,
    /// `list`.
    List,
    /// `dict`.
    Dictionary,
}

/// Convert `value` to `target` as AutoGPT does (it never fails: what cannot
/// be read as a number is 0, what is not a list becomes a one-item list).
pub fn convert(value: &Value, target: Target) -> Value {
    match target {
        Target::Text => match value {
            Value::String(s) => Value::String(s.clone()),
            other => Value::String(python_json(other)),
        },
        Target::Number | Target::Integer => {
            let n = match value {
                Value::Array(a) => a.len() as f64,
                Value::Object(o) => o.len() as f64,
                Value::Number(n) => n.as_f64().unwrap_or(0.0),
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()).unwrap_or(0.0),
                Value::Null => 0.0,
            };
            if target == Target::Integer {
                json!(n.trunc() as i64)
            } else {
                match value {
                    Value::Number(num) if num.is_f64() => value.clone(),
                    _ => json!(n),
                }
            }
        }
        Target::Boolean => match value {
            Value::Bool(b) => Value::Bool(*b),
            Value::String(s) => Value::Bool(matches!(s.to_lowercase().as_str(), "true" | "1")),
            other => Value::Bool(super::basic::truthy(other)),
        },
        Target::List => match value {
            Value::Array(a) => Value::Array(a.clone()),
            Value::Object(o) => Value::Array(o.iter().map(|(k, v)| json!([k, v])).collect()),
            Value::String(s) if s.trim().starts_with('[') && s.trim().ends_with(']') => {
                serde_json::from_str::<Value>(s.trim()).unwrap_or_else(|_| json!([s]))
            }
            other => json!([other]),
        },
        Target::Dictionary => match value {
            Value::Object(o) => Value::Object(o.clone()),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(o)) => Value::Object(o),
                Ok(other) => json!({ "value": other }),
                Err(_) => json!({ "value": s }),
            },
            Value::Array(a) => {
                Value::Object(a.iter().enumerate().map(|(i, v)| (i.to_string(), v.clone())).collect::<Map<_, _>>())
            }
            other => json!({ "value": other }),
        },
    }
}

/// The target matching a value's own type (Python's `type(value)`).
pub fn target_of(value: &Value) -> Option<Target> {
    match value {
        Value::String(_) => Some(Target::Text),
        Value::Number(n) if n.is_f64() => Some(Target::Number),
        Value::Number(_) => Some(Target::Integer),
        Value::Bool(_) => Some(Target::Boolean),
        Value::Array(_) => Some(Target::List),
        Value::Object(_) => Some(Target::Dictionary),
        Value::Null => None,
    }
}

/// Python's `json.dumps` spacing: `{"a": 1, "b": [1, 2]}`.
pub fn python_json(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("[{}]", items.iter().map(python_json).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Equality as Python compares JSON-decoded values: numbers by value
/// (`1 == 1.0`, `True == 1`), the rest structurally.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conversions_follow_autogpts_rules() {
        assert_eq!(convert(&json!({"a": 1}), Target::Text), json!("{\"a\": 1}"));
        assert_eq!(convert(&json!(true), Target::Text), json!("true"));
        assert_eq!(convert(&json!("abc"), Target::Number), json!(0.0));
        assert_eq!(convert(&json!("2.5"), Target::Number), json!(2.5));
        assert_eq!(convert(&json!([1, 2, 3]), Target::Integer), json!(3));
        assert_eq!(convert(&json!("TRUE"), Target::Boolean), json!(true));
        assert_eq!(convert(&json!("[1, 2]"), Target::List), json!([1, 2]));
        assert_eq!(convert(&json!("x"), Target::List), json!(["x"]));
        assert_eq!(convert(&json!("[bad"), Target::List), json!(["[bad"]));
        assert_eq!(convert(&json!(["a", "b"]), Target::Dictionary), json!({"0": "a", "1": "b"}));
        assert_eq!(convert(&json!("nope"), Target::Dictionary), json!({"value": "nope"}));
        assert!(py_eq(&json!(1), &json!(1.0)) && py_eq(&json!(true), &json!(1)) && !py_eq(&json!("1"), &json!(1)));
    }
}
