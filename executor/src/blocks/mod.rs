//! What each network-free block does when it runs, with AutoGPT's outputs
//! (reference §5; behaviour and test cases from `backend/blocks/*.py`).
//! A block is a pure function of its input and the run's context; waiting
//! (CountdownTimer) is a step the worker carries out, so a stop can cut it.
//! What one input can make a block do is bounded (the lists and texts it
//! builds, how deep what it yields nests, its repeats and waits): past a
//! bound, and on a panic, the block fails with an error, never the worker.

mod basic;
mod convert;
mod data;
mod http;
mod io;
mod llm;
mod logic;
mod review;
mod text;
mod time;
mod webhook;
mod xml;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// What a block knows of the run it is part of.
#[derive(Debug, Clone)]
pub struct BlockContext {
    /// Who runs it.
    pub user_id: Uuid,
    /// The run.
    pub execution_id: Uuid,
    /// The run's graph.
    pub graph_id: Uuid,
    /// The node execution.
    pub node_exec_id: Uuid,
    /// The user's chosen timezone, for clock blocks told to use it.
    pub user_timezone: Option<String>,
    /// The clock, read once for the step (in a replay, when the recorded
    /// node execution began).
    pub now: DateTime<Utc>,
    /// In a replay, the recorded node execution this one re-runs: what a
    /// block derives from its node execution's identity derives from that
    /// one, so its requests match the recording.
    pub recorded_as: Option<Uuid>,
}

impl BlockContext {
    /// The node execution's identity for what a block derives from it.
    pub fn identity(&self) -> Uuid {
        self.recorded_as.unwrap_or(self.node_exec_id)
    }
}

/// One step of a block's run.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A value on an output pin.
    Yield(String, Value),
    /// Wait this long before the next step.
    Sleep(Duration),
    /// Store `value` under the storage key for the user, then yield it on
    /// `value` (PersistInformationBlock).
    Persist {
        /// Scope and key.
        storage_key: String,
        /// What to store.
        value: Value,
    },
    /// Yield on `value` what is stored under the key, else `default`
    /// (RetrieveInformationBlock).
    Recall {
        /// Scope and key.
        storage_key: String,
        /// What to yield when nothing is stored.
        default: Value,
    },
}

/// A block's input, as the block reads it: null values dropped, as AutoGPT
/// drops them so that the field's default applies.
pub struct Input<'a>(&'a Map<String, Value>);

impl<'a> Input<'a> {
    /// The value of a field, if given and not null.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// A field's value or null.
    pub fn value(&self, field: &str) -> Value {
        self.get(field).cloned().unwrap_or(Value::Null)
    }

    /// A text field (other values in their JSON form), or `default`.
    pub fn text(&self, field: &str, default: &str) -> String {
        match self.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => default.to_owned(),
        }
    }

    /// A boolean field, or `default`.
    pub fn flag(&self, field: &str, default: bool) -> bool {
        self.get(field).and_then(Value::as_bool).unwrap_or(default)
    }

    /// A list field (a lone value as a one-item list), or empty.
    pub fn list(&self, field: &str) -> Vec<Value> {
        match self.get(field) {
            Some(Value::Array(items)) => items.clone(),
            Some(other) => vec![other.clone()],
            None => vec![],
        }
    }

    /// An object field, or empty.
    pub fn object(&self, field: &str) -> Map<String, Value> {
        match self.get(field) {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        }
    }
}

/// The steps of a block, or the message it failed with.
pub type BlockResult = Result<Vec<Step>, String>;

type Run = fn(&Input, &BlockContext) -> BlockResult;

