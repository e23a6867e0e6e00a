//! Language-model blocks (`backend/blocks/llm.py`) with their per-model
//! run costs (`backend/data/block_cost_config.py`). The model picker in the
//! builder reads the `model` pin's enum and `llm_model_metadata`, and the
//! credentials pin's `discriminator_mapping` to know which provider's key a
//! chosen model needs.

use serde_json::{json, Map, Value};

use super::schema::{any_of, boolean, credentials, dict_type, integer, list, nullable, string, typed, Field, Schema};
use super::{Block, BlockCost, AI};

/// AITextGeneratorBlock.
pub(super) const TEXT_GENERATOR: &str = "1f292d4a-41a4-4977-9684-7c8d560b9f91";
/// AIStructuredResponseGeneratorBlock.
pub(super) const STRUCTURED_RESPONSE_GENERATOR: &str = "ed55ac19-356e-4243-a6cb-bc599e9b716f";
/// AIConversationBlock.
pub(super) const CONVERSATION: &str = "32a87eab-381e-4dd4-bdb8-4c47151be35a";

/// The `model` pin's default (AutoGPT's `DEFAULT_LLM_MODEL`).
pub const DEFAULT_MODEL: &str = "gpt-5.2-2025-12-11";

/// The providers `AICredentials` accepts, in its `Literal` order.
const PROVIDERS: [&str; 8] = ["aiml_api", "anthropic", "groq", "ollama", "openai", "open_router", "llama_api", "v0"];

/// The providers charged for, in the order AutoGPT lists their costs
/// (Ollama runs locally and costs nothing).
const CHARGED: [&str; 7] = ["anthropic", "openai", "groq", "open_router", "llama_api", "v0", "aiml_api"];

