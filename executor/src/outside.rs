//! Carrying out what blocks ask of the outside world ([`Effect`]): one
//! shared client holds the limits and the SSRF guard, and a credential's
//! secret is opened here, for the one call, and goes nowhere else. Every
//! failure becomes an answer (`{"error": …}`) the block decides on, so a
//! run records what happened instead of stopping.

use std::sync::Arc;

use commands::services::{Commands, OpenCredential};
use commands::PgEventStore;
use domain::credential::CredentialKind;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::blocks::{Answer, Effect};
use crate::net::{HttpClient, HttpRequest, NetConfig};

/// Longest text of an error answer quoted from a server.
const QUOTED: usize = 500;

/// Where the LLM blocks' chat completions go.
#[derive(Clone)]
pub struct ModelApi {
    /// Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The platform's key, for blocks that name no credential.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for ModelApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelApi").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl Default for ModelApi {
    fn default() -> Self {
        Self { base_url: "https://api.openai.com/v1".into(), api_key: None }
    }
}

/// The worker's door to the outside world.
#[derive(Clone)]
pub struct Outside {
    client: HttpClient,
    model: Arc<ModelApi>,
}

impl std::fmt::Debug for Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outside").field("model", &self.model).finish_non_exhaustive()
    }
}

impl Default for Outside {
    fn default() -> Self {
        Self::new(HttpClient::new(NetConfig::default()), ModelApi::default())
    }
}

impl Outside {
    /// Calls through `client`, models at `model`.
    pub fn new(client: HttpClient, model: ModelApi) -> Self {
        Self { client, model: Arc::new(model) }
    }

    /// Run one block outside any run (`POST /api/blocks/{id}/execute`):
    /// turn after turn, each request carried out, up to `max_requests`;
    /// answers its steps, and the error it ended with.
    pub async fn drive(
        &self,
        commands: &Commands<PgEventStore>,
        block_id: &str,
        input: &Map<String, Value>,
        ctx: &crate::blocks::BlockContext,
        max_requests: usize,
    ) -> crate::blocks::Outcome {
        let mut answers = Vec::new();
        let mut steps = Vec::new();
        loop {
            let outcome = crate::blocks::run_turn(block_id, input, ctx, &answers);
            steps.extend(outcome.steps);
            let error = match outcome.effect {
                _ if outcome.error.is_some() => outcome.error,
                None => None,
                Some(Effect::Review { .. }) => {
                    Some("This block waits for a human review: it runs only inside a graph run".to_owned())
                }
                Some(_) if answers.len() >= max_requests => {
                    Some(format!("the block asked the outside world more than {max_requests} times"))
                }
                Some(effect) => {
                    answers.push(self.perform(commands, ctx.user_id, &effect).await);
                    continue;
                }
            };
            return crate::blocks::Outcome { steps, error, effect: None };
        }
    }

    /// Carry out `effect` for `user_id`'s run; never an error, an answer.
    pub async fn perform(&self, commands: &Commands<PgEventStore>, user_id: Uuid, effect: &Effect) -> Answer {
        let result = match effect {
            Effect::Http { method, url, headers, body, credential } => {
                self.http(commands, user_id, method, url, headers, body.as_deref(), *credential).await
            }
            Effect::Chat { model, messages, json, max_tokens, credential } => {
                self.chat(commands, user_id, model, messages, *json, *max_tokens, *credential).await
            }
            // A human answers a review through the API, never this door.
            Effect::Review { .. } => Err("a review is decided by a person: it runs only inside a graph run".into()),
        };
        result.unwrap_or_else(|error| json!({"error": error}))
    }

    async fn credential(
        &self,
        commands: &Commands<PgEventStore>,
        user_id: Uuid,
        id: Option<Uuid>,
    ) -> Result<Option<OpenCredential>, String> {
        let Some(id) = id else { return Ok(None) };
        match commands.open_credential(user_id, id).await {
            Ok(open) => Ok(Some(open)),
            Err(e) => {
                tracing::error!(credential = %id, error = %e, "credential could not be opened");
                Err(format!("Credentials {id} could not be used: {e}"))
            }
        }
    }

