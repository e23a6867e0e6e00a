//! XMLParserBlock (`backend/blocks/xml_parser.py`), with the behaviour of
//! the markup parser AutoGPT uses (gravitasml): tags and text only (no
//! attributes, entities or DTDs), tag names trimmed, lower-cased and with
//! inner whitespace as `_`; a tag with children becomes a map of them (a
//! list when a child tag repeats), a tag without its text.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::{out, BlockContext, BlockResult, Input, Run};

pub(super) const RUNNERS: &[(&str, Run)] = &[("286380af-9529-4b55-8be0-1d7c854abdb5", xml_parser)];

/// Largest input, as AutoGPT bounds it.
const MAX_XML: usize = super::MAX_TEXT_BYTES;

/// Deepest nesting of tags: the parse recurses once per level (a deeper
/// document would overflow the stack and abort the process), and each level
/// nests the value up to twice, which must stay within
/// [`super::MAX_NESTING`].
const MAX_DEPTH: i64 = 40;

/// Most tags in one document: each becomes a map of its own.
const MAX_ELEMENTS: usize = 100_000;

static TOKENS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)(?P<escape>\\.)|(?P<comment><!--.*?-->)|(?P<open><\s*[^>/]+\s*>)|(?P<close></\s*[^>]+\s*>)|(?P<text>[^<]+)")
        .expect("a valid pattern")
});
static SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("a valid pattern"));

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Escape,
    Open(String),
    Close(String),
    Text(String),
}

fn tag_name(raw: &str) -> String {
    SPACES.replace_all(raw.trim(), "_").to_lowercase()
}

fn tokenize(markup: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    for caps in TOKENS.captures_iter(markup) {
        let token = if caps.name("escape").is_some() {
            Token::Escape
        } else if caps.name("comment").is_some() {
            continue;
        } else if let Some(m) = caps.name("open") {
            Token::Open(tag_name(&m.as_str()[1..m.as_str().len() - 1]))
        } else if let Some(m) = caps.name("close") {
            Token::Close(tag_name(&m.as_str()[2..m.as_str().len() - 1]))
        } else if let Some(m) = caps.name("text") {
            Token::Text(m.as_str().trim().to_owned())
        } else {
            continue;
        };
        let empty = matches!(&token, Token::Open(v) | Token::Close(v) | Token::Text(v) if v.is_empty());
        if !empty {
            tokens.push(token);
        }
    }
    tokens
}

