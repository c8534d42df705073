//! `sealpost message show|revoke`: the timeline of a sent message, and revocation (which
//! deletes the envelope's secret at once). Ids are the message id (all recipients) or the
//! ledger id of one copy, as the carrier's `X-Sealpost-Message` header shows it. The signed
//! delivery reports (`report`, `verify-report`, `report-key`) are `super::message_report`'s.

use anyhow::{Result, bail};
use clap::Subcommand;
use sealpost::config::Config;
use sealpost_core::messages::{self, MessageControlError};
use sealpost_store::unix_now;

#[derive(Subcommand)]
pub enum MessageCommand {
    /// Print a message's recipients and the timeline of events (sealed, handed over, opened, …)
    Show { id: String },
    /// Revoke a message for all recipients (or one): its secret is deleted and it can no
    /// longer be opened
    Revoke {
        id: String,
        /// Only this recipient
        #[arg(long)]
        recipient: Option<String>,
        /// Why (kept in the ledger; shown to the recipient only with --public-reason)
        #[arg(long)]
        reason: Option<String>,
        /// The recipient's page shows the reason too
        #[arg(long)]
        public_reason: bool,
        /// Who revokes it, as the recipient's page names them
        #[arg(long, default_value = "the administrator")]
        by: String,
    },
    #[command(flatten)]
    Report(super::message_report::ReportCommand),
}

pub async fn run(config: &Config, command: MessageCommand) -> Result<()> {
    if let MessageCommand::Report(report) = command {
        return super::message_report::run(Some(config), report).await;
    }
    let store = super::open(config).await?;
    let result = run_on(&store, command).await;
    store.close().await;
    result
}

fn time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

async fn run_on(store: &sealpost_store::Store, command: MessageCommand) -> Result<()> {
    match command {
        MessageCommand::Show { id } => {
            let Some(timeline) = messages::timeline(store, &id).await? else {
                bail!("no message with id {}", id.trim());
            };
            let now = unix_now();
            if let Some(first) = timeline.entries.first() {
                println!(
                    "message {}  from {}  sent {}",
                    first.message_id,
                    first.sender,
                    time(first.created_at)
                );
            }
            for e in &timeline.entries {
                let status = if let Some(r) = &e.revocation {
                    format!("revoked by {} at {}", r.by, time(r.at))
                } else if e.is_expired(now) {
                    "expired".to_string()
                } else if e.wrapped_secret.is_none() {
                    "unprotected (format 1)".to_string()
                } else {
                    "active".to_string()
                };
                let expires = e.expires_at.map_or_else(|| "never".to_string(), time);
                println!(
                    "recipient {}  envelope {}  status {}  expires {}",
                    e.recipient, e.envelope_id, status, expires
                );
            }
            for ev in &timeline.events {
                let recipient = timeline
                    .entries
                    .iter()
                    .find(|e| e.envelope_id == ev.envelope_id)
                    .map_or("?", |e| e.recipient.as_str());
                let mut line = format!("{}  {}  {}", time(ev.at), recipient, ev.kind);
                if let Some(d) = &ev.detail {
                    line.push_str("  ");
                    line.push_str(d);
                }
                if let Some(c) = &ev.client {
                    line.push_str("  from ");
                    line.push_str(c);
                }
                println!("{line}");
            }
            Ok(())
        }
        MessageCommand::Revoke {
            id,
            recipient,
            reason,
            public_reason,
            by,
        } => {
            let by = by.trim();
            if by.is_empty() {
                bail!("--by must not be empty");
            }
            let done = match messages::revoke(
                store,
                &id,
                recipient.as_deref(),
                by,
                reason.as_deref(),
                public_reason,
                unix_now(),
            )
            .await
            {
                Ok(done) => done,
                Err(e @ MessageControlError::NotFound(_))
                | Err(e @ MessageControlError::NoSuchRecipient { .. }) => bail!("{e}"),
                Err(e) => return Err(e.into()),
            };
            for (recipient, envelope) in &done.revoked {
                println!("revoked {recipient} (envelope {envelope})");
            }
            for (recipient, envelope) in &done.already {
                println!("already revoked {recipient} (envelope {envelope})");
            }
            Ok(())
        }
        // `run` hands these to `message_report` before it opens a store.
        MessageCommand::Report(_) => bail!("report commands do not run on an open store"),
    }
}