/// Something a block needs from outside the run: the worker carries it out
/// with the one shared client (limits, SSRF guard, the credential's secret
/// applied there and only there) and records the answer in the run's
/// stream, so a takeover or a replay finds it instead of calling out again.
/// It names a credential by id, never its secret.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    /// One HTTP exchange.
    Http {
        /// The method, upper case.
        method: String,
        /// The URL.
        url: String,
        /// Request headers, in order.
        headers: Vec<(String, String)>,
        /// The request body, if any.
        body: Option<String>,
        /// A host-scoped credential whose headers are added when its host
        /// matches the URL's.
        credential: Option<Uuid>,
    },
    /// One chat completion from an OpenAI-compatible server.
    Chat {
        /// The model name, passed through.
        model: String,
        /// The messages, `{role, content}` each.
        messages: Vec<Value>,
        /// Ask for a JSON object answer (`response_format`).
        json: bool,
        /// The most tokens to generate.
        max_tokens: Option<u64>,
        /// The API-key credential to call with; the platform's own key
        /// when none.
        credential: Option<Uuid>,
    },
    /// A human's decision on data (the run pauses until it comes).
    Review {
        /// The data to review.
        payload: Value,
        /// What the reviewer is told.
        instructions: Option<String>,
        /// Whether the reviewer may edit the data.
        editable: bool,
        /// Seconds until it times out; none waits for ever.
        timeout_seconds: Option<u64>,
        /// What a timeout decides: `approve`, `reject` or `fail`.
        timeout_action: String,
    },
}

/// A block's answer to the effects it asked for so far, in order: for
/// `Http`, `{"status", "headers": {name: value}, "body": text}`; for
/// `Chat`, `{"content", "prompt_tokens", "completion_tokens"}`; for either,
/// `{"error": text}` when the outside world could not be reached.
pub type Answer = Value;

/// One turn of a block that talks to the outside world: what it yields on
/// the answers so far, and what it asks for next (none: it is done).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Turn {
    /// Steps of this turn (its yields).
    pub steps: Vec<Step>,
    /// What it needs next; `None` ends the block.
    pub effect: Option<Effect>,
}

/// A block with effects: called again with every answer so far, until its
/// turn asks for nothing more. Pure, so a replay decides the same.
type Act = fn(&Input, &BlockContext, &[Answer]) -> Result<Turn, String>;

/// What running a block produced: its steps and, when it failed (raised or
/// yielded `error`), the error text AutoGPT stores on the `error` pin.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Steps before the failure, or all of them.
    pub steps: Vec<Step>,
    /// The failure, formatted as AutoGPT's `BlockError` prints.
    pub error: Option<String>,
    /// What the block asks for before it can go on (never with `error`).
    pub effect: Option<Effect>,
}

static RUNNERS: LazyLock<HashMap<&'static str, Run>> = LazyLock::new(|| {
    let mut runners: HashMap<&'static str, Run> = HashMap::new();
    for family in
        [io::RUNNERS, basic::RUNNERS, text::RUNNERS, logic::RUNNERS, data::RUNNERS, time::RUNNERS, xml::RUNNERS]
    {
        runners.extend(family.iter().copied());
    }
    runners.extend(webhook::RUNNERS.iter().copied());
    #[cfg(test)]
    runners.insert(testing::PANICKING, testing::panicking);
    runners
});

static ACTORS: LazyLock<HashMap<&'static str, Act>> = LazyLock::new(|| {
    let mut actors: HashMap<&'static str, Act> = HashMap::new();
    for family in [http::ACTING, llm::ACTING, review::ACTING] {
        actors.extend(family.iter().copied());
    }
    actors
});

/// Whether the executor can run this block.
pub fn is_supported(block_id: &str) -> bool {
    RUNNERS.contains_key(block_id) || ACTORS.contains_key(block_id)
}

/// Run a block on its input, with no answers from outside yet.
pub fn run(block_id: &str, input: &Map<String, Value>, ctx: &BlockContext) -> Outcome {
    run_turn(block_id, input, ctx, &[])
}

