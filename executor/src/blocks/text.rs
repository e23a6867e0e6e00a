//! Text blocks (`backend/blocks/text.py`, `count_words_and_char_block.py`).
//! Patterns use Rust's regex syntax, which has Python's common constructs
//! but no look-around or back-references (such a pattern fails the node).

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::basic::truthy;
use super::{out, within_items, within_text, BlockContext, BlockResult, Input, Run};
use crate::template;

pub(super) const RUNNERS: &[(&str, Run)] = &[
    ("3060088f-6ed9-4928-9ba7-9c92823a7ccd", match_text_pattern),
    ("3146e4fe-2cdd-4f29-bd12-0c9d5bb4deb0", extract_text_information),
    ("db7d8f02-2f44-4c55-ab7a-eae0941f0c30", fill_text_template),
    ("e30a4d42-7b7d-4e6a-b36e-1f9b8e3b7d85", combine_texts),
    ("d5ea33c8-a575-477a-b42f-2fe3be5055ec", text_split),
    ("7e7c87ab-3469-4bcc-9abe-67705091b713", text_replace),
    ("ab2a782d-22cf-4587-8a70-55b59b3f9f90", word_character_count),
];

/// Longest text a pattern is run over, and most matches kept, as AutoGPT
/// bounds them.
const MAX_TEXT: usize = 1_000_000;
const MAX_MATCHES: usize = 1000;
const MAX_MATCH_LEN: usize = 10_000;

