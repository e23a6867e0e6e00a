//! The block catalog: the network-free AutoGPT blocks this platform can
//! place in graphs, with the ids, pins and flags AutoGPT (v0.6.44) serves
//! from `GET /api/blocks`. The schemas mirror what pydantic generates for
//! each block's `Input`/`Output` class so that clients built against
//! AutoGPT (the builder UI in particular) render them unchanged.

mod agent;
mod basic;
mod data;
mod http;
mod io;
mod llm;
mod logic;
pub mod review;
mod schema;
mod text;
mod time;
pub mod webhook;

use std::sync::OnceLock;

use serde_json::{json, Value};

use schema::Schema;

pub use llm::DEFAULT_MODEL as DEFAULT_LLM_MODEL;

/// AutoGPT's `BlockType`, serialized as its upper-case string ("STANDARD",
/// "INPUT", "OUTPUT", "NOTE", "AGENT", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockType {
    /// An ordinary processing block.
    Standard,
    /// A graph input (AgentInputBlock and its typed variants).
    Input,
    /// A graph output (AgentOutputBlock).
    Output,
    /// A sticky note; never executed.
    Note,
    /// A webhook-triggered block whose webhook is set up automatically.
    Webhook,
    /// A webhook-triggered block whose webhook the user sets up by hand.
    WebhookManual,
    /// A sub-agent (AgentExecutorBlock).
    Agent,
    /// An AI block.
    Ai,
    /// An Ayrshare social-media block.
    Ayrshare,
    /// A block that pauses for human review.
    HumanInTheLoop,
}

impl BlockType {
    /// The enum member name, e.g. `"STANDARD"` or `"WEBHOOK_MANUAL"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BlockType::Standard => "STANDARD",
            BlockType::Input => "INPUT",
            BlockType::Output => "OUTPUT",
            BlockType::Note => "NOTE",
            BlockType::Webhook => "WEBHOOK",
            BlockType::WebhookManual => "WEBHOOK_MANUAL",
            BlockType::Agent => "AGENT",
            BlockType::Ai => "AI",
            BlockType::Ayrshare => "AYRSHARE",
            BlockType::HumanInTheLoop => "HUMAN_IN_THE_LOOP",
        }
    }

    /// The enum member value, which AutoGPT serves as a block's `uiType`
    /// (e.g. `"Standard"`, `"Webhook (manual)"`).
    pub fn ui_type(&self) -> &'static str {
        match self {
            BlockType::Standard => "Standard",
            BlockType::Input => "Input",
            BlockType::Output => "Output",
            BlockType::Note => "Note",
            BlockType::Webhook => "Webhook",
            BlockType::WebhookManual => "Webhook (manual)",
            BlockType::Agent => "Agent",
            BlockType::Ai => "AI",
            BlockType::Ayrshare => "Ayrshare",
            BlockType::HumanInTheLoop => "Human In The Loop",
        }
    }
}

/// One cost rule: AutoGPT's `BlockCost`. It applies to a node whose input
/// contains `cost_filter` as a subset; `cost_type` is "run", "byte" or "second".
#[derive(Debug, Clone, PartialEq)]
pub struct BlockCost {
    /// Credits charged per unit of `cost_type`.
    pub cost_amount: i64,
    /// The subset of the node input this rule matches.
    pub cost_filter: Value,
    /// The unit: "run", "byte" or "second".
    pub cost_type: &'static str,
}

/// A block category as AutoGPT's `BlockCategory` gives it: (name, description).
type Category = (&'static str, &'static str);

const BASIC: Category = ("BASIC", "Block that performs basic operations.");
const INPUT: Category = ("INPUT", "Block that interacts with input of the graph.");
const OUTPUT: Category = ("OUTPUT", "Block that interacts with output of the graph.");
const LOGIC: Category = ("LOGIC", "Programming logic to control the flow of your agent");
const TEXT: Category = ("TEXT", "Block that processes text data.");
const DATA: Category = ("DATA", "Block that interacts with structured data.");
const AGENT: Category = ("AGENT", "Block that interacts with other agents.");
const AI: Category = ("AI", "Block that leverages AI to perform a task.");