/// Run a block on its input and the answers to the effects it asked for so
/// far. A yielded `error` ends it as a failure, with the steps before it
/// kept, as AutoGPT's `Block.execute` raises there.
pub fn run_turn(block_id: &str, input: &Map<String, Value>, ctx: &BlockContext, answers: &[Answer]) -> Outcome {
    let fail = |message: &str| block_error(block_id, message);
    let call: Box<dyn Fn() -> Result<Turn, String> + '_> = if let Some(actor) = ACTORS.get(block_id) {
        Box::new(move || actor(&Input(input), ctx, answers))
    } else if let Some(runner) = RUNNERS.get(block_id) {
        Box::new(move || runner(&Input(input), ctx).map(|steps| Turn { steps, effect: None }))
    } else {
        return Outcome { steps: vec![], error: Some(fail("this block cannot run here")), effect: None };
    };
    // A block is pure: a panic in it leaves nothing half-done behind, so it
    // can be caught and end the node FAILED (as AutoGPT wraps an unexpected
    // exception in `BlockUnknownError`) instead of killing the worker's task
    // and leaving the node in flight for ever.
    let turn = std::panic::catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let message = panic_message(panic.as_ref());
        tracing::error!(block_id, %message, "a block panicked");
        Err(message)
    });
    match turn {
        Ok(Turn { steps, effect }) => {
            let cut = steps.iter().enumerate().find_map(|(at, step)| match step {
                Step::Yield(pin, Value::String(s)) if pin == "error" => Some((at, s.clone())),
                Step::Yield(pin, other) if pin == "error" => Some((at, other.to_string())),
                Step::Yield(_, value) | Step::Persist { value, .. } if deeper_than(value, MAX_NESTING) => {
                    Some((at, format!("the output is nested deeper than {MAX_NESTING} levels")))
                }
                _ => None,
            });
            match cut {
                Some((at, message)) => {
                    Outcome { steps: steps[..at].to_vec(), error: Some(fail(&message)), effect: None }
                }
                None => Outcome { steps, error: None, effect },
            }
        }
        Err(message) => Outcome { steps: vec![], error: Some(fail(&message)), effect: None },
    }
}

/// Whether `value` nests more than `levels` arrays and objects deep
/// (recursing no deeper than that).
fn deeper_than(value: &Value, levels: usize) -> bool {
    match value {
        Value::Array(items) => levels == 0 || items.iter().any(|v| deeper_than(v, levels - 1)),
        Value::Object(map) => levels == 0 || map.values().any(|v| deeper_than(v, levels - 1)),
        _ => false,
    }
}

/// Most items of a list, or entries of a dictionary, a block builds:
/// AutoGPT's bound on StepThroughItems, applied to every collection a block
/// grows, so that a loop cannot grow one without end.
pub const MAX_ITEMS: usize = 10_000;

/// Longest text a block builds, in bytes: the request body limit's default,
/// and AutoGPT's bound on the XML parser's input.
pub const MAX_TEXT_BYTES: usize = 10 * 1024 * 1024;

/// Deepest a value a block yields may nest. Each value is recorded inside
/// an event and read back with serde_json, which refuses more than 128
/// levels: a deeper one (a list added to itself in a loop, deep markup, a
/// deep JSON answer) would leave its run's stream unreadable, so it fails
/// the node instead, with room left for the envelopes around it.
pub const MAX_NESTING: usize = 100;

/// `Err` unless a collection of `len` items is within [`MAX_ITEMS`].
fn within_items(what: &str, len: usize) -> Result<(), String> {
    if len > MAX_ITEMS {
        return Err(format!("Too many items in {what}: {len} (max {MAX_ITEMS})"));
    }
    Ok(())
}

/// `Err` unless a text of `len` bytes is within [`MAX_TEXT_BYTES`].
fn within_text(what: &str, len: usize) -> Result<(), String> {
    if len > MAX_TEXT_BYTES {
        return Err(format!("{what} too large: {len} bytes (max {MAX_TEXT_BYTES} bytes)"));
    }
    Ok(())
}

/// A block's failure as AutoGPT's `BlockError` prints it.
pub(crate) fn block_error(block_id: &str, message: &str) -> String {
    let name = domain::blocks::find(block_id).map_or("UnknownBlock", |b| b.name);
    format!("raised by {name} with message: {message}. block_id: {block_id}")
}

