//! Uploads: `POST /api/files/upload` (any file but a native executable,
//! private to the uploader, kept for `expiration_hours`) and
//! `POST /api/store/submissions/media` (store images and videos, public),
//! each with the route that serves it back. Files are kept on local disk
//! (`FILE_STORAGE_DIR`, see [`disk`]), at most `MAX_UPLOAD_BYTES` each.
//!
//! AutoGPT keeps both in a GCS bucket (without one, an upload is answered as
//! a `data:` URI) and virus-scans them. Here the answer is a URL on this
//! server; nothing is scanned, so executables are refused outright, and
//! media must be what its first bytes say, whatever type it was declared
//! with.

mod disk;
mod kinds;

use std::sync::OnceLock;

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use self::disk::FileStore;
use self::disk::{Area, Meta, MAX_EXPIRATION_HOURS};
use self::kinds::MediaKind;
use super::in_range;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::extract::Query;
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/files/upload", post(upload_file))
        .route("/files/{user_id}/{file_id}", get(download_file))
        .route("/store/submissions/media", post(upload_media))
        .route("/store/media/{user_id}/{file_name}", get(get_media))
}

/// Longest `provider` value.
const MAX_PROVIDER_CHARS: usize = 64;
/// Longest file name kept (characters of its last path segment).
const MAX_FILE_NAME_CHARS: usize = 255;

/// The multipart body of both upload routes.
#[allow(dead_code)]
#[derive(ToSchema)]
pub(crate) struct FileUploadBody {
    /// The file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Answer of `POST /api/files/upload` (AutoGPT's `UploadFileResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UploadFileResponse {
    /// Where the file is served (to its uploader only, until it expires).
    file_uri: String,
    /// The name it was sent with (its last path segment).
    file_name: String,
    /// Bytes.
    size: i64,
    /// The type it was declared with.
    content_type: String,
    /// Hours it is kept.
    expires_in_hours: i64,
}

fn gcs() -> String {
    "gcs".into()
}

fn a_day() -> i64 {
    24
}

/// Query of `POST /api/files/upload`.
#[derive(Debug, Deserialize)]
pub(crate) struct UploadQuery {
    #[serde(default = "gcs")]
    provider: String,
    #[serde(default = "a_day")]
    expiration_hours: i64,
}

/// Upload a file: kept, private to the caller, for `expiration_hours`
/// (1 to 48). The file is stored on this server whatever `provider` names
/// (AutoGPT's GCS bucket is not used). Not virus-scanned: native
/// executables (ELF, PE, Mach-O) are refused with 400.
#[utoipa::path(post, path = "/api/files/upload", operation_id = "postV1Upload file to cloud storage", tag = "files",
    params(("provider" = Option<String>, Query, max_length = 64, description = "Accepted for compatibility; files are kept on this server"),
        ("expiration_hours" = Option<i64>, Query, minimum = 1, maximum = 48)),
    request_body(content = FileUploadBody, content_type = "multipart/form-data"),
    responses((status = 200, description = "Stored", body = UploadFileResponse),
        (status = 400, description = "A native executable, or a body that could not be read", body = ErrorBody),
        (status = 413, description = "The file is larger than MAX_UPLOAD_BYTES (nothing is stored)", body = ErrorBody),
        (status = 422, description = "No `file` part, or a query parameter out of bounds", body = ErrorBody)))]
