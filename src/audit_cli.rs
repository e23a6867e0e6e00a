//! `autogpt-es audit …`: checking the log's tamper evidence from the shell.
//!
//! `verify` prints the report as JSON on stdout and fails (exit code 1, the
//! first problem on stderr) when the log was tampered with, so scripts and
//! cron jobs can alert on the exit code alone. `seal` seals what the server's
//! sealing loop has not sealed yet, for deployments that run it off.

use api::{db, Config};
use clap::Subcommand;

/// The `audit` subcommands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute every event hash, stream sequence and seal; exit 1 when tampered.
    Verify,
    /// Seal the events below the horizon that no seal covers yet.
    Seal,
}

/// Run one `audit` subcommand against the configured database.
pub async fn run(command: AuditCommand, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let pool = db::connect(config.database_url.expose(), 2).await?;
    // The hash column and seals arrive with a migration; an old database
    // gets them (and its backfill) before it is checked.
    db::migrate(&pool).await?;
    match command {
        AuditCommand::Verify => {
            let report = eventlog::audit_verify::verify(&pool, |n| eprintln!("checked {n} events")).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            match report.first_problem {
                None => Ok(()),
                Some(p) => Err(format!(
                    "the log was tampered with: {} event at position {} (stream {}, version {}): {}",
                    serde_json::to_value(p.kind)?.as_str().unwrap_or("?"),
                    p.position,
                    p.stream_id.as_deref().unwrap_or("-"),
                    p.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                    p.detail
                )
                .into()),
            }
        }
        AuditCommand::Seal => {
            match eventlog::seal::seal(&pool).await? {
                Some(seal) => println!("{}", serde_json::to_string_pretty(&seal)?),
                None => println!("nothing new to seal"),
            }
            Ok(())
        }
    }
}