/// One `LlmModel` member: value, provider, display name, provider name,
/// creator, price tier, credits per run.
type Model = (&'static str, &'static str, &'static str, &'static str, &'static str, u8, i64);

/// `LlmModel` at v0.6.44, in enum order, with `MODEL_METADATA` and `MODEL_COST`.
#[rustfmt::skip]
const MODELS: &[Model] = &[
    ("o3-mini", "openai", "O3 Mini", "OpenAI", "OpenAI", 1, 2),
    ("o3-2025-04-16", "openai", "O3", "OpenAI", "OpenAI", 2, 4),
    ("o1", "openai", "O1", "OpenAI", "OpenAI", 3, 16),
    ("o1-mini", "openai", "O1 Mini", "OpenAI", "OpenAI", 2, 4),
    ("gpt-5.2-2025-12-11", "openai", "GPT-5.2", "OpenAI", "OpenAI", 3, 6),
    ("gpt-5.1-2025-11-13", "openai", "GPT-5.1", "OpenAI", "OpenAI", 2, 5),
    ("gpt-5-2025-08-07", "openai", "GPT-5", "OpenAI", "OpenAI", 1, 2),
    ("gpt-5-mini-2025-08-07", "openai", "GPT-5 Mini", "OpenAI", "OpenAI", 1, 1),
    ("gpt-5-nano-2025-08-07", "openai", "GPT-5 Nano", "OpenAI", "OpenAI", 1, 1),
    ("gpt-5-chat-latest", "openai", "GPT-5 Chat Latest", "OpenAI", "OpenAI", 2, 5),
    ("gpt-4.1-2025-04-14", "openai", "GPT-4.1", "OpenAI", "OpenAI", 1, 2),
    ("gpt-4.1-mini-2025-04-14", "openai", "GPT-4.1 Mini", "OpenAI", "OpenAI", 1, 1),
    ("gpt-4o-mini", "openai", "GPT-4o Mini", "OpenAI", "OpenAI", 1, 1),
    ("gpt-4o", "openai", "GPT-4o", "OpenAI", "OpenAI", 2, 3),
    ("gpt-4-turbo", "openai", "GPT-4 Turbo", "OpenAI", "OpenAI", 3, 10),
    ("gpt-3.5-turbo", "openai", "GPT-3.5 Turbo", "OpenAI", "OpenAI", 1, 1),
    ("claude-opus-4-1-20250805", "anthropic", "Claude Opus 4.1", "Anthropic", "Anthropic", 3, 21),
    ("claude-opus-4-20250514", "anthropic", "Claude Opus 4", "Anthropic", "Anthropic", 3, 21),
    ("claude-sonnet-4-20250514", "anthropic", "Claude Sonnet 4", "Anthropic", "Anthropic", 2, 5),
    ("claude-opus-4-5-20251101", "anthropic", "Claude Opus 4.5", "Anthropic", "Anthropic", 3, 14),
    ("claude-sonnet-4-5-20250929", "anthropic", "Claude Sonnet 4.5", "Anthropic", "Anthropic", 3, 9),
    ("claude-haiku-4-5-20251001", "anthropic", "Claude Haiku 4.5", "Anthropic", "Anthropic", 2, 4),
    ("claude-3-haiku-20240307", "anthropic", "Claude 3 Haiku", "Anthropic", "Anthropic", 1, 1),
    ("Qwen/Qwen2.5-72B-Instruct-Turbo", "aiml_api", "Qwen 2.5 72B Instruct Turbo", "AI/ML", "Qwen", 1, 1),
    ("nvidia/llama-3.1-nemotron-70b-instruct", "aiml_api", "Llama 3.1 Nemotron 70B Instruct", "AI/ML", "Nvidia", 1, 1),
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "aiml_api", "Llama 3.3 70B Instruct Turbo", "AI/ML", "Meta", 1, 1),
    ("meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "aiml_api", "Llama 3.1 70B Instruct Turbo", "AI/ML", "Meta", 1, 1),
    ("meta-llama/Llama-3.2-3B-Instruct-Turbo", "aiml_api", "Llama 3.2 3B Instruct Turbo", "AI/ML", "Meta", 1, 1),
    ("llama-3.3-70b-versatile", "groq", "Llama 3.3 70B Versatile", "Groq", "Meta", 1, 1),
    ("llama-3.1-8b-instant", "groq", "Llama 3.1 8B Instant", "Groq", "Meta", 1, 1),
    ("llama3.3", "ollama", "Llama 3.3", "Ollama", "Meta", 1, 1),
    ("llama3.2", "ollama", "Llama 3.2", "Ollama", "Meta", 1, 1),
    ("llama3", "ollama", "Llama 3", "Ollama", "Meta", 1, 1),
    ("llama3.1:405b", "ollama", "Llama 3.1 405B", "Ollama", "Meta", 1, 1),
    ("dolphin-mistral:latest", "ollama", "Dolphin Mistral Latest", "Ollama", "Mistral AI", 1, 1),
    ("openai/gpt-oss-120b", "open_router", "GPT-OSS 120B", "OpenRouter", "OpenAI", 1, 1),
    ("openai/gpt-oss-20b", "open_router", "GPT-OSS 20B", "OpenRouter", "OpenAI", 1, 1),
    ("google/gemini-2.5-pro-preview-03-25", "open_router", "Gemini 2.5 Pro Preview 03.25", "OpenRouter", "Google", 2, 4),
    ("google/gemini-3-pro-preview", "open_router", "Gemini 3 Pro Preview", "OpenRouter", "Google", 2, 5),
    ("google/gemini-2.5-flash", "open_router", "Gemini 2.5 Flash", "OpenRouter", "Google", 1, 1),
    ("google/gemini-2.0-flash-001", "open_router", "Gemini 2.0 Flash 001", "OpenRouter", "Google", 1, 1),
    ("google/gemini-2.5-flash-lite-preview-06-17", "open_router", "Gemini 2.5 Flash Lite Preview 06.17", "OpenRouter", "Google", 1, 1),
    ("google/gemini-2.0-flash-lite-001", "open_router", "Gemini 2.0 Flash Lite 001", "OpenRouter", "Google", 1, 1),
    ("mistralai/mistral-nemo", "open_router", "Mistral Nemo", "OpenRouter", "Mistral AI", 1, 1),
    ("cohere/command-r-08-2024", "open_router", "Command R 08.2024", "OpenRouter", "Cohere", 1, 1),
    ("cohere/command-r-plus-08-2024", "open_router", "Command R Plus 08.2024", "OpenRouter", "Cohere", 2, 3),
    ("deepseek/deepseek-chat", "open_router", "DeepSeek Chat", "OpenRouter", "DeepSeek", 1, 2),
    ("deepseek/deepseek-r1-0528", "open_router", "DeepSeek R1 0528", "OpenRouter", "DeepSeek", 1, 1),
    ("perplexity/sonar", "open_router", "Sonar", "OpenRouter", "Perplexity", 1, 1),
    ("perplexity/sonar-pro", "open_router", "Sonar Pro", "OpenRouter", "Perplexity", 2, 5),
    ("perplexity/sonar-deep-research", "open_router", "Sonar Deep Research", "OpenRouter", "Perplexity", 3, 10),
    ("nousresearch/hermes-3-llama-3.1-405b", "open_router", "Hermes 3 Llama 3.1 405B", "OpenRouter", "Nous Research", 1, 1),
    ("nousresearch/hermes-3-llama-3.1-70b", "open_router", "Hermes 3 Llama 3.1 70B", "OpenRouter", "Nous Research", 1, 1),
    ("amazon/nova-lite-v1", "open_router", "Nova Lite V1", "OpenRouter", "Amazon", 1, 1),
    ("amazon/nova-micro-v1", "open_router", "Nova Micro V1", "OpenRouter", "Amazon", 1, 1),
    ("amazon/nova-pro-v1", "open_router", "Nova Pro V1", "OpenRouter", "Amazon", 1, 1),
    ("microsoft/wizardlm-2-8x22b", "open_router", "WizardLM 2 8x22B", "OpenRouter", "Microsoft", 1, 1),
    ("gryphe/mythomax-l2-13b", "open_router", "MythoMax L2 13B", "OpenRouter", "Gryphe", 1, 1),
    ("meta-llama/llama-4-scout", "open_router", "Llama 4 Scout", "OpenRouter", "Meta", 1, 1),
    ("meta-llama/llama-4-maverick", "open_router", "Llama 4 Maverick", "OpenRouter", "Meta", 1, 1),
    ("x-ai/grok-4", "open_router", "Grok 4", "OpenRouter", "xAI", 3, 9),
    ("x-ai/grok-4-fast", "open_router", "Grok 4 Fast", "OpenRouter", "xAI", 1, 1),
    ("x-ai/grok-4.1-fast", "open_router", "Grok 4.1 Fast", "OpenRouter", "xAI", 1, 1),
    ("x-ai/grok-code-fast-1", "open_router", "Grok Code Fast 1", "OpenRouter", "xAI", 1, 1),
    ("moonshotai/kimi-k2", "open_router", "Kimi K2", "OpenRouter", "Moonshot AI", 1, 1),
    ("qwen/qwen3-235b-a22b-thinking-2507", "open_router", "Qwen 3 235B A22B Thinking 2507", "OpenRouter", "Qwen", 1, 1),
    ("qwen/qwen3-coder", "open_router", "Qwen 3 Coder", "OpenRouter", "Qwen", 3, 9),
    ("Llama-4-Scout-17B-16E-Instruct-FP8", "llama_api", "Llama 4 Scout 17B 16E Instruct FP8", "Llama API", "Meta", 1, 1),
    ("Llama-4-Maverick-17B-128E-Instruct-FP8", "llama_api", "Llama 4 Maverick 17B 128E Instruct FP8", "Llama API", "Meta", 1, 1),
    ("Llama-3.3-8B-Instruct", "llama_api", "Llama 3.3 8B Instruct", "Llama API", "Meta", 1, 1),
    ("Llama-3.3-70B-Instruct", "llama_api", "Llama 3.3 70B Instruct", "Llama API", "Meta", 1, 1),
    ("v0-1.5-md", "v0", "v0 1.5 MD", "V0", "V0", 1, 1),
    ("v0-1.5-lg", "v0", "v0 1.5 LG", "V0", "V0", 1, 2),
    ("v0-1.0-md", "v0", "v0 1.0 MD", "V0", "V0", 1, 1),
];

pub(super) fn blocks() -> Vec<Block> {
    vec![structured_response_generator(), text_generator(), conversation()]
}

fn structured_response_generator() -> Block {
    let input = Schema::input()
        .field("prompt", prompt("The prompt to send to the language model."))
        .field(
            "expected_format",
            typed(json!({"type": "object", "additionalProperties": {"type": "string"}})).desc(
                "Expected format of the response. If provided, the response will be validated against this format. \
                 The keys should be the expected fields in the response, and the values should be the description of the field.",
            ),
        )
        .field(
            "list_result",
            boolean()
                .title("List Result")
                .desc("Whether the response should be a list of objects in the expected format.")
                .default(json!(false)),
        )
        .field("model", model("The language model to use for answering the prompt.").advanced(false))
        .field(
            "force_json_output",
            boolean().title("Restrict LLM to pure JSON output").default(json!(false)).desc(
                "Whether to force the LLM to produce a JSON-only response. This can increase the block's reliability, \
                 but may also reduce the quality of the response because it prohibits the LLM from reasoning \
                 before providing its JSON response.",
            ),
        )
        .field("credentials", ai_credentials())
        .field("sys_prompt", sys_prompt())
        .field(
            "conversation_history",
            nullable(json!({"type": "array", "items": dict_type()}))
                .desc("The conversation history to provide context for the prompt.")
                .factory(),
        )
        .field("retry", retry())
        .field("prompt_values", prompt_values())
        .field("max_tokens", max_tokens())
        .field(
            "compress_prompt_to_fit",
            boolean()
                .desc("Whether to compress the prompt to fit within the model's context window.")
                .default(json!(true))
                .advanced(true),
        )
        .field("ollama_host", ollama_host());
    let response = any_of(json!([dict_type(), {"type": "array", "items": dict_type()}]))
        .desc("The response object generated by the language model.");
    llm_block(
        STRUCTURED_RESPONSE_GENERATOR,
        "AIStructuredResponseGeneratorBlock",
        "A block that generates structured JSON responses using a Large Language Model (LLM), with schema validation and format enforcement.",
        input,
        response,
    )
}

fn text_generator() -> Block {
    let input = Schema::input()
        .field(
            "prompt",
            prompt(
                "The prompt to send to the language model. You can use any of the {keys} from Prompt Values to fill in \
                 the prompt with values from the prompt values dictionary by putting them in curly braces.",
            ),
        )
        .field("model", model("The language model to use for answering the prompt.").advanced(false))
        .field("credentials", ai_credentials())
        .field("sys_prompt", sys_prompt())
        .field("retry", retry())
        .field("prompt_values", prompt_values())
        .field("ollama_host", ollama_host())
        .field("max_tokens", max_tokens());
    llm_block(
        TEXT_GENERATOR,
        "AITextGeneratorBlock",
        "A block that produces text responses using a Large Language Model (LLM) based on customizable prompts and system instructions.",
        input,
        string().desc("The response generated by the language model."),
    )
}

fn conversation() -> Block {
    let input = Schema::input()
        .field("prompt", prompt("The prompt to send to the language model.").default(json!("")).advanced(false))
        .field("messages", list(json!({})).desc("List of messages in the conversation."))
        .field("model", model("The language model to use for the conversation."))
        .field("credentials", ai_credentials())
        .field("max_tokens", max_tokens())
        .field("ollama_host", ollama_host());
    llm_block(
        CONVERSATION,
        "AIConversationBlock",
        "A block that facilitates multi-turn conversations with a Large Language Model (LLM), maintaining context across message exchanges.",
        input,
        string().desc("The model's response to the conversation."),
    )
}

/// A block in the AI category whose outputs are `response` and the
/// `prompt` sent, charged per model.
fn llm_block(id: &'static str, name: &'static str, description: &'static str, input: Schema, response: Field) -> Block {
    let output = Schema::output()
        .field("response", response)
        .field("prompt", list(json!({})).desc("The prompt sent to the language model."));
    let mut block = Block::new(id, name, description, &[AI], input, output);
    block.costs = costs();
    block
}

fn prompt(description: &'static str) -> Field {
    string().desc(description).placeholder("Enter your prompt here...")
}

fn sys_prompt() -> Field {
    string()
        .title("System Prompt")
        .desc("The system prompt to provide additional context to the model.")
        .default(json!(""))
}

fn retry() -> Field {
    integer()
        .title("Retry Count")
        .desc("Number of times to retry the LLM call if the response does not match the expected format.")
        .default(json!(3))
}

fn prompt_values() -> Field {
    typed(json!({"type": "object", "additionalProperties": {"type": "string"}}))
        .desc(
            "Values used to fill in the prompt. The values can be used in the prompt by putting them in a double \
             curly braces, e.g. {{variable_name}}.",
        )
        .factory()
        .advanced(false)
}

fn max_tokens() -> Field {
    nullable(json!({"type": "integer"}))
        .desc("The maximum number of tokens to generate in the chat completion.")
        .default(Value::Null)
        .advanced(true)
}

fn ollama_host() -> Field {
    string().desc("Ollama host for local  models").default(json!("localhost:11434")).advanced(true)
}

/// The `model` pin: the `LlmModel` enum with the metadata its custom JSON
/// schema hook adds for the builder's picker.
fn model(description: &'static str) -> Field {
    let values: Vec<&str> = MODELS.iter().map(|m| m.0).collect();
    let metadata: Map<String, Value> = MODELS
        .iter()
        .map(|&(name, provider, title, provider_name, creator, tier, _)| {
            let entry = json!({
                "creator": creator,
                "creator_name": creator,
                "title": title,
                "provider": provider,
                "provider_name": provider_name,
                "name": name,
                "price_tier": tier,
            });
            (name.to_owned(), entry)
        })
        .collect();
    let schema = json!({
        "enum": values,
        "title": "LlmModel",
        "type": "string",
        "llm_model": true,
        "llm_model_metadata": metadata,
    });
    typed(schema).title("LLM Model").desc(description).default(json!(DEFAULT_MODEL))
}

/// `AICredentialsField()`: which provider's API key depends on the model.
fn ai_credentials() -> Field {
    let mapping: Map<String, Value> = MODELS.iter().map(|m| (m.0.to_owned(), json!(m.1))).collect();
    credentials(&PROVIDERS, &["api_key"])
        .desc("API key for the LLM provider.")
        .extra("discriminator", json!("model"))
        .extra("discriminator_mapping", Value::Object(mapping))
}

/// `LLM_COST`: one run-priced rule per charged model, grouped by provider.
/// AutoGPT's filters also name its own system credential for the provider;
/// here a run with no credential of the user's is the platform-key run, so
/// the filter is the model alone.
fn costs() -> Vec<BlockCost> {
    CHARGED
        .iter()
        .flat_map(|provider| MODELS.iter().filter(move |m| m.1 == *provider))
        .map(|m| BlockCost { cost_amount: m.6, cost_filter: json!({"model": m.0}), cost_type: "run" })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;

    use crate::blocks::find;

    use super::*;

    #[test]
    fn ids_names_and_required_pins() {
        for (id, name, required) in [
            (TEXT_GENERATOR, "AITextGeneratorBlock", vec!["prompt"]),
            (STRUCTURED_RESPONSE_GENERATOR, "AIStructuredResponseGeneratorBlock", vec!["prompt", "expected_format"]),
            (CONVERSATION, "AIConversationBlock", vec!["messages"]),
        ] {
            let b = find(id).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(b.name, name);
            assert_eq!(b.required_inputs(), required, "{name}");
            assert!(b.input_schema["required"].as_array().is_some_and(|r| r.contains(&json!("credentials"))));
            assert_eq!(b.block_type, crate::blocks::BlockType::Standard);
            assert_eq!(b.categories, vec![AI]);
            assert!(b.has_output("response") && b.has_output("prompt"), "{name}");
            let model = &b.input_schema["properties"]["model"];
            assert_eq!(model["default"], DEFAULT_MODEL);
            assert_eq!(model["title"], "LLM Model");
            assert_eq!(model["llm_model"], true);
            assert_eq!(model["llm_model_metadata"][DEFAULT_MODEL]["title"], "GPT-5.2");
        }
        let advanced = |id: &str| find(id).map(|b| b.input_schema["properties"]["model"]["advanced"].clone());
        assert_eq!(advanced(TEXT_GENERATOR), Some(json!(false)));
        assert_eq!(advanced(CONVERSATION), Some(json!(true)));
    }

    #[test]
    fn credentials_pin_is_a_credentials_meta_input_discriminated_by_model() {
        let b = find(TEXT_GENERATOR).expect("AITextGeneratorBlock");
        let creds = &b.input_schema["properties"]["credentials"];
        assert_eq!(creds["type"], "object");
        assert_eq!(creds["credentials_provider"], json!(PROVIDERS));
        assert_eq!(creds["credentials_types"], json!(["api_key"]));
        assert_eq!(creds["discriminator"], "model");
        assert_eq!(creds["discriminator_mapping"]["gpt-4o"], "openai");
        assert_eq!(creds["discriminator_mapping"]["claude-3-haiku-20240307"], "anthropic");
        assert_eq!(creds["required"], json!(["id", "provider", "type"]));
        assert_eq!(creds["properties"]["provider"]["enum"], json!(PROVIDERS));
        assert_eq!(creds["properties"]["type"]["const"], "api_key");
        assert_eq!(creds["description"], "API key for the LLM provider.");
        let title = creds["title"].as_str().unwrap_or_default();
        assert!(title.starts_with("CredentialsMetaInput[Literal[<ProviderName.AIML_API: 'aiml_api'>, "), "{title}");
        assert!(title.ends_with("<ProviderName.V0: 'v0'>], Literal['api_key']]"), "{title}");
        assert!(creds.get("advanced").is_none() && creds.get("secret").is_none(), "not a SchemaField");
        assert!(!b.required_inputs().contains(&"credentials"));
    }

    #[test]
    fn models_are_unique_and_every_provider_is_accepted() {
        let names: HashSet<&str> = MODELS.iter().map(|m| m.0).collect();
        assert_eq!(names.len(), MODELS.len());
        assert!(names.contains(DEFAULT_MODEL));
        assert!(MODELS.iter().all(|m| PROVIDERS.contains(&m.1) && (1..=3).contains(&m.5)));
    }

    #[test]
    fn costs_are_per_model_runs_without_ollama() {
        let b = find(STRUCTURED_RESPONSE_GENERATOR).expect("AIStructuredResponseGeneratorBlock");
        assert_eq!(b.costs.len(), MODELS.iter().filter(|m| m.1 != "ollama").count());
        assert!(b.costs.iter().all(|c| c.cost_type == "run"));
        assert_eq!(b.costs[0].cost_filter, json!({"model": "claude-opus-4-1-20250805"}), "Anthropic first");
        let run = |model: &str| {
            let input = json!({"model": model, "prompt": "hi"});
            b.run_cost(input.as_object().expect("object"))
        };
        assert_eq!(run("gpt-4o"), 3);
        assert_eq!(run("gpt-5.2-2025-12-11"), 6);
        assert_eq!(run("o1"), 16);
        assert_eq!(run("llama3"), 0, "Ollama is local");
        assert_eq!(b.to_api_json()["costs"][0]["cost_type"], "run");
    }
}
