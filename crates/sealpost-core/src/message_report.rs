//! Proof-of-delivery reports: the document for one message assembled from the ledger (and its
//! events), signed with the node's report key (`sealpost_crypto::report`), and its readable
//! HTML rendering. Used by `sealpost message report` and the admin Messages page.

use sealpost_crypto::report::{
    REPORT_FORMAT, ReportDocument, ReportError, ReportEvent, ReportKey, ReportPublicKey,
    ReportRecipient,
};
use sealpost_store::{MessageEntry, MessageEvent, MessageEventKind, Store, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::settings::{ReportSubject, Settings};

#[derive(Debug, thiserror::Error)]
pub enum ReportBuildError {
    #[error("no message with id {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot sign the report: {0}")]
    Sign(#[from] ReportError),
}

/// The node's report key and the name it signs as (the configured host name).
pub struct ReportSigner {
    key: ReportKey,
    issuer: String,
}

impl std::fmt::Debug for ReportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportSigner")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl ReportSigner {
    pub fn new(key: ReportKey, issuer: impl Into<String>) -> Self {
        ReportSigner {
            key,
            issuer: issuer.into(),
        }
    }

    pub fn public(&self) -> ReportPublicKey {
        self.key.public()
    }
}

/// A signed report: the file's text and the document it holds.
#[derive(Debug, Clone)]
pub struct SignedReport {
    pub json: String,
    pub document: ReportDocument,
}

/// RFC 3339 in UTC, as every time in a report is written.
pub fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// The events of one copy, oldest first: its recorded timeline, or, for a row sealed before
/// message control recorded events, what the ledger row itself says.
fn events_of(entry: &MessageEntry, recorded: &[MessageEvent]) -> Vec<ReportEvent> {
    let mine: Vec<ReportEvent> = recorded
        .iter()
        .filter(|e| e.envelope_id == entry.envelope_id)
        .map(|e| ReportEvent {
            at: rfc3339(e.at),
            kind: e.kind.as_str().into(),
            detail: match (e.detail.as_deref(), e.client.as_deref()) {
                (None, None) => None,
                (Some(d), None) => Some(d.to_string()),
                (None, Some(c)) => Some(format!("client {c}")),
                (Some(d), Some(c)) => Some(format!("{d}; client {c}")),
            },
        })
        .collect();
    if !mine.is_empty() {
        return mine;
    }
    let mut events = vec![ReportEvent {
        at: rfc3339(entry.created_at),
        kind: MessageEventKind::Sealed.as_str().into(),
        detail: None,
    }];
    if let Some(opened) = entry.first_opened_at {
        events.push(ReportEvent {
            at: rfc3339(opened),
            kind: MessageEventKind::FirstOpened.as_str().into(),
            detail: None,
        });
    }
    events
}

/// Assembles and signs the report of message `id` (a message id: every recipient's copy; or
/// one copy's ledger id), hex.
pub async fn build(
    store: &Store,
    settings: &Settings,
    signer: &ReportSigner,
    id: &str,
    now: i64,
) -> Result<SignedReport, ReportBuildError> {
    let id = id.trim().to_ascii_lowercase();
    let timeline = crate::messages::timeline(store, &id)
        .await
        .map_err(|e| match e {
            crate::CoreError::Store(e) => ReportBuildError::Store(e),
            _ => ReportBuildError::NotFound(id.clone()),
        })?
        .ok_or_else(|| ReportBuildError::NotFound(id.clone()))?;
    let Some(first) = timeline.entries.first() else {
        return Err(ReportBuildError::NotFound(id));
    };
    let subject = store.message_subject(&first.envelope_id).await?;
    let (subject, subject_sha256) = match (settings.report_subject, subject) {
        (_, None) => (None, None),
        (ReportSubject::Clear, Some(s)) if s.subject.is_some() => (s.subject, None),
        (_, Some(s)) => (None, Some(s.subject_sha256)),
    };
    let document = ReportDocument {
        format: REPORT_FORMAT.into(),
        issuer: signer.issuer.clone(),
        generated_at: rfc3339(now),
        // The id asked for: a message id, or the one copy's id.
        message_id: id.clone(),
        sender: first.sender.clone(),
        subject,
        subject_sha256,
        recipients: timeline
            .entries
            .iter()
            .map(|entry| ReportRecipient {
                address: entry.recipient.clone(),
                copy_id: entry.envelope_id.clone(),
                events: events_of(entry, &timeline.events),
            })
            .collect(),
    };
    let json = signer.key.sign(&document)?;
    Ok(SignedReport { json, document })
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A self-contained HTML page of the report for people (no scripts, no external resources).
/// It proves nothing by itself: the signed JSON beside it is the evidence.
pub fn render_html(document: &ReportDocument, signer: &ReportPublicKey) -> String {
    let mut rows = String::new();
    for r in &document.recipients {
        for e in &r.events {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&r.address),
                esc(&e.at),
                esc(&e.kind),
                esc(e.detail.as_deref().unwrap_or(""))
            ));
        }
    }
    let subject = match (&document.subject, &document.subject_sha256) {
        (Some(s), _) => esc(s),
        (None, Some(h)) => format!("SHA-256 <code>{}</code>", esc(h)),
        (None, None) => "—".into(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Delivery report {id}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}}\
         code{{word-break:break-all}}</style></head><body>\n\
         <h1>Delivery report</h1>\n<dl>\
         <dt>Message</dt><dd><code>{id}</code></dd>\
         <dt>Sender</dt><dd>{sender}</dd>\
         <dt>Subject</dt><dd>{subject}</dd>\
         <dt>Issued by</dt><dd>{issuer}, {generated}</dd>\
         <dt>Signing key</dt><dd><code>{key}</code> ({fp})</dd></dl>\n\
         <table><thead><tr><th>Recipient</th><th>Time (UTC)</th><th>Event</th><th>Detail</th></tr></thead>\
         <tbody>\n{rows}</tbody></table>\n\
         <p>This page is a rendering for reading. The evidence is the signed JSON file: check it \
         with <code>sealpost message verify-report FILE --key {key}</code>.</p>\n</body></html>\n",
        id = esc(&document.message_id),
        sender = esc(&document.sender),
        issuer = esc(&document.issuer),
        generated = esc(&document.generated_at),
        key = esc(&signer.to_base64()),
        fp = esc(&signer.fingerprint()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_escapes_what_the_ledger_holds() {
        let key = ReportKey::generate();
        let doc = ReportDocument {
            format: REPORT_FORMAT.into(),
            issuer: "gw".into(),
            generated_at: rfc3339(0),
            message_id: "ab".into(),
            sender: "<script>@x".into(),
            subject: Some("a & b".into()),
            subject_sha256: None,
            recipients: vec![],
        };
        let html = render_html(&doc, &key.public());
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;@x"));
        assert!(html.contains("a &amp; b"));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
