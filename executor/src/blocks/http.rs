//! HTTP requests (`backend/blocks/http.py`): one exchange, asked of the
//! worker as an effect, then sorted by status class onto `response`,
//! `client_error` or `server_error`.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{out, Act, Answer, BlockContext, Effect, Input, Step, Turn};

pub(super) const ACTING: &[(&str, Act)] = &[
    ("6595ae1f-b924-42cb-9a41-551a0611c4b4", send_web_request),
    ("fff86bcd-e001-4bad-a7f6-2eae4720c8dc", send_authenticated_web_request),
];

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];

fn send_web_request(input: &Input, _: &BlockContext, answers: &[Answer]) -> Result<Turn, String> {
    exchange(input, answers, None)
}

/// The credential goes by id; the worker adds its headers when its host
/// matches the URL, under the user's own headers (those win, as in AutoGPT).
fn send_authenticated_web_request(input: &Input, _: &BlockContext, answers: &[Answer]) -> Result<Turn, String> {
    let credential = credential_id(input).ok_or("credentials are required: a host-scoped credential's id")?;
    exchange(input, answers, Some(credential))
}

/// The `id` of the `credentials` pin, when it is a uuid.
pub(super) fn credential_id(input: &Input) -> Option<Uuid> {
    input.get("credentials")?.get("id")?.as_str().and_then(|id| Uuid::parse_str(id.trim()).ok())
}

/// The request first; its answer then decides the one output.
fn exchange(input: &Input, answers: &[Answer], credential: Option<Uuid>) -> Result<Turn, String> {
    match answers.first() {
        None => Ok(Turn { steps: vec![], effect: Some(request(input, credential)?) }),
        Some(answer) => Ok(Turn { steps: vec![reply(answer)?], effect: None }),
    }
}

/// The request as AutoGPT's block makes it: a text body that parses as
/// JSON is sent as that JSON, one that does not goes as form data; files
/// are not uploaded here.
fn request(input: &Input, credential: Option<Uuid>) -> Result<Effect, String> {
    let method = input.text("method", "POST").to_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(format!("unsupported HTTP method {method:?}"));
    }
    let mut headers: Vec<(String, String)> = input
        .object("headers")
        .into_iter()
        .map(|(name, value)| (name, value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
        .collect();
    let mut json_format = input.flag("json_format", true);
    let mut body = input.value("body");
    if let Value::String(text) = &body {
        match serde_json::from_str::<Value>(text) {
            Ok(parsed) => body = parsed,
            Err(_) => json_format = false,
        }
    }
    let (content_type, payload) = match (&body, json_format) {
        (Value::Null, _) => (None, None),
        (_, true) => (Some("application/json"), Some(body.to_string())),
        (Value::Object(fields), false) => (Some("application/x-www-form-urlencoded"), Some(form_encode(fields))),
        (Value::String(text), false) => (None, Some(text.clone())),
        (other, false) => (None, Some(other.to_string())),
    };
    if let Some(content_type) = content_type {
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }
    }
    Ok(Effect::Http { method, url: input.text("url", ""), headers, body: payload, credential })
}

