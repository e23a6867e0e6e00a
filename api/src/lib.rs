//! The HTTP API: axum routers, auth, the error shape, OpenAPI, and the
//! application that wires the write side, the projectors and the server.

pub mod app;
pub mod auth;
pub mod config;
pub mod consistency;
pub mod db;
pub mod embedded;
pub mod error;
pub mod extract;
mod http;
pub mod idempotency;
pub mod keys;
pub mod limits;
pub mod live;
pub mod metrics;
mod openapi;
mod routes;
pub mod sealer;
pub mod state;
pub mod waits;

pub use app::App;
pub use config::Config;
