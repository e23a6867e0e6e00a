//! Uploads: `POST /api/files/upload` and `POST /api/store/submissions/media`
//! store files on disk under the configured directory, serve them back
//! (private uploads to their owner only, media to anyone), refuse what is
//! too large (413, nothing kept) or not what it claims to be, and never let
//! a client's file name pick a path.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{send, spawn_app_with, TestApp};
use crate::support::{assert_error, assert_field_error, user};

const BOUNDARY: &str = "autogpt-es-test-boundary-7f3a";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// A multipart body with one `file` part.
fn multipart(file_name: Option<&str>, content_type: Option<&str>, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"").into_bytes();
    if let Some(name) = file_name {
        body.extend(format!("; filename=\"{name}\"").bytes());
    }
    body.extend(b"\r\n");
    if let Some(kind) = content_type {
        body.extend(format!("Content-Type: {kind}\r\n").bytes());
    }
    body.extend(b"\r\n");
    body.extend(bytes);
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    body
}

async fn upload(app: &TestApp, path: &str, owner: Uuid, body: Vec<u8>) -> (u16, Value) {
    let request = app
        .request(Method::POST, path, owner)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body);
    send(request).await
}

/// A server keeping its files in a directory of its own.
async fn app_with_storage(max_upload_bytes: Option<usize>) -> (TestApp, PathBuf) {
    let dir = std::env::temp_dir().join(format!("autogpt-es-files-test-{}", Uuid::new_v4().simple()));
    let root = dir.clone();
    let app = spawn_app_with(move |config| {
        config.file_storage_dir = root;
        if let Some(max) = max_upload_bytes {
            config.max_upload_bytes = max;
        }
    })
    .await;
    (app, dir)
}

/// Every file under `dir` (none if it does not exist) but the
/// `.gitignore` that keeps the directory out of a checkout.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries
        .flatten()
        .filter(|e| e.file_name() != ".gitignore")
        .flat_map(|e| if e.path().is_dir() { files_under(&e.path()) } else { vec![e.path()] })
        .collect()
}