/// `application/x-www-form-urlencoded`, as a client encodes a dict given
/// as form data; non-text values go as their JSON text.
fn form_encode(fields: &Map<String, Value>) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            format!("{}={}", percent_encode(name), percent_encode(&text))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The answer on its pin: a JSON body (by its content type) parsed, any
/// other as text; 2xx is a response, 4xx a client error, anything else a
/// server error. An answer that never reached the server is the error.
fn reply(answer: &Answer) -> Result<Step, String> {
    if let Some(error) = answer.get("error") {
        return Ok(out("error", error.as_str().map_or_else(|| error.to_string(), str::to_owned)));
    }
    let status = answer.get("status").and_then(Value::as_u64).ok_or("the HTTP answer has no status")?;
    let text = answer.get("body").and_then(Value::as_str).unwrap_or_default();
    let content_type = answer
        .get("headers")
        .and_then(Value::as_object)
        .and_then(|headers| headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type")))
        .and_then(|(_, value)| value.as_str())
        .unwrap_or_default();
    let result = if !content_type.starts_with("application/json") {
        Value::String(text.to_owned())
    } else if status == 204 {
        Value::Null
    } else {
        serde_json::from_str(text).map_err(|e| format!("the response is not valid JSON: {e}"))?
    };
    let pin = match status {
        200..=299 => "response",
        400..=499 => "client_error",
        _ => "server_error",
    };
    Ok(out(pin, result))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use uuid::Uuid;

    use crate::blocks::testing::outcome;
    use crate::blocks::{Effect, Step};

    const PLAIN: &str = "6595ae1f-b924-42cb-9a41-551a0611c4b4";
    const AUTHENTICATED: &str = "fff86bcd-e001-4bad-a7f6-2eae4720c8dc";

    fn request(block: &str, input: Value) -> Effect {
        let first = outcome(block, input, &[]);
        assert_eq!((first.steps.clone(), first.error.clone()), (vec![], None), "{first:?}");
        first.effect.expect("an HTTP request")
    }

    fn answered(input: Value, answer: Value) -> (Vec<Step>, Option<String>) {
        let done = outcome(PLAIN, input, &[answer]);
        assert!(done.effect.is_none(), "one exchange only");
        (done.steps, done.error)
    }

    fn yielded(pin: &str, value: Value) -> Vec<Step> {
        vec![Step::Yield(pin.to_owned(), value)]
    }

    #[test]
    fn posts_json_by_default_without_a_credential() {
        let effect = request(PLAIN, json!({"url": "https://api.example.com/x", "body": {"a": 1}}));
        let expected = Effect::Http {
            method: "POST".into(),
            url: "https://api.example.com/x".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Some(r#"{"a":1}"#.into()),
            credential: None,
        };
        assert_eq!(effect, expected);
    }

    #[test]
    fn text_bodies_go_as_json_when_they_parse_and_as_form_data_otherwise() {
        let Effect::Http { body, headers, .. } =
            request(PLAIN, json!({"url": "u", "method": "put", "body": "[1, 2]", "headers": {"content-type": "x/y"}}))
        else {
            panic!("an HTTP request")
        };
        assert_eq!((body.as_deref(), headers), (Some("[1,2]"), vec![("content-type".into(), "x/y".into())]));
        let Effect::Http { body, headers, .. } = request(PLAIN, json!({"url": "u", "body": "not json"})) else {
            panic!("an HTTP request")
        };
        assert_eq!((body.as_deref(), headers), (Some("not json"), vec![]));
        let form = json!({"url": "u", "json_format": false, "body": {"q": "a b&c", "n": 2}});
        let Effect::Http { body, headers, method, .. } = request(PLAIN, form) else { panic!("an HTTP request") };
        assert_eq!(method, "POST");
        assert_eq!(body.as_deref(), Some("q=a+b%26c&n=2"));
        assert_eq!(headers, vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())]);
        let Effect::Http { body, headers, .. } = request(PLAIN, json!({"url": "u", "method": "GET"})) else {
            panic!("an HTTP request")
        };
        assert_eq!((body, headers), (None, vec![]));
        assert!(outcome(PLAIN, json!({"url": "u", "method": "BREW"}), &[]).error.is_some());
    }

    #[test]
    fn answers_land_on_the_pin_of_their_status_class() {
        let input = json!({"url": "https://api.example.com"});
        let json_headers = json!({"Content-Type": "application/json; charset=utf-8"});
        let ok = json!({"status": 200, "headers": json_headers, "body": r#"{"id": 7}"#});
        assert_eq!(answered(input.clone(), ok), (yielded("response", json!({"id": 7})), None));
        let missing = json!({"status": 404, "headers": {}, "body": "Not Found"});
        assert_eq!(answered(input.clone(), missing), (yielded("client_error", json!("Not Found")), None));
        let down = json!({"status": 503, "headers": {"content-type": "text/plain"}, "body": "later"});
        assert_eq!(answered(input.clone(), down), (yielded("server_error", json!("later")), None));
        let empty = json!({"status": 204, "headers": {"content-type": "application/json"}, "body": ""});
        assert_eq!(answered(input.clone(), empty), (yielded("response", Value::Null), None));
        let (steps, error) = answered(input.clone(), json!({"error": "connection refused"}));
        assert!(steps.is_empty());
        assert!(error.is_some_and(|e| e.contains("connection refused") && e.contains("SendWebRequestBlock")));
        let broken = json!({"status": 200, "headers": {"content-type": "application/json"}, "body": "{"});
        assert!(answered(input, broken).1.is_some_and(|e| e.contains("not valid JSON")));
    }

    #[test]
    fn the_authenticated_request_names_its_credential() {
        let id = Uuid::parse_str("01234567-89ab-cdef-0123-456789abcdef").expect("uuid");
        let creds = json!({"provider": "http", "id": id.to_string(), "type": "host_scoped", "title": "Mock"});
        let input = json!({"url": "https://api.example.com", "method": "GET", "credentials": creds});
        let Effect::Http { credential, .. } = request(AUTHENTICATED, input.clone()) else { panic!("an HTTP request") };
        assert_eq!(credential, Some(id));
        let answer = json!({"status": 200, "headers": {}, "body": "ok"});
        assert_eq!(outcome(AUTHENTICATED, input, &[answer]).steps, yielded("response", json!("ok")));
        let without = outcome(AUTHENTICATED, json!({"url": "https://api.example.com"}), &[]);
        assert!(without.effect.is_none() && without.error.is_some_and(|e| e.contains("credentials")));
    }
}
