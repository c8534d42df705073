//! Searching the message ledger for the admin Messages page: by sender, recipient, date range
//! or id, newest first, paged and bounded.

use crate::{LedgerEntry, Result, Store, text};

/// Most rows one search returns, whatever the caller asks.
pub const MAX_PAGE: i64 = 200;

/// A search: every field that is set narrows it. Addresses match as substrings
/// (case-insensitive, stored addresses are lower-case); `id` matches a prefix of the hex id.
#[derive(Debug, Clone, Default)]
pub struct LedgerQuery {
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub id: Option<String>,
    /// Sealed at or after (Unix seconds).
    pub from: Option<i64>,
    /// Sealed at or before (Unix seconds).
    pub until: Option<i64>,
    pub offset: i64,
    pub limit: i64,
}

/// `%`, `_` and the escape character itself are literals inside a user's search text.
fn like_pattern(text: &str, prefix_only: bool) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            escaped.push('!');
        }
        escaped.push(c);
    }
    if prefix_only {
        format!("{escaped}%")
    } else {
        format!("%{escaped}%")
    }
}

impl Store {
    /// One page of ledger rows matching `query`, newest first.
    pub async fn search_ledger(&self, query: &LedgerQuery) -> Result<Vec<LedgerEntry>> {
        let mut sql =
            String::from("SELECT envelope_id, created_at FROM message_ledger WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        for (value, column, prefix) in [
            (&query.sender, "sender", false),
            (&query.recipient, "recipient", false),
            (&query.id, "envelope_id", true),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                sql.push_str(&format!(" AND LOWER({column}) LIKE ? ESCAPE '!'"));
                binds.push(like_pattern(v, prefix));
            }
        }
        if query.from.is_some() {
            sql.push_str(" AND created_at >= ?");
        }
        if query.until.is_some() {
            sql.push_str(" AND created_at <= ?");
        }
        sql.push_str(" ORDER BY created_at DESC, envelope_id LIMIT ? OFFSET ?");
        let sql = self.sql(&sql);
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        if let Some(from) = query.from {
            q = q.bind(from);
        }
        if let Some(until) = query.until {
            q = q.bind(until);
        }
        q = q
            .bind(query.limit.clamp(1, MAX_PAGE))
            .bind(query.offset.max(0));
        let ids: Vec<String> = q
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| text(r, "envelope_id"))
            .collect::<Result<_>>()?;
        // The rows themselves through the ledger's own reader, so this module never has to
        // follow the ledger's columns (a page is at most MAX_PAGE lookups by primary key).
        let mut entries = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(entry) = self.ledger_entry(&id).await? {
                entries.push(entry);
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn wildcards_in_search_text_are_literal() {
        assert_eq!(like_pattern("A_b%", false), "%a!_b!%%");
        assert_eq!(like_pattern("ab12", true), "ab12%");
    }
}