pub(crate) async fn upload_file(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<UploadQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<axum::Json<UploadFileResponse>> {
    if q.provider.chars().count() > MAX_PROVIDER_CHARS {
        let message = format!("at most {MAX_PROVIDER_CHARS} characters");
        return Err(ApiError::unprocessable(
            format!("provider must be {message}"),
            vec![FieldError::new("provider", message, "string_too_long", q.provider.into())],
        ));
    }
    in_range("expiration_hours", q.expiration_hours, 1, MAX_EXPIRATION_HOURS)?;
    let upload = read_file(multipart, state.files.max_bytes()).await?;
    if kinds::is_executable(&upload.bytes) {
        return Err(ApiError::bad_request(
            "Executable files are not accepted: this server does not virus-scan uploads",
        ));
    }
    let digest = disk::digest(&upload.bytes);
    let meta = Meta {
        file_name: file_name(upload.file_name.as_deref()),
        content_type: kinds::normalise(upload.content_type.as_deref().unwrap_or("")),
        size: upload.bytes.len() as u64,
        expires_at: Utc::now() + Duration::hours(q.expiration_hours),
    };
    let files = &state.files;
    files.sweep(user.user_id).await;
    files.put(Area::Uploads, user.user_id, &digest, &upload.bytes).await.map_err(|e| ApiError::internal(&e))?;
    files.put_meta(user.user_id, &digest, meta.clone()).await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(UploadFileResponse {
        file_uri: format!("{}/api/files/{}/{digest}", base_url(), user.user_id),
        file_name: meta.file_name,
        size: meta.size as i64,
        content_type: meta.content_type,
        expires_in_hours: q.expiration_hours,
    }))
}

/// A file the caller uploaded, until it expires; anyone else's (even an
/// admin's, unless acting as its owner) is a 404.
#[utoipa::path(get, path = "/api/files/{user_id}/{file_id}", operation_id = "getV1Download uploaded file", tag = "files",
    params(("user_id" = String, Path, description = "The uploader"), ("file_id" = String, Path, description = "The file's SHA-256 (hex)")),
    responses((status = 200, description = "The file, as an attachment, with the type it was uploaded with", content_type = "*/*", body = inline(FileBytes)),
        (status = 404, description = "No such file of the caller's, or expired", body = ErrorBody)))]
pub(crate) async fn download_file(
    State(state): State<AppState>,
    user: AuthUser,
    Path((owner, file_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("File not found");
    let owner = Uuid::parse_str(&owner).map_err(|_| not_found())?;
    if owner != user.user_id || !disk::is_digest(&file_id) {
        return Err(not_found());
    }
    let files = &state.files;
    let meta = files.meta(owner, &file_id).await.map_err(|e| ApiError::internal(&e))?.ok_or_else(not_found)?;
    if meta.expires_at <= Utc::now() {
        files.remove_upload(owner, &file_id).await;
        return Err(not_found());
    }
    let bytes = files.get(Area::Uploads, owner, &file_id).await.map_err(|e| ApiError::internal(&e))?;
    let bytes = bytes.ok_or_else(not_found)?;
    let disposition = format!("attachment; filename=\"{}\"", header_safe(&meta.file_name));
    let mut response = ([(header::CONTENT_TYPE, meta.content_type), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response();
    private_file_headers(response.headers_mut());
    Ok(response)
}

/// Upload an image (jpeg, png, gif, webp) or video (mp4, webm) for a store
/// submission; answers its public URL. The file's first bytes must be one
/// of those formats and agree with the type it is declared with (400
/// otherwise).
#[utoipa::path(post, path = "/api/store/submissions/media", operation_id = "postV2Upload submission media", tag = "store",
    request_body(content = FileUploadBody, content_type = "multipart/form-data"),
    responses((status = 200, description = "The media's URL", body = String, content_type = "application/json"),
        (status = 400, description = "Not one of the six formats, or not what it was declared as", body = ErrorBody),
        (status = 413, description = "The file is larger than MAX_UPLOAD_BYTES (nothing is stored)", body = ErrorBody),
        (status = 422, description = "No `file` part", body = ErrorBody)))]
pub(crate) async fn upload_media(
    State(state): State<AppState>,
    user: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<axum::Json<String>> {
    let upload = read_file(multipart, state.files.max_bytes()).await?;
    let kind = kinds::media_kind(&upload.bytes, upload.content_type.as_deref())
        .map_err(|refusal| ApiError::bad_request(refusal.message()))?;
    let name = format!("{}.{}", disk::digest(&upload.bytes), kind.extension());
    state.files.put(Area::Media, user.user_id, &name, &upload.bytes).await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(format!("{}/api/store/media/{}/{name}", base_url(), user.user_id)))
}

/// Store media, for anyone (store pages show it): content-addressed, so it
/// never changes and may be cached for good.
#[utoipa::path(get, path = "/api/store/media/{user_id}/{file_name}", operation_id = "getV2Get submission media", tag = "store",
    params(("user_id" = String, Path, description = "The uploader"),
        ("file_name" = String, Path, description = "The media's SHA-256 (hex) and its format's extension")),
    security(()),
    responses((status = 200, description = "The image or video", content_type = "*/*", body = inline(FileBytes)),
        (status = 404, description = "No such media", body = ErrorBody)))]