    #[expect(clippy::too_many_arguments, reason = "the fields of one Effect::Http")]
    async fn http(
        &self,
        commands: &Commands<PgEventStore>,
        user_id: Uuid,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&str>,
        credential: Option<Uuid>,
    ) -> Result<Answer, String> {
        let mut headers = headers.to_vec();
        let mut sent = Vec::new();
        if let Some(open) = self.credential(commands, user_id, credential).await? {
            if open.meta.kind == CredentialKind::HostScoped
                && host_matches(open.meta.host.as_deref().unwrap_or(""), url)
            {
                // The block's own headers take precedence, as in AutoGPT.
                let extra: Vec<(String, String)> = open
                    .secret
                    .headers
                    .iter()
                    .filter(|(name, _)| !headers.iter().any(|(own, _)| own.eq_ignore_ascii_case(name)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                sent.extend(extra.iter().map(|(_, value)| value.clone()));
                headers.extend(extra);
            }
        }
        let request = HttpRequest {
            method: method.to_ascii_uppercase(),
            url: url.to_owned(),
            headers,
            body: body.map(|b| b.as_bytes().to_vec()),
        };
        let response = self.client.send(request).await.map_err(|e| masked(e.to_string(), &sent))?;
        let headers: Map<String, Value> =
            response.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone()))).collect();
        Ok(scrub(
            json!({
                "status": response.status,
                "headers": headers,
                "body": String::from_utf8_lossy(&response.body),
            }),
            &sent,
        ))
    }

    #[expect(clippy::too_many_arguments, reason = "the fields of one Effect::Chat")]
    async fn chat(
        &self,
        commands: &Commands<PgEventStore>,
        user_id: Uuid,
        model: &str,
        messages: &[Value],
        json_answer: bool,
        max_tokens: Option<u64>,
        credential: Option<Uuid>,
    ) -> Result<Answer, String> {
        let key = match self.credential(commands, user_id, credential).await? {
            Some(open) => open.secret.api_key.ok_or("the credentials hold no API key")?,
            None => self.model.api_key.clone().ok_or("no API key: store credentials for the model's provider")?,
        };
        let mut body = json!({"model": model, "messages": messages});
        if let Some(max) = max_tokens {
            body["max_tokens"] = json!(max);
        }
        if json_answer {
            body["response_format"] = json!({"type": "json_object"});
        }
        let request = HttpRequest {
            method: "POST".into(),
            url: format!("{}/chat/completions", self.model.base_url.trim_end_matches('/')),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Authorization".into(), format!("Bearer {key}")),
            ],
            body: Some(body.to_string().into_bytes()),
        };
        let sent = [key];
        let response = self.client.send(request).await.map_err(|e| masked(e.to_string(), &sent))?;
        let text = masked(String::from_utf8_lossy(&response.body).into_owned(), &sent);
        if !(200..300).contains(&response.status) {
            return Err(format!("the model API answered {}: {}", response.status, quote(&text)));
        }
        let answer: Value =
            serde_json::from_str(&text).map_err(|_| format!("the model API answered no JSON: {}", quote(&text)))?;
        let content = answer["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| format!("the model API answered no message: {}", quote(&text)))?;
        Ok(json!({
            "content": content,
            "prompt_tokens": answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            "completion_tokens": answer["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        }))
    }
}

/// Secrets shorter than this are not looked for in answers: masking every
/// "k" of a text would garble it and hide nothing.
const SHORTEST_MASKED: usize = 4;

/// `text` with every secret it holds masked.
fn masked(mut text: String, secrets: &[String]) -> String {
    for secret in secrets.iter().filter(|s| s.len() >= SHORTEST_MASKED) {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), domain::credential::MASK);
        }
    }
    text
}

/// Every string of `answer` with the secrets sent masked: a server that
/// echoes what it was sent must not put a stored secret into the run's log,
/// its outputs or its timeline.
fn scrub(answer: Value, secrets: &[String]) -> Value {
    match answer {
        Value::String(text) => Value::String(masked(text, secrets)),
        Value::Array(items) => Value::Array(items.into_iter().map(|item| scrub(item, secrets)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(key, value)| (masked(key, secrets), scrub(value, secrets))).collect())
        }
        other => other,
    }
}

fn quote(text: &str) -> String {
    let mut quoted: String = text.chars().take(QUOTED).collect();
    if text.chars().count() > QUOTED {
        quoted.push('…');
    }
    quoted
}

/// Whether a host-scoped credential's `host` applies to `url`: the URL's
/// host equals it, or is a subdomain of a `*.`-prefixed pattern. A pattern
/// given as a URL counts by its host.
fn host_matches(pattern: &str, url: &str) -> bool {
    let host_of = |text: &str| -> Option<String> {
        let rest = text.split_once("://").map_or(text, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next()?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if authority.starts_with('[') {
            authority.split_inclusive(']').next()?
        } else {
            authority.split(':').next()?
        };
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    };
    let (Some(pattern), Some(host)) = (host_of(pattern.trim()), host_of(url)) else { return false };
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::{host_matches, masked, scrub};
    use serde_json::json;

    #[test]
    fn secrets_sent_are_masked_wherever_an_answer_echoes_them() {
        let sent = ["s3cret-token".to_owned(), "k".to_owned()];
        let echoed = json!({"headers": {"x-key": "s3cret-token", "s3cret-token": 1}, "body": ["a s3cret-token b", 2]});
        let want = json!({"headers": {"x-key": "**********", "**********": 1}, "body": ["a ********** b", 2]});
        assert_eq!(scrub(echoed, &sent), want);
        assert_eq!(masked("keep k as it is".into(), &sent), "keep k as it is", "too short to look for");
    }

    #[test]
    fn a_host_scoped_credential_applies_only_to_its_host() {
        assert!(host_matches("api.example.com", "https://api.example.com/v1/x"));
        assert!(host_matches("https://api.example.com", "https://API.example.com:8443/"));
        assert!(host_matches("*.example.com", "http://a.b.example.com/"));
        assert!(!host_matches("*.example.com", "http://example.com.evil.test/"));
        assert!(!host_matches("api.example.com", "https://api.example.com.evil.test/"));
        assert!(!host_matches("api.example.com", "https://evil.test/?u=api.example.com"));
        assert!(!host_matches("api.example.com", "https://api.example.com@evil.test/"));
        assert!(!host_matches("", "https://api.example.com/"));
    }
}
