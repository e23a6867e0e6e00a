//! (e): the command path of `POST /api/graphs` in process, without HTTP and
//! without waiting for the projectors.

use std::time::Instant;

use commands::services::Commands;
use commands::{CommandContext, PgEventStore};
use uuid::Uuid;

use crate::measure::{measure, Settings, Stats};
use crate::workload::graph_draft;
use crate::{Res, WRITERS};

/// [`WRITERS`] tasks with a user each, looping `Commands::create_graph` (3
/// events in one append) with a fresh context per command, as the route
/// makes one per request. The draft is decoded once from (d)'s body and
/// cloned per command: (e) leaves out the HTTP and JSON layers.
pub async fn create_graphs(settings: &Settings, store: &PgEventStore) -> Res<Stats> {
    // Thousands of graphs per user in a window: no quota to stop them.
    let commands = Commands::new(store.clone()).with_quotas(domain::quota::QuotaLimits::UNLIMITED);
    let draft = graph_draft()?;
    measure(settings, WRITERS, |ctl| {
        let (commands, draft, user) = (commands.clone(), draft.clone(), Uuid::new_v4());
        async move {
            let mut latencies = Vec::new();
            while ctl.running() {
                let started = Instant::now();
                let ctx = CommandContext::for_user(user);
                commands.create_graph(&ctx, user, draft.clone()).await?;
                ctl.done(started, &mut latencies);
            }
            Ok(latencies)
        }
    })
    .await
}