#[tokio::test]
async fn an_upload_is_served_back_to_its_owner_only() {
    let (app, dir) = app_with_storage(None).await;
    let (owner, stranger) = (user(), user());
    let body = multipart(Some("notes.txt"), Some("text/plain; charset=utf-8"), b"hello, files");
    let (status, uploaded) = upload(&app, "/api/files/upload?expiration_hours=2", owner, body).await;
    assert_eq!(status, 200, "{uploaded}");
    assert_eq!(uploaded["file_name"], "notes.txt");
    assert_eq!(uploaded["size"], 12);
    assert_eq!(uploaded["content_type"], "text/plain");
    assert_eq!(uploaded["expires_in_hours"], 2);
    let uri = uploaded["file_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with(&format!("/api/files/{owner}/")), "{uri}");

    let response = app.request(Method::GET, &uri, owner).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, "attachment; filename=\"notes.txt\"");
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"hello, files");

    let (status, body) = app.get(&uri, stranger).await;
    assert_eq!(status, 404, "another user cannot read it: {body}");
    assert_error(&body, "not_found");
    let (status, _) = send(app.anonymous(Method::GET, &uri)).await;
    assert_eq!(status, 401);

    // The same bytes again: the same file, one copy on disk.
    let (status, again) = upload(&app, "/api/files/upload", owner, multipart(None, None, b"hello, files")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["file_uri"], uri.as_str());
    assert_eq!((again["file_name"].as_str(), again["expires_in_hours"].as_i64()), (Some("uploaded_file"), Some(24)));
    let blobs: Vec<_> = files_under(&dir).into_iter().filter(|p| p.extension().is_none()).collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert_eq!(std::fs::read_to_string(dir.join(".gitignore")).unwrap(), "*\n", "kept out of a checkout");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_with_413_and_nothing_is_kept() {
    let (app, dir) = app_with_storage(Some(1024)).await;
    let owner = user();
    for path in ["/api/files/upload", "/api/store/submissions/media"] {
        let mut big = PNG.to_vec();
        big.resize(1025, 0);
        let (status, body) = upload(&app, path, owner, multipart(Some("big.png"), Some("image/png"), &big)).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_error(&body, "payload_too_large");
    }
    assert_eq!(files_under(&dir), Vec::<PathBuf>::new(), "nothing stored");
    let (status, body) = upload(&app, "/api/files/upload", owner, multipart(Some("ok.txt"), None, &[b'x'; 1024])).await;
    assert_eq!(status, 200, "exactly the limit is taken: {body}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn media_must_be_what_its_bytes_say_and_is_public() {
    let (app, dir) = app_with_storage(None).await;
    let owner = user();
    let media = "/api/store/submissions/media";
    let (status, url) = upload(&app, media, owner, multipart(Some("shot.png"), Some("image/png"), PNG)).await;
    assert_eq!(status, 200, "{url}");
    let url = url.as_str().expect("the URL, a JSON string").to_owned();
    assert!(url.starts_with(&format!("/api/store/media/{owner}/")) && url.ends_with(".png"), "{url}");
    let response = app.anonymous(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), 200, "anyone reads store media");
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);

    let before = files_under(&dir);
    let refused = [
        (Some("image/png"), b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(), "a PNG that is not one"),
        (Some("image/jpeg"), PNG.to_vec(), "a PNG declared as a JPEG"),
        (Some("text/html"), PNG.to_vec(), "a type media may not have"),
        (None, b"just text".to_vec(), "bytes of no media format"),
    ];
    for (kind, bytes, what) in refused {
        let (status, body) = upload(&app, media, owner, multipart(Some("x.png"), kind, &bytes)).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_error(&body, "bad_request");
    }
    assert_eq!(files_under(&dir), before, "nothing refused was stored");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn client_file_names_never_reach_the_disk() {
    let (app, dir) = app_with_storage(None).await;
    let owner = user();
    for (name, kept) in [("../../../../evil.txt", "evil.txt"), ("..\\..\\win.ini", "win.ini"), ("..", "uploaded_file")]
    {
        let body = multipart(Some(name), Some("text/plain"), name.as_bytes());
        let (status, uploaded) = upload(&app, "/api/files/upload", owner, body).await;
        assert_eq!(status, 200, "{uploaded}");
        assert_eq!(uploaded["file_name"], kept);
    }
    let root = std::fs::canonicalize(&dir).unwrap();
    for file in files_under(&dir) {
        let file = std::fs::canonicalize(&file).unwrap();
        assert!(file.starts_with(root.join("uploads").join(owner.to_string())), "{file:?}");
        let stem = file.file_name().unwrap().to_str().unwrap().trim_end_matches(".json");
        assert!(stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()), "named by digest: {file:?}");
    }
    assert!(!dir.parent().unwrap().join("evil.txt").exists());

    for path in [
        format!("/api/files/{owner}/..%2F..%2Fevil.txt"),
        format!("/api/files/{owner}/%2E%2E"),
        format!("/api/store/media/{owner}/..%2Fuploads.png"),
        "/api/store/media/..%2F..%2F/x.png".to_owned(),
    ] {
        let (status, body) = app.get(&path, owner).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn uploads_refuse_executables_bad_queries_and_bodies_without_a_file() {
    let (app, dir) = app_with_storage(None).await;
    let owner = user();
    let elf = multipart(Some("tool"), Some("application/octet-stream"), b"\x7fELF\x02\x01\x01\0");
    let (status, body) = upload(&app, "/api/files/upload", owner, elf).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("virus"), "says why: {body}");

    for hours in ["0", "49", "x"] {
        let path = format!("/api/files/upload?expiration_hours={hours}");
        let (status, body) = upload(&app, &path, owner, multipart(Some("a.txt"), None, b"a")).await;
        assert_eq!(status, 422, "{hours}: {body}");
        assert_field_error(&body, "expiration_hours");
    }
    let other_part =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n");
    let (status, body) = upload(&app, "/api/files/upload", owner, other_part.into_bytes()).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "file");
    let not_multipart = app.request(Method::POST, "/api/store/submissions/media", owner).json(&serde_json::json!({}));
    let (status, body) = send(not_multipart).await;
    assert_eq!(status, 422, "{body}");
    assert_field_error(&body, "file");
    let (status, _) = send(app.anonymous(Method::POST, "/api/files/upload")).await;
    assert_eq!(status, 401);
    assert_eq!(files_under(&dir), Vec::<PathBuf>::new(), "nothing stored");
}
