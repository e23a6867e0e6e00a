//! Our OpenAPI document against AutoGPT's (v0.6.44), for every operation we
//! serve that the reference has: parameters, request bodies and success
//! responses, property by property (names, types, required), through nested
//! schemas. Every difference is either listed in [`ALLOWED`] with its reason
//! or fails the test; a listed difference that no longer occurs fails it too,
//! so the list stays true.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{send, spawn_app};

/// Differences kept on purpose, each with its reason.
const ALLOWED: &[(&str, &str)] = &[
    // API keys that expire (issue 19).
    ("CreateAPIKeyRequest.expires_at: not in the reference", "an optional expiry: the reference's APIKeyInfo has expires_at but no way to set it"),
    // Onboarding (issue 19).
    ("POST /api/onboarding/step 200: type {\"object\"}, reference {\"any\"}", "typed here: the onboarding as it stands after the step"),
    // The builder's menu (issue 19).
    ("GET /api/builder/blocks parameter query category: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/builder/blocks parameter query provider: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/builder/blocks parameter query type: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or one of the four kinds"),
    ("GET /api/builder/search parameter query by_creator: type {\"array\"}, reference {\"array\", \"null\"}", "a list query parameter is absent or repeated; there is no null in a query string"),
    ("GET /api/builder/search parameter query filter: type {\"array\"}, reference {\"array\", \"null\"}", "a list query parameter is absent or repeated; there is no null in a query string"),
    ("GET /api/builder/search parameter query search_id: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/builder/search parameter query search_query: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    // Uploads, store search, execution analytics (issue 19).
    ("POST /api/store/submissions/media 200: type {\"string\"}, reference {\"any\"}", "typed here: the media's URL, a JSON string, as AutoGPT answers"),
    ("GET /api/store/search parameter query content_types: type {\"array\"}, reference {\"array\", \"null\"}", "a list query parameter is absent or repeated; there is no null in a query string"),
    ("GET /api/executions/admin/execution_accuracy_trends parameter query user_id: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("ExecutionAnalyticsResponse.status_counts: not in the reference", "an addition: the runs matching the request per status, which the read model knows (no summaries are generated here)"),
    // Human review (issue 18).
    ("PendingHumanReviewModel.payload: type {\"any\"}, reference {\"array\", \"boolean\", \"integer\", \"null\", \"number\", \"object\", \"string\"}", "any JSON value: the same set, as an unconstrained schema"),
    ("ReviewItem.reviewed_data: type {\"any\"}, reference {\"array\", \"boolean\", \"integer\", \"null\", \"number\", \"object\", \"string\"}", "any JSON value: the same set, as an unconstrained schema"),
    // The store (issue 10).
    ("GET /api/library/agents/marketplace/{store_listing_version_id} 200: type {\"object\"}, reference {\"null\", \"object\"}", "an agent not in the library is a 404, never a null body"),
    ("GET /api/store/admin/listings parameter query search: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/store/admin/listings parameter query status: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or one of the statuses"),
    ("GET /api/store/admin/submissions/download/{store_listing_version_id} 200: type {\"object\"}, reference {\"any\"}", "typed here: the file is the graph's JSON"),
    ("GET /api/store/agents parameter query category: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/store/agents parameter query creator: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/store/agents parameter query search_query: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/store/agents parameter query sorted_by: type {\"string\"}, reference {\"null\", \"string\"}", "an enum of the four orders AutoGPT accepts, rather than any string"),
    ("GET /api/store/creators parameter query search_query: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/store/creators parameter query sorted_by: type {\"string\"}, reference {\"null\", \"string\"}", "an enum of the three orders AutoGPT accepts, rather than any string"),
    ("GET /api/store/download/agents/{store_listing_version_id} 200: type {\"object\"}, reference {\"any\"}", "typed here: the file is the graph's JSON"),
    ("StoreAgentDetails.has_approved_version: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("StoreListingWithVersions.has_approved_version: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("StoreListingWithVersions.versions: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GET /api/library/presets parameter query graph_id: type {\"string\"}, reference {\"null\", \"string\"}", "required and a string: there is no null in a query string"),
    ("LibraryAgentPreset.is_active: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("StoreSubmission.categories: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("BaseGraph-Input: free-form here, the reference names 11 properties", "sub-graphs are kept as submitted, not run or validated yet (executions issue)"),
    ("BaseGraph-Output: free-form here, the reference names 17 properties", "sub-graphs are served as they were submitted"),
    ("DELETE /api/library/agents/{library_agent_id} success statuses: ours [\"204\"], reference [\"200\", \"204\"]", "AutoGPT answers 204 with no body; its 200 is FastAPI's default entry, never sent"),
    ("GET /api/graphs/{graph_id} parameter query version: type {\"integer\"}, reference {\"integer\", \"null\"}", "a query parameter is absent or a number; there is no null in a query string"),
    ("GET /api/graphs/{graph_id}/versions/{version} parameter path version: type {\"integer\"}, reference {\"integer\", \"null\"}", "a path segment cannot be null"),
    ("GET /api/library/agents parameter query search_term: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/library/agents/by-graph/{graph_id} parameter query version: type {\"integer\"}, reference {\"integer\", \"null\"}", "a query parameter is absent or a number"),
    ("GET /health 200: type {\"object\"}, reference {\"any\"}", "typed here: the reference leaves the body untyped"),
    ("Graph.id: type {\"null\", \"string\"}, reference {\"string\"}", "a new graph may send id null; ids are assigned on save either way"),
    ("Graph.version: type {\"integer\", \"null\"}, reference {\"integer\"}", "a new graph may send version null; versions are assigned on save"),
    ("GraphMeta.id: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphMeta.is_active: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphMeta.sub_graphs: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphMeta.version: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphModel.id: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphModel.links: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphModel.nodes: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphModel.sub_graphs: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphModel.version: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("LibraryAgent.settings: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("Node.input_links: missing", "links come from the graph's links; a node's own lists are ignored on input"),
    ("Node.metadata: type {\"any\"}, reference {\"object\"}", "kept as sent: graphs saved before may hold metadata that is not an object, and their events must still decode"),
    ("Node.output_links: missing", "links come from the graph's links; a node's own lists are ignored on input"),
    ("NodeModel.id: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("NodeModel.input_default: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("NodeModel.input_links: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("NodeModel.metadata: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("NodeModel.output_links: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("POST /api/auth/user 200: type {\"object\"}, reference {\"any\"}", "typed here (UserView): the reference leaves the body untyped"),
    ("PUT /api/graphs/{graph_id}/versions/active 200: type {\"null\", \"string\"}, reference {\"any\"}", "typed here: the reference leaves the body untyped"),
    ("Webhook: free-form here, the reference names 11 properties", "NodeModel.webhook, AutoGPT's legacy trigger on a node, is always null here; triggered presets serve theirs typed (LibraryAgentPreset.webhook)"),
    ("POST /api/integrations/{provider}/webhooks/{webhook_id}/ingress 200: type {\"object\"}, reference {\"any\"}", "typed here: AutoGPT answers null, this names the run the delivery started"),
    ("POST /api/integrations/webhooks/{webhook_id}/ping 200: type {\"boolean\"}, reference {\"any\"}", "typed here: the reference leaves the body untyped; AutoGPT answers a boolean too"),
    ("commands document 202", "a committed command whose body could not be built answers 202 rather than an error (core hardening §1)"),
    ("GraphExecutionMeta.inputs: type {\"object\"}, reference {\"null\", \"object\"}", "a run always has its inputs, {} when none were given"),
    ("GraphExecutionMeta.is_shared: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("POST /api/graphs/{graph_id}/execute/{graph_version} parameter path graph_version: type {\"integer\"}, reference {\"integer\", \"null\"}", "a path segment cannot be null"),
    ("POST /api/graphs/{graph_id}/execute/{graph_version} parameter query preset_id: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("Stats.cost: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("Stats.duration: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("Stats.duration_cpu_only: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("Stats.node_error_count: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("Stats.node_exec_count: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("Stats.node_exec_time: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("Stats.node_exec_time_cpu_only: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GET /api/credits/admin/users_history parameter query search: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/credits/admin/users_history parameter query transaction_filter: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/credits/transactions parameter query transaction_time: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("GET /api/credits/transactions parameter query transaction_type: type {\"string\"}, reference {\"null\", \"string\"}", "a query parameter is absent or a string"),
    ("UserTransaction.amount: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("UserTransaction.current_balance: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("UserTransaction.running_balance: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("UserTransaction.transaction_key: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("UserTransaction.transaction_time: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("UserTransaction.transaction_type: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("POST /api/graphs/{graph_id}/executions/{graph_exec_id}/share body: ours has none, reference has one", "any body is ignored: AutoGPT's ShareRequest is an empty object"),
    ("UserTransaction.usage_start_time: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("UserTransaction.usage_node_count: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("APIKeyInfo.type: required true", "always present in our answers (`api_key`); pydantic marks defaulted fields optional"),
    ("GraphExecutionJobInfo.input_credentials: required true", "always present in our answers; pydantic marks defaulted fields optional"),
    ("GraphExecutionJobInfo.timezone: required true", "always present in our answers; pydantic marks defaulted fields optional"),
];

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/autogpt-openapi-v0.6.44.json");

/// The status every command documents for "committed, body not built"
/// (`api::consistency::Committed`); reported once, not per route.
const COMMITTED: &str = "202";

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn our_schemas_match_the_reference_property_by_property() {
    let app = spawn_app().await;
    let (status, ours) = send(app.anonymous(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    let text = std::fs::read_to_string(REFERENCE).unwrap_or_else(|e| panic!("{REFERENCE}: {e}"));
    let reference: Value = serde_json::from_str(&text).expect("reference document");

    let mut diff = Diff { ours: &ours, reference: &reference, seen: HashSet::new(), found: BTreeSet::new() };
    let mut compared = 0;
    for (path, item) in ours["paths"].as_object().expect("paths") {
        for method in METHODS {
            let (Some(op), Some(theirs)) = (item.get(method), reference["paths"][path].get(method)) else { continue };
            compared += 1;
            diff.operation(&format!("{} {path}", method.to_uppercase()), op, theirs);
        }
    }
    assert!(compared >= 20, "only {compared} operations compared: is the reference's path prefix still /api?");

    let allowed: BTreeMap<&str, &str> = ALLOWED.iter().copied().collect();
    let unexpected: Vec<&String> = diff.found.iter().filter(|d| !allowed.contains_key(d.as_str())).collect();
    let stale: Vec<&&str> = allowed.keys().filter(|d| !diff.found.contains(**d)).collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "differences from the reference not allowed:\n{}\nallowed but no longer found:\n{}",
        unexpected.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"),
        stale.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"),
    );
}

/// The comparison's state: both documents, the pairs of named schemas
/// already compared, and the differences found.
struct Diff<'a> {
    ours: &'a Value,
    reference: &'a Value,
    seen: HashSet<(String, String)>,
    found: BTreeSet<String>,
}

impl<'a> Diff<'a> {
    fn operation(&mut self, label: &str, ours: &'a Value, theirs: &'a Value) {
        self.parameters(label, ours, theirs);
        let body = |op: &'a Value| op.pointer("/requestBody/content/application~1json/schema");
        match (body(ours), body(theirs)) {
            (Some(o), Some(r)) => self.root(&format!("{label} body"), o, r),
            (None, None) => {}
            (o, _) => {
                self.found.insert(format!("{label} body: ours {}, reference {}", some(o), some(body(theirs))));
            }
        }
        let successes = |op: &'a Value| -> BTreeMap<&'a str, &'a Value> {
            op["responses"].as_object().map_or_else(BTreeMap::new, |r| {
                r.iter().filter(|(code, _)| code.starts_with('2')).map(|(c, v)| (c.as_str(), v)).collect()
            })
        };
        let (mut o, r) = (successes(ours), successes(theirs));
        if o.contains_key(COMMITTED) && !r.contains_key(COMMITTED) {
            o.remove(COMMITTED);
            self.found.insert(format!("commands document {COMMITTED}"));
        }
        if o.keys().ne(r.keys()) {
            self.found.insert(format!("{label} success statuses: ours {:?}, reference {:?}", o.keys(), r.keys()));
        }
        for (code, response) in &o {
            let schema = |v: &'a Value| v.pointer("/content/application~1json/schema");
            if let (Some(os), Some(rs)) = (schema(response), r.get(code).and_then(|v| schema(v))) {
                self.root(&format!("{label} {code}"), os, rs);
            }
        }
    }

    fn parameters(&mut self, label: &str, ours: &'a Value, theirs: &'a Value) {
        let params = |op: &'a Value, doc: &'a Value| -> BTreeMap<String, &'a Value> {
            op["parameters"].as_array().map_or_else(BTreeMap::new, |ps| {
                ps.iter()
                    .map(|p| deref(doc, p).0)
                    .filter(|p| p["in"] == "query" || p["in"] == "path")
                    .map(|p| (format!("{} {}", p["in"].as_str().unwrap_or(""), p["name"].as_str().unwrap_or("")), p))
                    .collect()
            })
        };
        let (o, r) = (params(ours, self.ours), params(theirs, self.reference));
        for (name, rp) in &r {
            let Some(op) = o.get(name) else {
                self.found.insert(format!("{label} parameter {name}: missing"));
                continue;
            };
            let required = |p: &Value| p["required"].as_bool().unwrap_or(false);
            if required(op) != required(rp) {
                self.found.insert(format!("{label} parameter {name}: required {}", required(op)));
            }
            let (a, b) = (types(self.ours, &op["schema"]), types(self.reference, &rp["schema"]));
            if a != b {
                self.found.insert(format!("{label} parameter {name}: type {a:?}, reference {b:?}"));
            }
        }
        for name in o.keys().filter(|n| !r.contains_key(*n)) {
            self.found.insert(format!("{label} parameter {name}: not in the reference"));
        }
    }

    fn root(&mut self, label: &str, ours: &'a Value, theirs: &'a Value) {
        let (a, b) = (types(self.ours, ours), types(self.reference, theirs));
        if a != b {
            self.found.insert(format!("{label}: type {a:?}, reference {b:?}"));
        }
        self.schema(label.to_owned(), ours, theirs);
    }

    /// Compare two schemas' structure; named schemas are labelled by the
    /// reference's name and compared once.
    fn schema(&mut self, at: String, ours: &'a Value, theirs: &'a Value) {
        let (o, our_name) = non_null(self.ours, ours);
        let (r, their_name) = non_null(self.reference, theirs);
        let at = match their_name {
            Some(name) => {
                if !self.seen.insert((our_name.unwrap_or_default(), name.clone())) {
                    return;
                }
                name
            }
            None => at,
        };
        if let Some(rp) = r.get("properties").and_then(Value::as_object) {
            let Some(op) = o.get("properties").and_then(Value::as_object) else {
                self.found.insert(format!("{at}: free-form here, the reference names {} properties", rp.len()));
                return;
            };
            let (oreq, rreq) = (required(o), required(r));
            for (name, rs) in rp {
                let Some(os) = op.get(name) else {
                    self.found.insert(format!("{at}.{name}: missing"));
                    continue;
                };
                let (a, b) = (types(self.ours, os), types(self.reference, rs));
                if a != b {
                    self.found.insert(format!("{at}.{name}: type {a:?}, reference {b:?}"));
                }
                if oreq.contains(name) != rreq.contains(name) {
                    self.found.insert(format!("{at}.{name}: required {}", oreq.contains(name)));
                }
                self.schema(format!("{at}.{name}"), os, rs);
            }
            for name in op.keys().filter(|n| !rp.contains_key(*n)) {
                self.found.insert(format!("{at}.{name}: not in the reference"));
            }
        }
        if let (Some(oi), Some(ri)) = (o.get("items"), r.get("items")) {
            self.schema(format!("{at}[]"), oi, ri);
        }
        let map = |s: &'a Value| s.get("additionalProperties").filter(|v| v.is_object());
        if let (Some(oa), Some(ra)) = (map(o), map(r)) {
            self.schema(format!("{at}{{}}"), oa, ra);
        }
    }
}

fn some(v: Option<&Value>) -> &'static str {
    if v.is_some() {
        "has one"
    } else {
        "has none"
    }
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .map_or_else(BTreeSet::new, |r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
}

/// Follow `$ref`s (and one-element `allOf`s, pydantic's way of annotating a
/// reference) to the schema itself, with the last component name met. An
/// `allOf` of several objects (ours, for flattened structs) is compared as
/// the one object it describes.
fn deref<'a>(doc: &'a Value, mut schema: &'a Value) -> (&'a Value, Option<String>) {
    let mut name = None;
    loop {
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            let (kind, last) = target.trim_start_matches("#/components/").split_once('/').unwrap_or(("", target));
            name = Some(last.to_owned());
            schema = &doc["components"][kind][last];
            continue;
        }
        match schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            Some([one]) => schema = one,
            Some(parts) if !parts.is_empty() => return (merge_all_of(doc, parts), name),
            _ => return (schema, name),
        }
    }
}

/// One object schema with the properties and required names of all parts.
/// Leaked: the comparison holds borrowed schemas, and a test ends soon.
fn merge_all_of<'a>(doc: &'a Value, parts: &'a [Value]) -> &'a Value {
    let mut properties = serde_json::Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in parts {
        let (part, _) = deref(doc, part);
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            properties.extend(props.clone());
        }
        required.extend(part["required"].as_array().cloned().unwrap_or_default());
    }
    Box::leak(Box::new(serde_json::json!({"type": "object", "properties": properties, "required": required})))
}

/// The schema without its `null` alternative, for comparing structure
/// (nullability is compared through [`types`]).
fn non_null<'a>(doc: &'a Value, schema: &'a Value) -> (&'a Value, Option<String>) {
    let (schema, name) = deref(doc, schema);
    let alternatives = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Value::as_array);
    if let Some(alternatives) = alternatives {
        let rest: Vec<&Value> = alternatives.iter().filter(|s| s["type"] != "null").collect();
        if let [one] = rest.as_slice() {
            let (inner, inner_name) = deref(doc, one);
            return (inner, inner_name.or(name));
        }
    }
    (schema, name)
}

/// The JSON types a schema admits, `any` for an unconstrained one.
fn types(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let (schema, _) = deref(doc, schema);
    let mut out = BTreeSet::new();
    match schema.get("type") {
        Some(Value::String(t)) => {
            out.insert(t.clone());
        }
        Some(Value::Array(ts)) => out.extend(ts.iter().filter_map(Value::as_str).map(str::to_owned)),
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        for alternative in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.extend(types(doc, alternative));
        }
    }
    if out.is_empty() {
        let kind = if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
            "object"
        } else if let Some(first) = schema.get("enum").and_then(|e| e.get(0)).or_else(|| schema.get("const")) {
            json_type(first)
        } else {
            "any"
        };
        out.insert(kind.to_owned());
    }
    out
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