/// AutoGPT's checks before parsing: one root, no text outside it, every
/// tag closed. `Err((syntax, message))`.
fn validate(tokens: &[Token]) -> Result<(), (bool, &'static str)> {
    if tokens.is_empty() {
        return Err((false, "XML input is empty."));
    }
    let (mut depth, mut root_seen, mut elements) = (0i64, false, 0usize);
    for token in tokens {
        match token {
            Token::Open(_) => {
                if depth == 0 && root_seen {
                    return Err((false, "XML must have a single root element."));
                }
                depth += 1;
                elements += 1;
                if depth > MAX_DEPTH {
                    return Err((false, "XML nests deeper than 40 levels."));
                }
                if elements > MAX_ELEMENTS {
                    return Err((false, "XML has more than 100000 elements."));
                }
                root_seen |= depth == 1;
            }
            Token::Close(_) => {
                depth -= 1;
                if depth < 0 {
                    return Err((true, "Unexpected closing tag in XML input."));
                }
            }
            Token::Text(_) | Token::Escape if depth == 0 => {
                return Err((false, "XML contains text outside the root element; wrap content in a single root tag."));
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err((true, "Unclosed tag detected in XML input."));
    }
    if !root_seen {
        return Err((false, "XML must include a root element."));
    }
    Ok(())
}

struct Node {
    tag: String,
    children: Vec<usize>,
    text: String,
}

/// Several children: one map when their tags are unique, else a list of
/// one-entry maps.
fn children_value(nodes: &[Node], children: &[usize]) -> Value {
    if let [only] = children {
        return node_value(nodes, *only);
    }
    let mut tags: Vec<&str> = children.iter().map(|c| nodes[*c].tag.as_str()).collect();
    tags.sort_unstable();
    let unique = tags.windows(2).all(|w| w[0] != w[1]);
    if unique {
        let mut map = Map::new();
        for child in children {
            if let Value::Object(entry) = node_value(nodes, *child) {
                map.extend(entry);
            }
        }
        Value::Object(map)
    } else {
        Value::Array(children.iter().map(|c| node_value(nodes, *c)).collect())
    }
}

/// `{tag: children or text}`.
fn node_value(nodes: &[Node], at: usize) -> Value {
    let node = &nodes[at];
    let inner = if node.children.is_empty() {
        Value::String(node.text.clone())
    } else if let [only] = node.children.as_slice() {
        node_value(nodes, *only)
    } else {
        children_value(nodes, &node.children)
    };
    let mut map = Map::new();
    map.insert(node.tag.clone(), inner);
    Value::Object(map)
}

fn parse(tokens: Vec<Token>) -> Result<Value, String> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for token in tokens {
        match token {
            Token::Text(text) => match open.last() {
                Some(&at) => nodes[at].text.push_str(&text),
                None => return Err("Validation error for dict:Text outside of a tag is unsupported".into()),
            },
            Token::Open(tag) => {
                nodes.push(Node { tag, children: Vec::new(), text: String::new() });
                let at = nodes.len() - 1;
                match open.last() {
                    Some(&parent) => nodes[parent].children.push(at),
                    None => roots.push(at),
                }
                open.push(at);
            }
            Token::Close(tag) => {
                let at = open.pop().ok_or("Error in input xml syntax: Unmatched closing tag")?;
                if nodes[at].tag != tag {
                    return Err(format!("Error in input xml syntax: Mismatched tags: {} and {tag}", nodes[at].tag));
                }
            }
            Token::Escape => {}
        }
    }
    Ok(children_value(&nodes, &roots))
}

fn xml_parser(input: &Input, _: &BlockContext) -> BlockResult {
    let xml = input.text("input_xml", "");
    if xml.len() > MAX_XML {
        return Err(format!("XML too large: {} bytes > {MAX_XML} bytes", xml.len()));
    }
    let tokens = tokenize(&xml);
    validate(&tokens).map_err(|(syntax, message)| {
        if syntax {
            format!("Error in input xml syntax: {message}")
        } else {
            format!("Validation error for dict:{message}")
        }
    })?;
    Ok(vec![out("parsed_xml", parse(tokens)?)])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::testing::{expect, yields};

    const XML: &str = "286380af-9529-4b55-8be0-1d7c854abdb5";

    #[test]
    fn markup_becomes_nested_maps_as_gravitasml_builds_them() {
        let parsed = |xml: &str| yields(XML, json!({"input_xml": xml}));
        assert_eq!(
            parsed("<tag1><tag2>content</tag2></tag1>"),
            expect(json!([["parsed_xml", {"tag1": {"tag2": "content"}}]]))
        );
        let siblings = parsed("<root><a>1</a><b> 2 </b></root>");
        assert_eq!(siblings, expect(json!([["parsed_xml", {"root": {"a": "1", "b": "2"}}]])));
        let repeated = parsed("<List><Item>x</Item><!-- note --><item>y</item></List>");
        assert_eq!(repeated, expect(json!([["parsed_xml", {"list": [{"item": "x"}, {"item": "y"}]}]])));
        assert_eq!(parsed("<My Tag>v</My Tag>"), expect(json!([["parsed_xml", {"my_tag": "v"}]])));
    }

    #[test]
    fn malformed_markup_fails_the_node_with_autogpts_messages() {
        let error = |xml: &str| yields(XML, json!({"input_xml": xml}))[0].1.as_str().unwrap().to_owned();
        assert!(error("").contains("XML input is empty."));
        assert!(error("<a>1</a><b>2</b>").contains("single root element"));
        assert!(error("<a>1").contains("Error in input xml syntax: Unclosed tag"));
        assert!(error("<a>1</b>").contains("Mismatched tags: a and b"));
        assert!(error("text<a></a>").contains("text outside the root element"));
    }

    #[test]
    fn documents_are_bounded_in_depth_and_elements() {
        let error = |xml: &str| yields(XML, json!({"input_xml": xml}))[0].1.as_str().unwrap().to_owned();
        let nested = |levels: usize| format!("{}v{}", "<a>".repeat(levels), "</a>".repeat(levels));
        let forty = yields(XML, json!({"input_xml": nested(40)}));
        assert_eq!(forty[0].0, "parsed_xml", "the deepest allowed: {forty:?}");
        assert!(error(&nested(41)).contains("XML nests deeper than 40 levels."));
        // Deep enough to have overflowed the stack of the recursive parse.
        assert!(error(&nested(1_000_000)).contains("XML nests deeper than 40 levels."));
        let wide = format!("<r>{}</r>", "<i>x</i>".repeat(100_000));
        assert!(error(&wide).contains("XML has more than 100000 elements."));
        let big = format!("<r>{}</r>", "x".repeat(10 << 20));
        assert!(error(&big).contains("XML too large"));
    }
}
