//! The pure domain of the platform: events, aggregates, graph validation and
//! the block catalog. Nothing here performs I/O; everything a decision needs
//! from outside (clock, fresh ids, other read models) arrives in the command.

pub mod aggregate;
pub mod api_key;
pub mod blocks;
pub mod credential;
pub mod credit;
pub mod execution;
pub mod graph;
pub mod library;
pub mod memory;
pub mod onboarding;
pub mod preset;
pub mod quota;
pub mod schedule;
pub mod store;
pub mod user;
pub mod webhook;

pub use aggregate::{Aggregate, EventType};