/// A block definition.
#[derive(Debug, Clone)]
pub struct Block {
    /// Lower-case uuid string.
    pub id: &'static str,
    /// The Python class name, e.g. "StoreValueBlock".
    pub name: &'static str,
    /// What the block does, as shown in the builder.
    pub description: &'static str,
    /// (category, its description), e.g. ("BASIC", "Block that performs basic operations.").
    pub categories: Vec<(&'static str, &'static str)>,
    /// How the platform treats the block (graph input/output, note, sub-agent...).
    pub block_type: BlockType,
    /// Whether links leaving this block are forced static.
    pub static_output: bool,
    /// JSON Schema of the input pins, as pydantic generates it.
    pub input_schema: Value,
    /// JSON Schema of the output pins, always including the `error` pin.
    pub output_schema: Value,
    /// Credit cost rules; empty but for the language-model blocks, charged per model.
    pub costs: Vec<BlockCost>,
}

impl Block {
    /// A standard, non-static, free block; families adjust it with the
    /// `with_*` helpers below.
    fn new(
        id: &'static str,
        name: &'static str,
        description: &'static str,
        categories: &[Category],
        input: Schema,
        output: Schema,
    ) -> Self {
        Block {
            id,
            name,
            description,
            categories: categories.to_vec(),
            block_type: BlockType::Standard,
            static_output: false,
            input_schema: input.build(),
            output_schema: output.build(),
            costs: Vec::new(),
        }
    }

    fn with_type(mut self, block_type: BlockType) -> Self {
        self.block_type = block_type;
        self
    }

    fn with_static_output(mut self) -> Self {
        self.static_output = true;
        self
    }

    /// Whether `pin` is exactly a property name of the input schema.
    pub fn has_input(&self, pin: &str) -> bool {
        has_property(&self.input_schema, pin)
    }

    /// Whether `pin` is exactly a property name of the output schema.
    pub fn has_output(&self, pin: &str) -> bool {
        has_property(&self.output_schema, pin)
    }

    /// The input schema's `required` pins, without credentials pins (those
    /// are validated separately, as in AutoGPT).
    pub fn required_inputs(&self) -> Vec<&str> {
        self.input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).filter(|name| !is_credentials_field(name)).collect())
            .unwrap_or_default()
    }

    /// What running the block on `input` costs: the first cost whose
    /// filter is a subset of the input (AutoGPT's `block_usage_cost`; per
    /// byte or second costs are charged as one unit), else nothing.
    pub fn run_cost(&self, input: &serde_json::Map<String, Value>) -> i64 {
        self.costs
            .iter()
            .find(|cost| {
                cost.cost_filter.as_object().is_none_or(|filter| filter.iter().all(|(k, v)| input.get(k) == Some(v)))
            })
            .map_or(0, |cost| cost.cost_amount)
    }

    /// The block as one item of `GET /api/blocks` (AutoGPT's `BlockInfo`).
    pub fn to_api_json(&self) -> Value {
        let categories: Vec<Value> = self
            .categories
            .iter()
            .map(|(category, description)| json!({"category": category, "description": description}))
            .collect();
        let costs: Vec<Value> = self
            .costs
            .iter()
            .map(|c| json!({"cost_amount": c.cost_amount, "cost_filter": c.cost_filter, "cost_type": c.cost_type}))
            .collect();
        json!({
            "id": self.id,
            "name": self.name,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "description": self.description,
            "categories": categories,
            "contributors": [],
            "staticOutput": self.static_output,
            "uiType": self.block_type.ui_type(),
            "costs": costs,
        })
    }
}

fn has_property(schema: &Value, pin: &str) -> bool {
    schema.get("properties").and_then(Value::as_object).is_some_and(|props| props.contains_key(pin))
}

