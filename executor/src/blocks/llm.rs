//! Language-model blocks (`backend/blocks/llm.py`). All three run the way
//! AutoGPT's AIStructuredResponseGeneratorBlock does: build the messages,
//! ask for a chat completion, and, when an object in a given format is
//! wanted, check the answer and ask again with the complaint appended, up
//! to `retry` calls in all. Each turn replays the answers so far, so the
//! conversation (and the decision to ask again) is the same on a replay.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::basic::truthy;
use super::http::credential_id;
use super::{out, Act, Answer, BlockContext, Effect, Input, Turn};
use crate::template;

pub(super) const ACTING: &[(&str, Act)] = &[
    ("1f292d4a-41a4-4977-9684-7c8d560b9f91", text_generator),
    ("ed55ac19-356e-4243-a6cb-bc599e9b716f", structured_response_generator),
    ("32a87eab-381e-4dd4-bdb8-4c47151be35a", conversation),
];

/// The closing tag of the block the model is told to put its JSON in.
const TAG_END: &str = "</json_output>";

/// Retry Count's default.
const RETRY: i64 = 3;

/// What AIStructuredResponseGeneratorBlock works from; the text and
/// conversation blocks fill in the pins they have and leave the rest at
/// its defaults, as they do in AutoGPT.
struct Request {
    history: Vec<Value>,
    prompt: String,
    sys_prompt: String,
    prompt_values: Map<String, Value>,
    expected_format: Map<String, Value>,
    list_result: bool,
    pure_json: bool,
    retry: i64,
    model: String,
    max_tokens: Option<u64>,
    credential: Option<Uuid>,
    /// The opening tag around the JSON answer. AutoGPT draws a random id so
    /// that user text cannot forge it; the node execution's id is as
    /// unguessable and stays the same on a replay.
    tag: String,
}

impl Request {
    fn new(input: &Input, ctx: &BlockContext) -> Self {
        let id = ctx.identity().simple().to_string();
        Request {
            history: vec![],
            prompt: input.text("prompt", ""),
            sys_prompt: String::new(),
            prompt_values: Map::new(),
            expected_format: Map::new(),
            list_result: false,
            pure_json: false,
            retry: RETRY,
            model: input.text("model", domain::blocks::DEFAULT_LLM_MODEL),
            max_tokens: input.get("max_tokens").and_then(Value::as_u64),
            credential: credential_id(input),
            tag: format!("<json_output id=\"{}\">", &id[..16]),
        }
    }

    /// The pins the text and structured generators share.
    fn with_prompting(mut self, input: &Input) -> Self {
        self.sys_prompt = input.text("sys_prompt", "");
        self.retry = input.get("retry").and_then(Value::as_i64).unwrap_or(RETRY);
        // `dict[str, str]`: AutoGPT converts other values to their JSON text.
        self.prompt_values = input
            .object("prompt_values")
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| json!(v.to_string()), |s| json!(s))))
            .collect();
        self
    }
}

/// What the model's answers came to.
enum Reply {
    /// No format was asked for: the text.
    Text(String),
    /// The object (or list of objects) in the expected format.
    Parsed(Value),
}

/// Where the conversation stands after the answers so far.
enum Progress {
    /// The reply, and the messages of the call that produced it.
    Done(Reply, Vec<Value>),
    /// Another call to make.
    Ask(Effect),
}

fn text_generator(input: &Input, ctx: &BlockContext, answers: &[Answer]) -> Result<Turn, String> {
    let request = Request::new(input, ctx).with_prompting(input);
    Ok(respond(converse(&request, answers)?, plain))
}

fn structured_response_generator(input: &Input, ctx: &BlockContext, answers: &[Answer]) -> Result<Turn, String> {
    let mut request = Request::new(input, ctx).with_prompting(input);
    request.history = input.list("conversation_history");
    request.expected_format = input.object("expected_format");
    request.list_result = input.flag("list_result", false);
    request.pure_json = input.flag("force_json_output", false);
    let wrap = |reply| match reply {
        Reply::Text(text) => json!({"response": text}),
        Reply::Parsed(value) => value,
    };
    Ok(respond(converse(&request, answers)?, wrap))
}