fn pattern(input: &Input, field: &str) -> Result<Regex, String> {
    RegexBuilder::new(&input.text(field, ""))
        .case_insensitive(!input.flag("case_sensitive", true))
        .dot_matches_new_line(input.flag("dot_all", true))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// Text as the pattern sees it: itself, or another value's compact JSON.
fn subject(input: &Input) -> String {
    match input.value("text") {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// `data or text` on `positive` when the pattern is found, else on
/// `negative`.
fn match_text_pattern(input: &Input, _: &BlockContext) -> BlockResult {
    let data = input.value("data");
    let output = if truthy(&data) { data } else { input.value("text") };
    let found = pattern(input, "match")?.is_match(&subject(input));
    Ok(vec![out(if found { "positive" } else { "negative" }, output)])
}

/// Each match's group on `positive` (the first only unless `find_all`),
/// the text on `negative` when none, then the list and the count.
fn extract_text_information(input: &Input, _: &BlockContext) -> BlockResult {
    let text: String = subject(input).chars().take(MAX_TEXT).collect();
    let group = input.get("group").and_then(Value::as_u64).unwrap_or(0) as usize;
    let matches: Vec<String> = match pattern(input, "pattern") {
        Ok(re) => re
            .captures_iter(&text)
            .take(MAX_MATCHES)
            .filter_map(|c| c.get(group).map(|m| m.as_str().chars().take(MAX_MATCH_LEN).collect()))
            .take(if input.flag("find_all", false) { MAX_MATCHES } else { 1 })
            .collect(),
        Err(_) => vec![],
    };
    let mut steps: Vec<_> = matches.iter().map(|m| out("positive", m.as_str())).collect();
    if matches.is_empty() {
        steps.push(out("negative", input.value("text")));
    }
    let count = matches.len();
    steps.push(out("matched_results", matches));
    steps.push(out("matched_count", count));
    Ok(steps)
}

/// The `format` template rendered with `values`.
fn fill_text_template(input: &Input, _: &BlockContext) -> BlockResult {
    let rendered =
        template::render(&input.text("format", ""), &input.object("values"), input.flag("escape_html", false))?;
    Ok(vec![out("output", rendered)])
}

fn texts(values: &[Value]) -> Vec<String> {
    values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect()
}

fn combine_texts(input: &Input, _: &BlockContext) -> BlockResult {
    let (texts, delimiter) = (texts(&input.list("input")), input.text("delimiter", ""));
    let joints = texts.len().saturating_sub(1).saturating_mul(delimiter.len());
    within_text("The combined text", texts.iter().fold(joints, |len, text| len.saturating_add(text.len())))?;
    Ok(vec![out("output", texts.join(&delimiter))])
}

/// Split on the delimiter (stripping each piece unless told not to); an
/// empty text is no pieces.
fn text_split(input: &Input, _: &BlockContext) -> BlockResult {
    let text = input.text("text", "");
    if text.is_empty() {
        return Ok(vec![out("texts", Vec::<String>::new())]);
    }
    let delimiter = input.text("delimiter", "");
    if delimiter.is_empty() {
        return Err("empty separator".into());
    }
    within_items("the split", text.matches(delimiter.as_str()).count().saturating_add(1))?;
    let strip = input.flag("strip", true);
    let pieces: Vec<String> =
        text.split(delimiter.as_str()).map(|p| if strip { p.trim().to_owned() } else { p.to_owned() }).collect();
    Ok(vec![out("texts", pieces)])
}

fn text_replace(input: &Input, _: &BlockContext) -> BlockResult {
    let (text, old, new) = (input.text("text", ""), input.text("old", ""), input.text("new", ""));
    // A short text and a long replacement multiply: the size is known
    // before anything is built.
    let inserts = if old.is_empty() { text.chars().count().saturating_add(1) } else { text.matches(&old).count() };
    let removed = if old.is_empty() { 0 } else { inserts * old.len() };
    within_text("The replaced text", (text.len() - removed).saturating_add(inserts.saturating_mul(new.len())))?;
    // Python's replace of "" inserts between every character.
    let replaced = if old.is_empty() {
        let mut s = new.clone();
        for c in text.chars() {
            s.push(c);
            s.push_str(&new);
        }
        s
    } else {
        text.replace(&old, &new)
    };
    Ok(vec![out("output", replaced)])
}

fn word_character_count(input: &Input, _: &BlockContext) -> BlockResult {
    let text = input.text("text", "");
    Ok(vec![out("word_count", text.split_whitespace().count()), out("character_count", text.chars().count())])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::testing::{expect, yields};

    #[test]
    fn match_text_pattern_routes_data_by_the_match() {
        let block = "3060088f-6ed9-4928-9ba7-9c92823a7ccd";
        let cases = [
            (json!({"text": "ABC", "match": "ab", "data": "X", "case_sensitive": false}), json!([["positive", "X"]])),
            (json!({"text": "ABC", "match": "ab", "data": "Y", "case_sensitive": true}), json!([["negative", "Y"]])),
            (json!({"text": "Hello World!", "match": ".orld.+", "data": "Z"}), json!([["positive", "Z"]])),
            (json!({"text": "Hello World!", "match": "World![a-z]+", "data": "Z"}), json!([["negative", "Z"]])),
        ];
        for (input, output) in cases {
            assert_eq!(yields(block, input.clone()), expect(output), "{input}");
        }
        let bad = yields(block, json!({"text": "a", "match": "(", "data": 1}));
        assert_eq!(bad[0].0, "error", "an invalid pattern fails the node");
    }

    #[test]
    fn extract_text_information_yields_groups_then_the_list_and_count() {
        let block = "3146e4fe-2cdd-4f29-bd12-0c9d5bb4deb0";
        let text = "Hello, World!! Hello, Earth!!";
        let cases = [
            (
                json!({"text": "Hello, World!", "pattern": "Hello, (.+)", "group": 1}),
                json!([["positive", "World!"], ["matched_results", ["World!"]], ["matched_count", 1]]),
            ),
            (
                json!({"text": "Hello, World!", "pattern": "Hello, (.+)", "group": 0}),
                json!([["positive", "Hello, World!"], ["matched_results", ["Hello, World!"]], ["matched_count", 1]]),
            ),
            (
                json!({"text": "Hello, World!", "pattern": "Hello, (.+)", "group": 2}),
                json!([["negative", "Hello, World!"], ["matched_results", []], ["matched_count", 0]]),
            ),
            (
                json!({"text": "Hello, World!", "pattern": "hello,", "case_sensitive": false}),
                json!([["positive", "Hello,"], ["matched_results", ["Hello,"]], ["matched_count", 1]]),
            ),
            (
                json!({"text": text, "pattern": "Hello, (\\S+)", "group": 1, "find_all": false}),
                json!([["positive", "World!!"], ["matched_results", ["World!!"]], ["matched_count", 1]]),
            ),
            (
                json!({"text": text, "pattern": "Hello, (\\S+)", "group": 1, "find_all": true}),
                json!([
                    ["positive", "World!!"],
                    ["positive", "Earth!!"],
                    ["matched_results", ["World!!", "Earth!!"]],
                    ["matched_count", 2]
                ]),
            ),
        ];
        for (input, output) in cases {
            assert_eq!(yields(block, input.clone()), expect(output), "{input}");
        }
    }

    #[test]
    fn texts_a_block_builds_are_bounded_in_size_and_splits_in_pieces() {
        let error = |block: &str, input: serde_json::Value| match yields(block, input).pop() {
            Some((pin, serde_json::Value::String(text))) if pin == "error" => text,
            other => panic!("no error: {other:?}"),
        };
        let mega = "x".repeat(1 << 20);
        let replace = "7e7c87ab-3469-4bcc-9abe-67705091b713";
        let blown = error(replace, json!({"text": "a".repeat(100), "old": "a", "new": mega}));
        assert!(blown.contains("The replaced text too large: 104857600 bytes (max 10485760 bytes)"), "{blown}");
        assert!(error(replace, json!({"text": "abc", "old": "", "new": "y".repeat(3 << 20)})).contains("too large"));
        let fits = yields(replace, json!({"text": "a".repeat(10), "old": "a", "new": mega}));
        assert_eq!(fits[0].1.as_str().map(str::len), Some(10 << 20), "exactly the most");
        let combine = "e30a4d42-7b7d-4e6a-b36e-1f9b8e3b7d85";
        let joined = error(combine, json!({"input": vec!["a"; 12], "delimiter": mega}));
        assert!(joined.contains("The combined text too large"), "{joined}");
        let split = "d5ea33c8-a575-477a-b42f-2fe3be5055ec";
        assert!(error(split, json!({"text": ",".repeat(10_000), "delimiter": ","})).contains("Too many items"));
        let pieces = yields(split, json!({"text": ",".repeat(9_999), "delimiter": ","}));
        assert_eq!(pieces[0].1.as_array().map(Vec::len), Some(10_000));
    }

    #[test]
    fn templates_joins_splits_replacements_and_counts() {
        let fill = "db7d8f02-2f44-4c55-ab7a-eae0941f0c30";
        let cases = [
            (
                json!({"values": {"name": "Alice", "hello": "Hello", "world": "World!"}, "format": "{{hello}}, {{ world }} {{name}}"}),
                "Hello, World! Alice",
            ),
            (
                json!({"values": {"list": ["Hello", " World!"]}, "format": "{% for item in list %}{{ item }}{% endfor %}"}),
                "Hello World!",
            ),
            (
                json!({"values": {}, "format": "{% set name = 'Alice' %}Hello, World! {{ name }}"}),
                "Hello, World! Alice",
            ),
        ];
        for (input, output) in cases {
            assert_eq!(yields(fill, input), expect(json!([["output", output]])));
        }
        assert_eq!(
            yields(fill, json!({"values": {}, "format": "{% if %}"}))[0].0,
            "error",
            "a template error fails the node"
        );
        let combine = "e30a4d42-7b7d-4e6a-b36e-1f9b8e3b7d85";
        assert_eq!(
            yields(combine, json!({"input": ["Hello world I like ", "cake and to go for walks"]})),
            expect(json!([["output", "Hello world I like cake and to go for walks"]]))
        );
        assert_eq!(
            yields(combine, json!({"input": ["This is a test", "Hi!"], "delimiter": "! "})),
            expect(json!([["output", "This is a test! Hi!"]]))
        );
        let split = "d5ea33c8-a575-477a-b42f-2fe3be5055ec";
        assert_eq!(
            yields(split, json!({"text": "Hello, World!", "delimiter": ","})),
            expect(json!([["texts", ["Hello", "World!"]]]))
        );
        assert_eq!(
            yields(split, json!({"text": "Hello, World!", "delimiter": ",", "strip": false})),
            expect(json!([["texts", ["Hello", " World!"]]]))
        );
        assert_eq!(yields(split, json!({"text": "", "delimiter": ","})), expect(json!([["texts", []]])));
        let replace = "7e7c87ab-3469-4bcc-9abe-67705091b713";
        assert_eq!(
            yields(replace, json!({"text": "Hello, World!", "old": "Hello", "new": "Hi"})),
            expect(json!([["output", "Hi, World!"]]))
        );
        let count = "ab2a782d-22cf-4587-8a70-55b59b3f9f90";
        assert_eq!(
            yields(count, json!({"text": "Hello, how are you?"})),
            expect(json!([["word_count", 4], ["character_count", 19]]))
        );
    }
}
