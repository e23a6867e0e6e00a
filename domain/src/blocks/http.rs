//! HTTP request blocks (`backend/blocks/http.py`): a plain request, and one
//! that carries a host-scoped credential whose headers the executor adds
//! when the credential's host matches the URL.

use serde_json::{json, Value};

use super::schema::{any, boolean, credentials, enumeration, list, nullable, string, typed, Schema};
use super::{Block, OUTPUT};

/// SendWebRequestBlock.
pub(super) const SEND_WEB_REQUEST: &str = "6595ae1f-b924-42cb-9a41-551a0611c4b4";
/// SendAuthenticatedWebRequestBlock.
pub(super) const SEND_AUTHENTICATED_WEB_REQUEST: &str = "fff86bcd-e001-4bad-a7f6-2eae4720c8dc";

pub(super) fn blocks() -> Vec<Block> {
    vec![
        Block::new(
            SEND_WEB_REQUEST,
            "SendWebRequestBlock",
            "Make an HTTP request (JSON / form / multipart).",
            &[OUTPUT],
            request_input(),
            request_output(),
        ),
        Block::new(
            SEND_AUTHENTICATED_WEB_REQUEST,
            "SendAuthenticatedWebRequestBlock",
            "Make an authenticated HTTP request with host-scoped credentials (JSON / form / multipart).",
            &[OUTPUT],
            request_input().field(
                "credentials",
                credentials(&["http"], &["host_scoped"])
                    .desc("HTTP host-scoped credentials for automatic header injection")
                    .extra("discriminator", json!("url")),
            ),
            request_output(),
        ),
    ]
}

/// The pins both blocks share; the authenticated one adds `credentials`
/// after them, as its pydantic subclass does.
fn request_input() -> Schema {
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
    Schema::input()
        .field("url", string().desc("The URL to send the request to").placeholder("https://api.example.com"))
        .field(
            "method",
            enumeration("HttpMethod", &methods).desc("The HTTP method to use for the request").default(json!("POST")),
        )
        .field(
            "headers",
            typed(json!({"type": "object", "additionalProperties": {"type": "string"}}))
                .desc("The headers to include in the request")
                .factory(),
        )
        .field(
            "json_format",
            boolean()
                .title("JSON format")
                .desc("If true, send the body as JSON (unless files are also present).")
                .default(json!(true)),
        )
        .field(
            "body",
            nullable(json!({"type": "object", "additionalProperties": true}))
                .desc("Form/JSON body payload. If files are supplied, this must be a mapping of form‑fields.")
                .default(Value::Null),
        )
        .field("files_name", string().desc("The name of the file field in the form data.").default(json!("file")))
        .field(
            "files",
            list(json!({"type": "string", "format": "file"}))
                .desc("Mapping of *form field name* → Image url / path / base64 url.")
                .factory(),
        )
}

/// The outputs; `error` is redeclared without a default, which makes it
/// required while keeping its first position.
fn request_output() -> Schema {
    Schema::output()
        .field("error", string().desc("Errors for all other exceptions"))
        .field("response", any().desc("The response from the server"))
        .field("client_error", any().desc("Errors on 4xx status codes"))
        .field("server_error", any().desc("Errors on 5xx status codes"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::blocks::find;

    #[test]
    fn send_web_request_pins_and_defaults() {
        let b = find(super::SEND_WEB_REQUEST).expect("SendWebRequestBlock");
        let props = &b.input_schema["properties"];
        assert_eq!(b.required_inputs(), vec!["url"]);
        assert_eq!(props["method"]["default"], "POST");
        assert_eq!(props["method"]["title"], "HttpMethod");
        assert_eq!(props["json_format"]["default"], true);
        assert_eq!(props["json_format"]["title"], "JSON format");
        assert_eq!(props["files"]["items"], json!({"type": "string", "format": "file"}));
        assert!(props["headers"].get("default").is_none(), "a factory default is not written");
        assert_eq!(b.output_schema["required"], json!(["error", "response", "client_error", "server_error"]));
        assert_eq!(b.categories, vec![super::OUTPUT]);
    }

    #[test]
    fn authenticated_request_takes_host_scoped_credentials() {
        let b = find(super::SEND_AUTHENTICATED_WEB_REQUEST).expect("SendAuthenticatedWebRequestBlock");
        let creds = &b.input_schema["properties"]["credentials"];
        assert_eq!(creds["credentials_provider"], json!(["http"]));
        assert_eq!(creds["credentials_types"], json!(["host_scoped"]));
        assert_eq!(creds["discriminator"], "url");
        assert_eq!(creds["properties"]["type"], json!({"const": "host_scoped", "type": "string", "title": "Type"}));
        assert_eq!(
            creds["title"],
            "CredentialsMetaInput[Literal[<ProviderName.HTTP: 'http'>], Literal['host_scoped']]"
        );
        assert_eq!(b.input_schema["required"], json!(["url", "credentials"]));
        assert_eq!(b.required_inputs(), vec!["url"]);
        let last = b.input_schema["properties"].as_object().and_then(|p| p.keys().next_back().cloned());
        assert_eq!(last.as_deref(), Some("credentials"));
    }
}