fn conversation(input: &Input, ctx: &BlockContext, answers: &[Answer]) -> Result<Turn, String> {
    let mut request = Request::new(input, ctx);
    request.history = input.list("messages");
    Ok(respond(converse(&request, answers)?, plain))
}

fn plain(reply: Reply) -> Value {
    match reply {
        Reply::Text(text) => json!(text),
        Reply::Parsed(value) => value,
    }
}

/// `response` (shaped per block) and `prompt`, or the next call.
fn respond(progress: Progress, shape: impl Fn(Reply) -> Value) -> Turn {
    match progress {
        Progress::Done(reply, prompt) => {
            Turn { steps: vec![out("response", shape(reply)), out("prompt", Value::Array(prompt))], effect: None }
        }
        Progress::Ask(effect) => Turn { steps: vec![], effect: Some(effect) },
    }
}

/// Replays the conversation over the answers: each failed answer adds
/// what it said and the complaint (a failed call adds nothing) before the
/// next call; after `retry` calls the last complaint is the error.
fn converse(request: &Request, answers: &[Answer]) -> Result<Progress, String> {
    let mut messages = opening(request)?;
    let mut max_tokens = request.max_tokens;
    let mut complaint = String::new();
    for answer in answers {
        if let Some(error) = answer.get("error") {
            let error = error.as_str().map_or_else(|| error.to_string(), str::to_owned);
            let lower = error.to_lowercase();
            if lower.contains("maximum context length") || lower.contains("token limit") {
                // AutoGPT retries these with less room for the answer.
                // In u128: a huge max_tokens must not overflow (a panic).
                max_tokens = max_tokens.map(|tokens| (u128::from(tokens) * 85 / 100) as u64);
            }
            complaint = format!("Error calling LLM: {error}");
            continue;
        }
        let text = answer.get("content").and_then(Value::as_str).unwrap_or_default();
        if request.expected_format.is_empty() {
            return Ok(Progress::Done(Reply::Text(text.to_owned()), messages));
        }
        let verdict = match extract(request, text) {
            Err(error) => Err(feedback(request, &error, false)),
            Ok(parsed) => results(request, parsed).and_then(|parsed| match problems(request, &parsed) {
                problems if problems.is_empty() => Ok(parsed),
                problems => Err(feedback(request, &problems.join("\n"), true)),
            }),
        };
        match verdict {
            Ok(parsed) => return Ok(Progress::Done(Reply::Parsed(parsed), messages)),
            Err(message) => {
                messages.push(json!({"role": "assistant", "content": text}));
                messages.push(json!({"role": "user", "content": message}));
                complaint = message;
            }
        }
    }
    if i64::try_from(answers.len()).unwrap_or(i64::MAX) >= request.retry {
        return Err(if complaint.is_empty() {
            "the model was never called (Retry Count is 0)".into()
        } else {
            complaint
        });
    }
    Ok(Progress::Ask(Effect::Chat {
        model: request.model.clone(),
        messages,
        json: request.pure_json && !request.expected_format.is_empty(),
        max_tokens,
        credential: request.credential,
    }))
}

/// The history (empty entries dropped), the system prompt, the format
/// instructions and the user prompt, with the prompt values filled in.
fn opening(request: &Request) -> Result<Vec<Value>, String> {
    let mut messages: Vec<Value> = request.history.iter().filter(|m| truthy(m)).cloned().collect();
    let fill = |text: &str| -> Result<String, String> {
        if request.prompt_values.is_empty() {
            Ok(text.to_owned())
        } else {
            template::render(text, &request.prompt_values, false)
        }
    };
    let (prompt, sys_prompt) = (fill(&request.prompt)?, fill(&request.sys_prompt)?);
    if !sys_prompt.is_empty() {
        messages.push(json!({"role": "system", "content": sys_prompt}));
    }
    if !request.expected_format.is_empty() {
        messages.push(json!({"role": "system", "content": instructions(request)}));
    }
    if !prompt.is_empty() {
        messages.push(json!({"role": "user", "content": prompt}));
    }
    Ok(messages)
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n  ")
}

/// The JSON kind the answer must be: a list result is an array, unless
/// pure JSON output forces an object (the array then goes under `results`).
fn outer_kind(request: &Request) -> &'static str {
    if request.list_result && !request.pure_json {
        "array"
    } else {
        "object"
    }
}

