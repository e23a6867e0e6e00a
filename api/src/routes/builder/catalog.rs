//! The block catalog as the builder's menu sees it: AutoGPT's `BlockInfo`,
//! categories, integration providers, counts and a text match. The catalog
//! is static and small, so all of it is worked out in memory.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use domain::blocks::{Block, BlockType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// AgentExecutorBlock: AutoGPT keeps it out of the menu, since an agent is
/// placed from the library or the store, never picked as a bare block
/// (whose graph id and schemas the user would have to type).
const EXCLUDED: &[&str] = &["e189baac-8c20-45a1-94a7-55177ea42565"];

/// A block as the builder lists it (AutoGPT's `BlockInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BlockInfo {
    /// The block's id.
    id: &'static str,
    /// Its class name, e.g. `StoreValueBlock`.
    name: &'static str,
    /// JSON Schema of its input pins.
    #[schema(value_type = Object)]
    input_schema: &'static Value,
    /// JSON Schema of its output pins.
    #[schema(value_type = Object)]
    output_schema: &'static Value,
    /// What running it costs.
    costs: Vec<BlockCostInfo>,
    /// What it does.
    description: &'static str,
    /// `{category, description}` for each of its categories.
    #[schema(value_type = Vec<BTreeMap<String, String>>)]
    categories: Vec<BTreeMap<&'static str, &'static str>>,
    /// Who wrote it (none are recorded).
    #[schema(value_type = Vec<Object>)]
    contributors: Vec<Value>,
    /// Links leaving it are static.
    static_output: bool,
    /// How the builder draws it (`Standard`, `Input`, `Output`, ...).
    ui_type: &'static str,
}

/// One cost rule of a block (AutoGPT's `BlockCost`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = BlockCost)]
pub(crate) struct BlockCostInfo {
    /// Credits per unit.
    cost_amount: i64,
    /// The part of a node's input the rule applies to.
    #[schema(value_type = Object)]
    cost_filter: &'static Value,
    /// The unit: `run`, `byte` or `second`.
    #[schema(value_type = String)]
    cost_type: &'static str,
}

impl BlockInfo {
    /// The block as the builder lists it.
    pub(crate) fn of(block: &'static Block) -> Self {
        BlockInfo {
            id: block.id,
            name: block.name,
            input_schema: &block.input_schema,
            output_schema: &block.output_schema,
            costs: block
                .costs
                .iter()
                .map(|c| BlockCostInfo {
                    cost_amount: c.cost_amount,
                    cost_filter: &c.cost_filter,
                    cost_type: c.cost_type,
                })
                .collect(),
            description: block.description,
            categories: block
                .categories
                .iter()
                .map(|(category, description)| BTreeMap::from([("category", *category), ("description", *description)]))
                .collect(),
            contributors: vec![],
            static_output: block.static_output,
            ui_type: block.block_type.ui_type(),
        }
    }
}

/// Which blocks `GET /api/builder/blocks?type=` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BlockTypeFilter {
    /// Every block.
    All,
    /// Graph inputs.
    Input,
    /// Everything that is neither a graph input nor a graph output.
    Action,
    /// Graph outputs.
    Output,
}

impl BlockTypeFilter {
    /// Whether `block` is of this kind.
    pub(crate) fn admits(self, block: &Block) -> bool {
        match self {
            Self::All => true,
            Self::Input => block.block_type == BlockType::Input,
            Self::Output => block.block_type == BlockType::Output,
            Self::Action => !matches!(block.block_type, BlockType::Input | BlockType::Output),
        }
    }
}

/// The blocks the menu offers, in catalog order.
pub(crate) fn menu() -> impl Iterator<Item = &'static Block> {
    domain::blocks::catalog().iter().filter(|b| !EXCLUDED.contains(&b.id))
}