/// AutoGPT's naming rule for credentials inputs.
fn is_credentials_field(name: &str) -> bool {
    name == "credentials" || name.ends_with("_credentials")
}

/// Every block, built once, in a stable order.
pub fn catalog() -> &'static [Block] {
    static CATALOG: OnceLock<Vec<Block>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut all = Vec::new();
        all.extend(io::blocks());
        all.extend(basic::blocks());
        all.extend(logic::blocks());
        all.extend(text::blocks());
        all.extend(data::blocks());
        all.extend(time::blocks());
        all.extend(agent::blocks());
        all.extend(http::blocks());
        all.extend(llm::blocks());
        all.extend(webhook::blocks());
        all.extend(review::blocks());
        all
    })
}

/// Look a block up by id (case-insensitive uuid string).
pub fn find(id: &str) -> Option<&'static Block> {
    let id = id.trim();
    catalog().iter().find(|block| block.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn block(name: &str) -> &'static Block {
        catalog().iter().find(|b| b.name == name).unwrap_or_else(|| panic!("{name} missing from the catalog"))
    }

    #[test]
    fn every_id_is_a_unique_lowercase_uuid() {
        let mut seen = HashSet::new();
        for b in catalog() {
            let parsed = uuid::Uuid::parse_str(b.id).unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert_eq!(parsed.to_string(), b.id, "{} id is not canonical lower case", b.name);
            assert!(seen.insert(b.id), "duplicate id {}", b.id);
        }
    }

    #[test]
    fn names_are_unique_and_all_required_blocks_exist() {
        let names: HashSet<_> = catalog().iter().map(|b| b.name).collect();
        assert_eq!(names.len(), catalog().len());
        for name in [
            "AgentInputBlock",
            "AgentShortTextInputBlock",
            "AgentLongTextInputBlock",
            "AgentNumberInputBlock",
            "AgentDateInputBlock",
            "AgentTimeInputBlock",
            "AgentToggleInputBlock",
            "AgentDropdownInputBlock",
            "AgentTableInputBlock",
            "AgentOutputBlock",
            "StoreValueBlock",
            "PrintToConsoleBlock",
            "NoteBlock",
            "CalculatorBlock",
            "ConditionBlock",
            "IfInputMatchesBlock",
            "MatchTextPatternBlock",
            "FillTextTemplateBlock",
            "CombineTextsBlock",
            "TextSplitBlock",
            "TextReplaceBlock",
            "CreateDictionaryBlock",
            "FindInDictionaryBlock",
            "CreateListBlock",
            "AddToListBlock",
            "GetListItemBlock",
            "FindInListBlock",
            "ConcatenateListsBlock",
            "StepThroughItemsBlock",
            "GetCurrentTimeBlock",
            "GetCurrentDateBlock",
            "GetCurrentDateAndTimeBlock",
            "CountdownTimerBlock",
            "PersistInformationBlock",
            "RetrieveInformationBlock",
            "UniversalTypeConverterBlock",
            "ReverseListOrderBlock",
            "CountItemsBlock",
            "ExtractTextInformationBlock",
            "WordCharacterCountBlock",
            "AddToDictionaryBlock",
            "XMLParserBlock",
            "AgentExecutorBlock",
            "SendWebRequestBlock",
            "SendAuthenticatedWebRequestBlock",
            "AITextGeneratorBlock",
            "AIStructuredResponseGeneratorBlock",
            "AIConversationBlock",
        ] {
            assert!(names.contains(name), "{name} missing");
        }
    }

    #[test]
    fn find_is_case_insensitive() {
        let b = find("1FF065E9-88E8-4358-9D82-8DC91F622BA9").expect("StoreValueBlock by upper-case id");
        assert_eq!(b.name, "StoreValueBlock");
        assert_eq!(find("1ff065e9-88e8-4358-9d82-8dc91f622ba9").map(|b| b.name), Some("StoreValueBlock"));
        assert!(find("00000000-0000-0000-0000-000000000000").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn store_value_is_static_with_required_input_and_optional_data() {
        let b = block("StoreValueBlock");
        assert_eq!(b.id, "1ff065e9-88e8-4358-9d82-8dc91f622ba9");
        assert!(b.static_output);
        assert_eq!(b.block_type, BlockType::Standard);
        assert_eq!(b.required_inputs(), vec!["input"]);
        assert!(b.has_input("data"));
        assert_eq!(b.input_schema["properties"]["data"]["default"], Value::Null);
        assert!(b.has_output("output"));
        assert!(!b.has_input("output"));
    }

    #[test]
    fn agent_input_is_a_static_input_block_requiring_name() {
        let b = block("AgentInputBlock");
        assert_eq!(b.id, "c0a8e994-ebf1-4a9c-a4d8-89d09c86741b");
        assert_eq!(b.block_type, BlockType::Input);
        assert!(b.static_output);
        assert_eq!(b.required_inputs(), vec!["name"]);
        assert!(b.has_output("result"));
        for typed in ["AgentShortTextInputBlock", "AgentNumberInputBlock", "AgentTableInputBlock"] {
            let t = block(typed);
            assert_eq!(t.block_type, BlockType::Input, "{typed}");
            assert!(t.static_output, "{typed}");
            assert_eq!(t.required_inputs(), vec!["name"], "{typed}");
            assert_eq!(t.input_schema["properties"]["value"]["title"], "Default Value", "{typed}");
        }
    }

    #[test]
    fn agent_output_and_note_and_executor_types() {
        let out = block("AgentOutputBlock");
        assert_eq!(out.block_type, BlockType::Output);
        assert!(out.static_output);
        assert_eq!(out.required_inputs(), vec!["name"]);
        assert!(out.has_output("output") && out.has_output("name"));
        assert_eq!(block("NoteBlock").block_type, BlockType::Note);
        let exec = find("e189baac-8c20-45a1-94a7-55177ea42565").expect("AgentExecutorBlock");
        assert_eq!(exec.block_type, BlockType::Agent);
        for pin in ["user_id", "graph_id", "graph_version", "inputs", "input_schema", "output_schema"] {
            assert!(exec.required_inputs().contains(&pin), "{pin}");
        }
    }

    #[test]
    fn every_output_schema_has_error_and_schemas_are_objects() {
        for b in catalog() {
            assert!(b.has_output("error"), "{} lacks error", b.name);
            assert_eq!(b.output_schema["properties"]["error"]["type"], "string", "{}", b.name);
            for schema in [&b.input_schema, &b.output_schema] {
                assert_eq!(schema["type"], "object", "{}", b.name);
                assert!(schema["properties"].is_object(), "{}", b.name);
                for (pin, prop) in schema["properties"].as_object().into_iter().flatten() {
                    assert!(prop["title"].is_string(), "{}.{pin} has no title", b.name);
                    if is_credentials_field(pin) {
                        // A CredentialsField is not a SchemaField: no UI flags.
                        assert!(prop.get("advanced").is_none() && prop.get("secret").is_none(), "{}", b.name);
                        continue;
                    }
                    assert!(prop["advanced"].is_boolean(), "{}.{pin}", b.name);
                    assert_eq!(prop["secret"], false, "{}.{pin}", b.name);
                }
            }
            assert!(!b.categories.is_empty() || b.name == "XMLParserBlock", "{}", b.name);
            let charged = b.categories.contains(&AI);
            assert_eq!(b.costs.is_empty(), !charged, "{}", b.name);
        }
    }

    #[test]
    fn required_pins_are_never_advanced_and_defaults_are_optional() {
        for b in catalog() {
            let required: HashSet<&str> = b.required_inputs().into_iter().collect();
            for (pin, prop) in b.input_schema["properties"].as_object().into_iter().flatten() {
                if required.contains(pin.as_str()) {
                    assert_eq!(prop["advanced"], false, "{}.{pin}", b.name);
                    assert!(prop.get("default").is_none(), "{}.{pin}", b.name);
                }
            }
        }
    }

    #[test]
    fn credentials_pins_are_excluded_from_required_inputs() {
        let mut b = block("StoreValueBlock").clone();
        b.input_schema["required"] = json!(["input", "credentials", "openai_credentials"]);
        assert_eq!(b.required_inputs(), vec!["input"]);
    }

    #[test]
    fn credentials_pins_are_credentials_meta_inputs_outside_required_inputs() {
        let with_credentials: Vec<&Block> = catalog().iter().filter(|b| b.has_input("credentials")).collect();
        assert_eq!(with_credentials.len(), 4, "the authenticated request and the three LLM blocks");
        for b in with_credentials {
            let creds = &b.input_schema["properties"]["credentials"];
            assert_eq!(creds["type"], "object", "{}", b.name);
            assert!(creds["credentials_provider"].as_array().is_some_and(|p| !p.is_empty()), "{}", b.name);
            assert!(creds["credentials_types"].as_array().is_some_and(|t| !t.is_empty()), "{}", b.name);
            assert_eq!(creds["required"], json!(["id", "provider", "type"]), "{}", b.name);
            for pin in ["id", "title", "provider", "type"] {
                assert!(creds["properties"][pin].is_object(), "{}.credentials.{pin}", b.name);
            }
            assert!(creds["discriminator"].is_string(), "{}", b.name);
            let required = b.input_schema["required"].as_array().cloned().unwrap_or_default();
            assert!(required.contains(&json!("credentials")), "{}: pydantic lists it", b.name);
            assert!(!b.required_inputs().contains(&"credentials"), "{}: checked separately", b.name);
        }
    }

    #[test]
    fn enum_pins_carry_the_enum_class_title() {
        let calc = block("CalculatorBlock");
        let op = &calc.input_schema["properties"]["operation"];
        assert_eq!(op["title"], "Operation");
        assert_eq!(op["enum"], json!(["Add", "Subtract", "Multiply", "Divide", "Power"]));
        assert_eq!(calc.input_schema["properties"]["round_result"]["title"], "Round Result");
        assert_eq!(block("ConditionBlock").input_schema["properties"]["value1"]["title"], "Value1");
    }

    #[test]
    fn to_api_json_has_the_block_info_keys() {
        let v = block("AgentInputBlock").to_api_json();
        let keys: HashSet<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        let expected: HashSet<&str> = [
            "id",
            "name",
            "inputSchema",
            "outputSchema",
            "description",
            "categories",
            "contributors",
            "staticOutput",
            "uiType",
            "costs",
        ]
        .into_iter()
        .collect();
        assert_eq!(keys, expected);
        assert_eq!(v["uiType"], "Input");
        assert_eq!(v["staticOutput"], true);
        assert_eq!(v["contributors"], json!([]));
        assert_eq!(v["costs"], json!([]));
        assert_eq!(
            v["categories"],
            json!([
                {"category": "INPUT", "description": "Block that interacts with input of the graph."},
                {"category": "BASIC", "description": "Block that performs basic operations."}
            ])
        );
    }

    #[test]
    fn block_type_strings() {
        assert_eq!(BlockType::Standard.as_str(), "STANDARD");
        assert_eq!(BlockType::Agent.as_str(), "AGENT");
        assert_eq!(BlockType::WebhookManual.ui_type(), "Webhook (manual)");
        assert_eq!(block("NoteBlock").to_api_json()["uiType"], "Note");
    }

    #[test]
    fn python_title_matches_pydantic() {
        assert_eq!(schema::python_title("placeholder_values"), "Placeholder Values");
        assert_eq!(schema::python_title("value1"), "Value1");
        assert_eq!(schema::python_title("input_xml"), "Input Xml");
    }
}