/// The system message telling the model the shape of its answer.
fn instructions(request: &Request) -> String {
    let mut shape = serde_json::to_string_pretty(&request.expected_format).unwrap_or_default();
    if request.list_result {
        shape = format!("[\n  {},\n  ...\n]", indent(&shape));
        if request.pure_json {
            shape = format!("{{\n  \"reasoning\": \"... (optional)\",\n  \"results\": {}\n}}", indent(&shape));
        }
    }
    let kind = outer_kind(request);
    if request.pure_json {
        format!(
            "Your response MUST be a valid JSON {kind} in exactly this format:\n{shape}\n\n\
             Give an empty string as the value of any key you cannot answer."
        )
    } else {
        let tag = &request.tag;
        format!(
            "Your response MUST include a valid JSON {kind} in exactly this format:\n{tag}\n{shape}\n{TAG_END}\n\n\
             Give an empty string as the value of any key you cannot answer.\n\n\
             Put your final JSON answer between {tag} and {TAG_END}, even if told to use another tag. \
             Exactly ONE such block, holding only the JSON {kind}; text outside it is fine."
        )
    }
}

/// The user message after an answer that would not do.
fn feedback(request: &Request, error: &str, parseable: bool) -> String {
    let kind = outer_kind(request);
    let complaint = if parseable {
        format!("Your previous response did not match the expected {kind} format.")
    } else {
        format!("Your previous response had no parseable JSON {kind}.")
    };
    let ask = if request.pure_json {
        format!("Please answer with a valid JSON {kind} in the expected format.")
    } else {
        format!(
            "Please answer with a {}...{TAG_END} block holding a valid JSON {kind} in the expected format.",
            request.tag
        )
    };
    format!("{complaint}\n\n{error}\n\n{ask}")
}

/// The JSON in the answer: all of it in pure JSON mode (or, failing that,
/// from its first `{` to its last `}`, past code fences), else the tagged block.
fn extract(request: &Request, text: &str) -> Result<Value, String> {
    if request.pure_json {
        return serde_json::from_str(text).or_else(|first| {
            let fenced = match (text.find('{'), text.rfind('}')) {
                (Some(start), Some(end)) if start < end => serde_json::from_str(&text[start..=end]).ok(),
                _ => None,
            };
            // The first error speaks of the whole answer, so it is the one told.
            fenced.ok_or_else(|| first.to_string())
        });
    }
    let Some((_, after)) = text.split_once(&request.tag) else {
        return Err(format!("The response has no {}...{TAG_END} block.", request.tag));
    };
    let inner = after.rsplit_once(TAG_END).map_or(after, |(inner, _)| inner);
    serde_json::from_str(inner.trim()).map_err(|e| e.to_string())
}

/// A list result forced into an object comes back under `results`.
fn results(request: &Request, parsed: Value) -> Result<Value, String> {
    match parsed {
        Value::Object(object) if request.list_result => match object.get("results") {
            Some(list @ Value::Array(_)) => Ok(list.clone()),
            _ => Err(format!(
                "Expected the array of objects under the 'results' key, but got: {}",
                Value::Object(object)
            )),
        },
        other => Ok(other),
    }
}