pub(crate) async fn get_media(
    State(state): State<AppState>,
    Path((owner, file_name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("Media not found");
    let owner = Uuid::parse_str(&owner).map_err(|_| not_found())?;
    let (digest, ext) = file_name.split_once('.').ok_or_else(not_found)?;
    let kind = MediaKind::from_extension(ext).filter(|_| disk::is_digest(digest)).ok_or_else(not_found)?;
    let bytes = state.files.get(Area::Media, owner, &file_name).await.map_err(|e| ApiError::internal(&e))?;
    let mut response = ([(header::CONTENT_TYPE, kind.content_type())], bytes.ok_or_else(not_found)?).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(response)
}

/// A file's bytes, for the document.
pub(crate) enum FileBytes {}

impl utoipa::PartialSchema for FileBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for FileBytes {}

/// Headers of a private file: never rendered in a page of ours (a file
/// declared as HTML would otherwise run as this origin), never cached by
/// anyone but its owner.
fn private_file_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
}

/// The `file` part of a multipart body.
struct Upload {
    bytes: Vec<u8>,
    file_name: Option<String>,
    content_type: Option<String>,
}

/// Read the first part named `file`, at most `max` bytes of it. A larger
/// file is read to its end and dropped (so the client, still sending, gets
/// the answer) and answered 413: nothing of it is kept.
async fn read_file(multipart: Result<Multipart, MultipartRejection>, max: usize) -> ApiResult<Upload> {
    let mut multipart = multipart.map_err(|_| missing_file("the body must be multipart/form-data"))?;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let (mut bytes, mut too_large) = (Vec::new(), false);
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            too_large |= bytes.len() + chunk.len() > max;
            if !too_large {
                bytes.extend_from_slice(&chunk);
            }
        }
        if too_large {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("File too large: at most {max} bytes"),
            ));
        }
        return Ok(Upload { bytes, file_name, content_type });
    }
    Err(missing_file("a `file` part is required"))
}

fn missing_file(message: &str) -> ApiError {
    ApiError::unprocessable(
        format!("Invalid request body: {message}"),
        vec![FieldError::new("file", message, "missing", serde_json::Value::Null)],
    )
}

/// A body that broke off or exceeded `BODY_LIMIT_BYTES`, in our error shape.
fn multipart_error(e: MultipartError) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Request body is too large")
        }
        _ => ApiError::bad_request(format!("Invalid multipart body: {}", e.body_text())),
    }
}

/// The name kept for a file: the last segment of the name it was sent
/// with (clients may send a whole path), without control characters, at
/// most [`MAX_FILE_NAME_CHARS`] characters; AutoGPT's default when there is
/// none. It is only ever answered, never part of a path on disk.
fn file_name(sent: Option<&str>) -> String {
    let last = sent.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last.chars().filter(|c| !c.is_control()).take(MAX_FILE_NAME_CHARS).collect();
    match clean.trim() {
        "" | "." | ".." => "uploaded_file".to_owned(),
        name => name.to_owned(),
    }
}

/// A file name as a quoted header parameter: printable ASCII only, no quote
/// or backslash.
fn header_safe(name: &str) -> String {
    name.chars().map(|c| if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' { c } else { '_' }).collect()
}

/// Where URLs start: `PLATFORM_BASE_URL` (AutoGPT's setting) when set,
/// else nothing, and the URL is the path on this server.
fn base_url() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| std::env::var("PLATFORM_BASE_URL").unwrap_or_default().trim().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_names_are_last_segments() {
        assert_eq!(file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(file_name(Some("C:\\Users\\me\\notes.txt")), "notes.txt");
        assert_eq!(file_name(Some("dir/..")), "uploaded_file");
        assert_eq!(file_name(None), "uploaded_file");
        assert_eq!(file_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(header_safe("é \"x\".txt"), "_ _x_.txt");
    }
}