/// The providers of `block`'s credentials pins, in the order they name
/// them (one entry per pin and provider, as AutoGPT counts them).
pub(crate) fn providers_of(block: &'static Block) -> impl Iterator<Item = &'static str> {
    let pins = block.input_schema["properties"].as_object().into_iter().flatten();
    pins.filter(|(name, _)| name.as_str() == "credentials" || name.ends_with("_credentials"))
        .filter_map(|(_, pin)| pin["credentials_provider"].as_array())
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether `block` needs credentials: an integration, in the menu's terms.
pub(crate) fn is_integration(block: &'static Block) -> bool {
    providers_of(block).next().is_some()
}

/// Whether `block` is in `category` (any case: AutoGPT's menu sends the
/// lower-case names `GET /categories` gives, the enum spells them in
/// upper case).
pub(crate) fn in_category(block: &Block, category: &str) -> bool {
    block.categories.iter().any(|(name, _)| name.eq_ignore_ascii_case(category))
}

/// An integration provider and how many credentials pins name it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Provider {
    /// The provider's name.
    pub name: &'static str,
    /// What it is (AutoGPT leaves it empty too).
    pub description: &'static str,
    /// Blocks' credentials pins that accept it.
    pub integration_count: i64,
}

/// Every provider some block's credentials accept, in the order the
/// catalog first names them.
pub(crate) fn providers() -> &'static [Provider] {
    static PROVIDERS: OnceLock<Vec<Provider>> = OnceLock::new();
    PROVIDERS.get_or_init(|| {
        let mut all: Vec<Provider> = Vec::new();
        for name in domain::blocks::catalog().iter().flat_map(providers_of) {
            match all.iter_mut().find(|p| p.name == name) {
                Some(known) => known.integration_count += 1,
                None => all.push(Provider { name, description: "", integration_count: 1 }),
            }
        }
        all
    })
}

/// How well `block` matches the lower-case, trimmed `query`, or `None`
/// when it does not: the name (as written or as words) equal to, starting
/// with or containing the query weighs most, then the description, then
/// the pins' descriptions and the categories; a query of several words
/// matches when each word occurs somewhere. AutoGPT scores the same fields
/// with a fuzzy ratio on top; without one a match must contain the text.
pub(crate) fn score(block: &Block, query: &str) -> Option<u32> {
    let name = block.name.to_lowercase();
    let words = spaced(block.name);
    let description = block.description.to_lowercase();
    let mut score = if name == query || words == query {
        120
    } else if name.starts_with(query) || words.starts_with(query) {
        90
    } else if name.contains(query) || words.contains(query) {
        60
    } else {
        0
    };
    if description.contains(query) {
        score += 30;
    }
    let mut rest = block.categories.iter().map(|(c, _)| c.to_lowercase()).collect::<Vec<_>>().join(" ");
    for pin in block.input_schema["properties"].as_object().into_iter().flatten().map(|(_, p)| p) {
        rest.push(' ');
        rest.push_str(&pin["description"].as_str().unwrap_or_default().to_lowercase());
    }
    if score == 0 && rest.contains(query) {
        score = 15;
    }
    if score == 0 {
        let all = format!("{name} {words} {description} {rest}");
        if query.split_whitespace().all(|word| all.contains(word)) {
            score = 10;
        }
    }
    (score > 0).then_some(score)
}

/// `AITextGeneratorBlock` as `ai text generator block`: how a user types it.
fn spaced(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let after_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
        let ends_acronym = i > 0 && chars[i - 1].is_uppercase() && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (after_lower || ends_acronym) {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The blocks `/search` finds for `query` (lower-case, trimmed; `None`
/// lists them all), of the kinds asked for: best match first, then by
/// name, as AutoGPT orders them; each with whether it is an integration.
pub(crate) fn search(query: Option<&str>, blocks: bool, integrations: bool) -> Vec<(&'static Block, bool)> {
    let mut found: Vec<(u32, &'static Block, bool)> = menu()
        .map(|b| (b, is_integration(b)))
        .filter(|&(_, integration)| if integration { integrations } else { blocks })
        .filter_map(|(b, integration)| match query {
            Some(query) => score(b, query).map(|s| (s, b, integration)),
            None => Some((0, b, integration)),
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.to_lowercase().cmp(&b.1.name.to_lowercase())));
    found.into_iter().map(|(_, b, integration)| (b, integration)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_words() {
        assert_eq!(spaced("AITextGeneratorBlock"), "ai text generator block");
        assert_eq!(spaced("XMLParserBlock"), "xml parser block");
        assert_eq!(spaced("StoreValueBlock"), "store value block");
    }

    #[test]
    fn an_exact_name_outranks_a_mention() {
        let found = search(Some("storevalueblock"), true, true);
        assert_eq!(found.first().map(|(b, _)| b.name), Some("StoreValueBlock"));
        let found = search(Some("text generator"), true, true);
        assert_eq!(found.first().map(|(b, _)| b.name), Some("AITextGeneratorBlock"));
        assert!(search(Some("no block says zzqx"), true, true).is_empty());
    }

    #[test]
    fn providers_come_from_credentials_pins() {
        let names: Vec<&str> = providers().iter().map(|p| p.name).collect();
        assert!(names.contains(&"openai") && names.contains(&"http"), "{names:?}");
        assert!(providers().iter().all(|p| p.integration_count > 0));
    }
}
