//! Extractors whose rejections use the one error shape: a body or query that
//! does not parse or fit its schema is a 422 naming the field; an oversized
//! body is a 413.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, FieldError};

/// A JSON body, parsed with the failing field's path in the error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Request body is too large")
    } else {
        ApiError::bad_request(rejection.body_text())
    }
}

/// Parse JSON into `T`, describing the first mismatch by field path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|err| {
        let path = err.path().to_string();
        describe(Some(path), err.into_inner())
    })?;
    de.end().map_err(|e| describe(None, e))?;
    Ok(value)
}

fn describe(path: Option<String>, inner: serde_json::Error) -> ApiError {
    let syntax = inner.is_syntax() || inner.is_eof();
    let message = strip_position(&inner.to_string());
    let path = path.unwrap_or_else(|| ".".into());
    let (field, kind) = if syntax {
        ("body".to_owned(), "json_invalid")
    } else if message.starts_with("missing field") {
        (missing_field_path(&path, &message), "missing")
    } else {
        (if path == "." { "body".to_owned() } else { path }, "invalid")
    };
    let detail =
        if syntax { "Invalid JSON body".to_owned() } else { format!("Invalid request body: {field}: {message}") };
    ApiError::unprocessable(detail, vec![FieldError::new(field, message, kind, Value::Null)])
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// serde reports a missing field at its parent; name the field itself.
fn missing_field_path(parent: &str, message: &str) -> String {
    let name = message.split('`').nth(1).unwrap_or("");
    if parent == "." || parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// A query string, with 422 on a parameter that does not fit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Query).map_err(|err| {
            let field = err.path().to_string();
            let message = err.into_inner().to_string();
            ApiError::unprocessable(
                format!("Invalid query parameter: {message}"),
                vec![FieldError::new(field, message, "invalid", Value::Null)],
            )
        })
    }
}