/// The text a panic was raised with.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the block panicked".to_owned())
}

/// `Step::Yield` of a pin and value.
fn out(pin: &str, value: impl Into<Value>) -> Step {
    Step::Yield(pin.to_owned(), value.into())
}

#[cfg(test)]
pub(crate) mod testing {
    use serde_json::{json, Value};
    use uuid::Uuid;

    use super::{run, run_turn, Answer, BlockContext, BlockResult, Input, Outcome, Step};

    /// A block that panics, as a bug in a block's pure code would.
    pub const PANICKING: &str = "00000000-0000-4000-8000-00000000dead";

    /// Indexes past the end of its `items`: a panic in pure code.
    pub fn panicking(input: &Input, _: &BlockContext) -> BlockResult {
        let items = input.list("items");
        Ok(vec![super::out("item", items[7].clone())])
    }

    /// A run with nil ids and no timezone.
    pub fn context() -> BlockContext {
        BlockContext {
            user_id: Uuid::nil(),
            execution_id: Uuid::nil(),
            graph_id: Uuid::nil(),
            node_exec_id: Uuid::nil(),
            user_timezone: None,
            now: chrono::Utc::now(),
            recorded_as: None,
        }
    }

    /// One turn of a block with effects, on a JSON input and made-up answers.
    pub fn outcome(block_id: &str, input: Value, answers: &[Answer]) -> Outcome {
        run_turn(block_id, input.as_object().expect("an object"), &context(), answers)
    }

    /// Run a block on a JSON input and list what it yielded (`error` last
    /// when it failed).
    pub fn yields(block_id: &str, input: Value) -> Vec<(String, Value)> {
        let outcome = run(block_id, input.as_object().expect("an object"), &context());
        let mut out: Vec<(String, Value)> = outcome
            .steps
            .into_iter()
            .filter_map(|s| match s {
                Step::Yield(pin, value) => Some((pin, value)),
                _ => None,
            })
            .collect();
        if let Some(error) = outcome.error {
            out.push(("error".into(), json!(error)));
        }
        out
    }

    /// `(pin, value)` pairs from JSON, for comparing with [`yields`].
    pub fn expect(pairs: Value) -> Vec<(String, Value)> {
        pairs
            .as_array()
            .expect("pairs")
            .iter()
            .map(|p| (p[0].as_str().expect("pin").to_owned(), p[1].clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::testing::{outcome, PANICKING};

    #[test]
    fn a_panicking_block_fails_with_autogpts_error_text_instead_of_unwinding() {
        let failed = outcome(PANICKING, json!({"items": [1, 2]}), &[]);
        let error = failed.error.expect("an error, not a panic");
        assert!(error.starts_with("raised by UnknownBlock with message: index out of bounds"), "{error}");
        assert!(error.ends_with(&format!("block_id: {PANICKING}")), "{error}");
        assert!(failed.steps.is_empty() && failed.effect.is_none());
    }

    #[test]
    fn a_value_nested_deeper_than_the_log_can_read_back_fails_the_node() {
        let nest = |levels: usize| (0..levels).fold(json!("v"), |inner, _| json!([inner]));
        let store = "1ff065e9-88e8-4358-9d82-8dc91f622ba9";
        let kept = outcome(store, json!({"input": nest(100)}), &[]);
        assert_eq!((kept.steps.len(), kept.error), (1, None), "the deepest allowed");
        let refused = outcome(store, json!({"input": nest(101)}), &[]);
        assert!(refused.steps.is_empty(), "{refused:?}");
        let error = refused.error.expect("an error");
        assert!(error.contains("the output is nested deeper than 100 levels"), "{error}");
        let persist = "1d055e55-a2b9-4547-8311-907d05b0304d";
        assert!(outcome(persist, json!({"key": "k", "value": nest(101)}), &[]).error.is_some());
    }
}
