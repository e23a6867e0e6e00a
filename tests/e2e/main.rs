//! End-to-end tests: a real server on a free port, a fresh Postgres database
//! per test, driven over HTTP as a client would.

mod helpers;
mod support;

mod agents;
mod analytics;
mod api_keys;
mod audit;
mod auth;
mod binary;
mod builder;
mod bulk;
mod consistency;
mod console;
mod contract;
mod credentials;
mod credits;
mod docs;
mod event_log;
mod executions;
mod executors;
mod export;
mod external_api;
mod feed;
mod files;
mod graphs;
mod horizon;
mod idempotency;
mod input;
mod library;
mod limits;
mod metrics;
mod onboarding;
mod order;
mod projections;
mod quotas;
mod rebuild;
mod reviews;
mod schedules;
mod store;
mod stubs;
mod tamper;
mod users;
mod webhooks;
mod websocket;
mod zero_setup;
