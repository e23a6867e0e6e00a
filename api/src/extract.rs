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
///
/// Bodies of this API are JSON objects (or, for the e-mail route, a JSON
/// string): an array is refused, though serde's derive would read a struct
/// from an array of its fields, which no client means. A number written
/// with a zero fraction (`5.0`) is an integer in JSON Schema, so where the
/// direct parse fails such numbers are read as integers before giving up.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::unprocessable(
            "Invalid request body: expected a JSON object",
            vec![FieldError::new("body", "expected a JSON object, not an array", "object_type", Value::Null)],
        ));
    }
    refuse_nul_in_body(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => return de.end().map(|()| value).map_err(|e| describe(None, e)),
        Err(err) => err,
    };
    integral_retry(bytes).ok_or_else(|| {
        let path = error.path().to_string();
        describe(Some(path), error.into_inner())
    })
}

/// What a text that holds NUL is told: Postgres text cannot store the
/// character, so a body or query carrying it would be committed to the log
/// and then stall every projector that copies the text into a column.
const NUL_MESSAGE: &str = "text may not contain the NUL character (\\u0000)";

/// 422 naming the first string or key that holds a NUL. JSON can carry one
/// only as the escape `\u0000`, so bodies without that byte sequence are
/// let through without a second parse.
fn refuse_nul_in_body(bytes: &[u8]) -> Result<(), ApiError> {
    if !bytes.windows(6).any(|w| w == br"\u0000") {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(()); // the typed parse reports the syntax error
    };
    match nul_path(&value, "") {
        Some(path) => {
            let field = if path.is_empty() { "body".to_owned() } else { path };
            Err(ApiError::unprocessable(
                format!("Invalid request body: {field}: {NUL_MESSAGE}"),
                vec![FieldError::new(field, NUL_MESSAGE, "string_nul", Value::Null)],
            ))
        }
        None => Ok(()),
    }
}

/// The path (`a.b[2]` style, as serde_path_to_error prints it) of the first
/// string or object key holding a NUL.
fn nul_path(value: &Value, at: &str) -> Option<String> {
    let join = |key: &str| if at.is_empty() { key.to_owned() } else { format!("{at}.{key}") };
    match value {
        Value::String(s) => s.contains('\0').then(|| at.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| nul_path(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(join(&k.replace('\0', "\\u0000")))
            } else {
                nul_path(v, &join(k))
            }
        }),
        _ => None,
    }
}

/// The body again with integral floats read as integers, if it had any and
/// then fits `T`.
fn integral_retry<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    if !integral_floats_to_integers(&mut value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// Rewrite numbers like `5.0` as `5`; true when any was rewritten.
fn integral_floats_to_integers(value: &mut Value) -> bool {
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            // Within the range where every integer is exact in an f64.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                *value = Value::from(f as i64);
                true
            }
            _ => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |any, v| integral_floats_to_integers(v) | any),
        Value::Object(map) => map.values_mut().fold(false, |any, v| integral_floats_to_integers(v) | any),
        _ => false,
    }
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
        if let Some((name, _)) =
            form_urlencoded::parse(query.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::unprocessable(
                format!("Invalid query parameter: {name}: {NUL_MESSAGE}"),
                vec![FieldError::new(name, NUL_MESSAGE, "string_nul", Value::Null)],
            ));
        }
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Pin {
        version: i32,
        #[serde(default)]
        tags: Vec<i64>,
    }

    #[test]
    fn integral_floats_are_integers_as_json_schema_says() {
        let pin: Pin = parse_json(br#"{"version": 2.0, "tags": [1.0, 3]}"#).unwrap();
        assert_eq!(pin, Pin { version: 2, tags: vec![1, 3] });
        let err = parse_json::<Pin>(br#"{"version": 2.5}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY, "a fraction is still refused");
    }

    #[test]
    fn text_holding_nul_is_refused_naming_its_path() {
        #[derive(Debug, Deserialize)]
        struct Named {
            #[allow(dead_code)]
            graph: Value,
        }
        let err = parse_json::<Named>(br#"{"graph": {"nodes": [{"x": "ok"}, {"x": "a\u0000b"}]}}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(format!("{err:?}").contains("graph.nodes[1].x"), "{err:?}");
        assert!(parse_json::<Named>(br#"{"graph": "a\\u0000b"}"#).is_ok(), "an escaped backslash is no NUL");
        assert!(parse_json::<String>(br#""\u0000""#).is_err(), "a top-level string too");
    }

    #[test]
    fn a_struct_is_not_read_from_an_array() {
        let err = parse_json::<Pin>(b" [3, []]").unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(parse_json::<String>(br#""a@b.c""#).unwrap(), "a@b.c", "strings still parse");
    }
}