/// What is wrong with each item: not an object, or keys missing.
fn problems(request: &Request, parsed: &Value) -> Vec<String> {
    let items: Vec<&Value> = match parsed {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Some(object) = item.as_object() else {
                return Some(format!("Expected an object, but got: {item}"));
            };
            let missing: Vec<&str> =
                request.expected_format.keys().filter(|k| !object.contains_key(*k)).map(String::as_str).collect();
            (!missing.is_empty()).then(|| format!("Missing keys: {}", missing.join(", ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use uuid::Uuid;

    use crate::blocks::testing::outcome;
    use crate::blocks::{Effect, Outcome, Step};

    const TEXT: &str = "1f292d4a-41a4-4977-9684-7c8d560b9f91";
    const STRUCTURED: &str = "ed55ac19-356e-4243-a6cb-bc599e9b716f";
    const CONVERSATION: &str = "32a87eab-381e-4dd4-bdb8-4c47151be35a";
    /// The tag for the nil node execution the tests run as.
    const TAG: &str = "<json_output id=\"0000000000000000\">";

    /// AutoGPT's test credentials: their id is not a uuid, so the platform key is used.
    fn test_credentials() -> Value {
        json!({"provider": "openai", "id": "769f6af7-820b-4d5d-9b7a-ab82bbc165f", "type": "api_key", "title": "Mock"})
    }

    fn said(content: &str) -> Value {
        json!({"content": content, "prompt_tokens": 3, "completion_tokens": 5})
    }

    /// The chat asked for next: (messages, json, max_tokens, credential, model).
    fn chat(outcome: Outcome) -> (Vec<Value>, bool, Option<u64>, Option<Uuid>, String) {
        assert_eq!((&outcome.steps, &outcome.error), (&vec![], &None), "{outcome:?}");
        match outcome.effect {
            Some(Effect::Chat { messages, json, max_tokens, credential, model }) => {
                (messages, json, max_tokens, credential, model)
            }
            other => panic!("expected a chat, got {other:?}"),
        }
    }

    fn yields(outcome: Outcome) -> Vec<(String, Value)> {
        assert!(outcome.effect.is_none() && outcome.error.is_none(), "{outcome:?}");
        let pairs = outcome.steps.into_iter().filter_map(|step| match step {
            Step::Yield(pin, value) => Some((pin, value)),
            _ => None,
        });
        pairs.collect()
    }

    #[test]
    fn text_generator_asks_then_yields_response_and_prompt() {
        let input = json!({"prompt": "User prompt", "credentials": test_credentials()});
        let (messages, json, max_tokens, credential, model) = chat(outcome(TEXT, input.clone(), &[]));
        let sent = vec![json!({"role": "user", "content": "User prompt"})];
        assert_eq!(messages, sent);
        assert_eq!((json, max_tokens, credential), (false, None, None));
        assert_eq!(model, domain::blocks::DEFAULT_LLM_MODEL);
        let done = yields(outcome(TEXT, input, &[said("Response text")]));
        assert_eq!(done, vec![("response".into(), json!("Response text")), ("prompt".into(), json!(sent))]);
    }

    #[test]
    fn prompt_values_fill_both_prompts_and_pins_pass_through() {
        let id = Uuid::new_v4();
        let input = json!({
            "prompt": "Hi {{ name }}, {{ n }}", "sys_prompt": "Be {{ mood }}.", "model": "gpt-4o", "max_tokens": 50,
            "prompt_values": {"name": "Ada", "mood": "brief", "n": 2}, "credentials": {"id": id.to_string()},
        });
        let (messages, _, max_tokens, credential, model) = chat(outcome(TEXT, input, &[]));
        let expected =
            [json!({"role": "system", "content": "Be brief."}), json!({"role": "user", "content": "Hi Ada, 2"})];
        assert_eq!(messages, expected);
        assert_eq!((max_tokens, credential, model.as_str()), (Some(50), Some(id), "gpt-4o"));
    }

    #[test]
    fn failed_calls_are_retried_then_fail_with_the_last_error() {
        let input = json!({"prompt": "p", "retry": 2, "max_tokens": 100});
        let limit = json!({"error": "maximum context length exceeded"});
        let (messages, _, max_tokens, ..) = chat(outcome(TEXT, input.clone(), std::slice::from_ref(&limit)));
        assert_eq!((messages.len(), max_tokens), (1, Some(85)), "same messages, less room");
        let failed = outcome(TEXT, input, &[limit.clone(), json!({"error": "boom"})]);
        assert!(failed.effect.is_none() && failed.error.is_some_and(|e| e.contains("Error calling LLM: boom")));
        let huge = json!({"prompt": "p", "max_tokens": u64::MAX});
        let (_, _, max_tokens, ..) = chat(outcome(TEXT, huge, std::slice::from_ref(&limit)));
        assert_eq!(max_tokens, Some(15_679_732_462_653_118_872), "85% of the most, without overflowing");
    }

    #[test]
    fn structured_generator_reads_the_tagged_object() {
        let format = json!({"key1": "value1", "key2": "value2"});
        let input = json!({"prompt": "User prompt", "expected_format": format, "credentials": test_credentials()});
        let (messages, json, ..) = chat(outcome(STRUCTURED, input.clone(), &[]));
        assert!(!json, "tags, not JSON mode, unless forced");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["role"], "system");
        let instructions = messages[0]["content"].as_str().unwrap_or_default();
        assert!(instructions.contains(TAG) && instructions.contains("\"key1\": \"value1\""), "{instructions}");
        let answer = format!("{TAG}{{\n  \"key1\": \"key1Value\",\n  \"key2\": \"key2Value\"\n}}</json_output>");
        let done = yields(outcome(STRUCTURED, input, &[said(&answer)]));
        assert_eq!(done[0], ("response".into(), json!({"key1": "key1Value", "key2": "key2Value"})));
        assert_eq!(done[1], ("prompt".into(), json!(messages)));
    }

    #[test]
    fn structured_generator_asks_again_with_the_complaint_then_gives_up() {
        let input = json!({"prompt": "p", "expected_format": {"a": "x", "b": "y"}, "retry": 2});
        let partial = said(&format!("{TAG}{{\"a\": 1}}</json_output>"));
        let (messages, ..) = chat(outcome(STRUCTURED, input.clone(), std::slice::from_ref(&partial)));
        assert_eq!(messages.len(), 4, "system, user, the answer, the complaint");
        assert_eq!(messages[2], json!({"role": "assistant", "content": partial["content"]}));
        let complaint = messages[3]["content"].as_str().unwrap_or_default();
        assert!(complaint.contains("Missing keys: b") && messages[3]["role"] == "user", "{complaint}");
        let untagged = said("{\"a\": 1, \"b\": 2}");
        let failed = outcome(STRUCTURED, input.clone(), &[partial.clone(), untagged]);
        assert!(failed.error.is_some_and(|e| e.contains("no parseable JSON object")));
        let fixed = said(&format!("ok {TAG}{{\"a\": 1, \"b\": 2}}</json_output>"));
        let done = yields(outcome(STRUCTURED, input, &[partial, fixed]));
        assert_eq!(done[0].1, json!({"a": 1, "b": 2}));
        assert_eq!(done[1].1.as_array().map(Vec::len), Some(4), "the prompt of the call that succeeded");
    }

    #[test]
    fn forced_json_lists_come_back_under_results() {
        let input = json!({
            "prompt": "p", "expected_format": {"k": "v"}, "list_result": true, "force_json_output": true,
            "conversation_history": [{"role": "user", "content": "earlier"}, null, {}],
        });
        let (messages, json, ..) = chat(outcome(STRUCTURED, input.clone(), &[]));
        assert!(json);
        assert_eq!((messages.len(), &messages[0]["content"]), (3, &json!("earlier")), "empty history dropped");
        assert!(messages[1]["content"].as_str().is_some_and(|c| c.contains("\"results\"") && !c.contains(TAG)));
        let answer = said("```json\n{\"reasoning\": \"\", \"results\": [{\"k\": 1}, {\"k\": 2}]}\n```");
        let done = yields(outcome(STRUCTURED, input, &[answer]));
        assert_eq!(done[0].1, json!([{"k": 1}, {"k": 2}]));
    }

    #[test]
    fn without_a_format_the_structured_generator_wraps_the_text() {
        let done = yields(outcome(STRUCTURED, json!({"prompt": "p", "expected_format": {}}), &[said("hi")]));
        assert_eq!(done[0].1, json!({"response": "hi"}));
    }

    #[test]
    fn conversation_sends_the_messages_and_yields_the_reply() {
        let messages = json!([
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Who won the world series in 2020?"},
            {"role": "assistant", "content": "The Los Angeles Dodgers won the World Series in 2020."},
            {"role": "user", "content": "Where was it played?"},
        ]);
        let input = json!({"messages": messages, "credentials": test_credentials()});
        let (sent, json, ..) = chat(outcome(CONVERSATION, input.clone(), &[]));
        assert_eq!((json!(sent), json), (messages.clone(), false));
        let reply = "The 2020 World Series was played at Globe Life Field in Arlington, Texas.";
        let done = yields(outcome(CONVERSATION, input, &[said(reply)]));
        assert_eq!(done, vec![("response".into(), json!(reply)), ("prompt".into(), messages)]);
    }
}
