//! The executor: runs queued graph executions with AutoGPT's semantics. A
//! process manager, not a writer of read models: it finds runs waiting for
//! a worker, claims each by appending to the run's stream with the expected
//! version (one claim wins), and records every step as events through the
//! engine of `domain::execution`.

pub mod blocks;
mod template;
