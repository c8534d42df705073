//! Operational counters and the monitoring snapshot. Counters are kept per UTC day in the
//! database (every node adds to the same rows), so the dashboard and `/metrics` show the
//! whole installation, not one node, and survive restarts.

use sealpost_store::{NodeInfo, QueueStats, Store, StoreError, day_of};

/// Recipients a flagged mail was encrypted for.
pub const ENCRYPTED: &str = "encrypted";
/// Recipients a mail was passed through to unchanged.
pub const PASSED: &str = "passed";
/// Recipients that bounced (5xx or given up).
pub const BOUNCED: &str = "bounced";
/// Failed portal logins (wrong password or locked); the portal's login calls [`record`].
pub const LOGIN_FAILED: &str = "login_failed";
/// Accounts locked after too many failed logins.
pub const LOCKOUTS: &str = "lockouts";
/// Secure replies sent from the portal.
pub const REPLIES: &str = "replies";
/// Successful portal logins (per-day chart; the totals come from the audit log).
pub const LOGINS: &str = "logins";
/// Wrong secret answers in password resets.
pub const ANSWER_FAILED: &str = "answer_failed";
/// Passwords replaced by a right secret answer.
pub const PASSWORD_RESETS: &str = "password_resets";
/// Sign-ins and answers refused because their client address used up its failures.
pub const SOURCE_THROTTLED: &str = "source_throttled";
/// Successful admin sign-ins.
pub const ADMIN_LOGINS: &str = "admin_logins";
/// Failed admin sign-ins (wrong name, password or code, or locked).
pub const ADMIN_LOGIN_FAILED: &str = "admin_login_failed";
/// Admins locked after too many failed sign-ins.
pub const ADMIN_LOCKOUTS: &str = "admin_lockouts";
/// Decrypted messages shown in the portal.
pub const CONTENT_READS: &str = "content_reads";
/// Parts (attachments, inline images) of decrypted messages downloaded.
pub const PART_DOWNLOADS: &str = "part_downloads";
/// Decrypted messages downloaded as `.eml`.
pub const EML_DOWNLOADS: &str = "eml_downloads";

/// The counters charted on the dashboard.
pub const CHARTED: &[&str] = &[ENCRYPTED, PASSED, BOUNCED, LOGINS, LOGIN_FAILED];

/// Adds `by` to today's counter. Never fails and never waits for the database: the store
/// buffers it until the next flush.
pub fn record(store: &Store, name: &'static str, by: i64) {
    if by > 0 {
        store.buffer_counter(name, day_of(crate::unix_now()), by);
    }
}

/// Writes buffered counters (the node's housekeeping calls this every few seconds).
pub async fn flush(store: &Store) {
    store.flush_counters().await;
}

/// A value today, over the last 7 days and over the last 30 days (today included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub today: i64,
    pub days7: i64,
    pub days30: i64,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub encrypted: Period,
    pub passed: Period,
    pub bounced: Period,
    pub new_accounts: Period,
    pub logins: Period,
    pub login_failed: Period,
    pub lockouts: Period,
    pub locked_now: i64,
    pub opens: Period,
    /// Copies revoked, and copies that expired (message control).
    pub revocations: Period,
    pub expiries: Period,
    pub replies: Period,
    pub answer_failed: Period,
    pub password_resets: Period,
    pub source_throttled: Period,
    pub admin_logins: Period,
    pub admin_login_failed: Period,
    pub admin_lockouts: Period,
    pub content_reads: Period,
    pub part_downloads: Period,
    pub eml_downloads: Period,
    pub queue: QueueStats,
    pub oldest_age_secs: Option<i64>,
    pub last_errors: Vec<(String, String)>,
    pub nodes: Vec<NodeInfo>,
    pub accounts_total: i64,
    /// Per charted counter: 30 daily values, oldest first.
    pub series: Vec<(&'static str, Vec<i64>)>,
    pub now: i64,
}

fn period_from_rows(rows: &[(i64, String, i64)], name: &str, today: i64) -> Period {
    let mut p = Period::default();
    for (day, _, v) in rows.iter().filter(|(_, n, _)| n == name) {
        let age = today - day;
        if age == 0 {
            p.today += v;
        }
        if age < 7 {
            p.days7 += v;
        }
        if age < 30 {
            p.days30 += v;
        }
    }
    p
}

async fn period_of<F, Fut>(now: i64, count_since: F) -> Result<Period, StoreError>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = Result<i64, StoreError>>,
{
    let start_today = day_of(now) * 86_400;
    Ok(Period {
        today: count_since(start_today).await?,
        days7: count_since(start_today - 6 * 86_400).await?,
        days30: count_since(start_today - 29 * 86_400).await?,
    })
}

/// Everything the dashboard and `/metrics` show, read from the database.
pub async fn dashboard(store: &Store, now: i64) -> Result<Dashboard, StoreError> {
    flush(store).await;
    let today = day_of(now);
    let rows = store.counters_since(today - 29).await?;
    let queue = store.queue_stats(now).await?;
    let mut series = Vec::new();
    for name in CHARTED {
        let mut values = vec![0i64; 30];
        for (day, n, v) in &rows {
            let age = today - day;
            if n == name && (0..30).contains(&age) {
                values[(29 - age) as usize] += v;
            }
        }
        series.push((*name, values));
    }
    Ok(Dashboard {
        encrypted: period_from_rows(&rows, ENCRYPTED, today),
        passed: period_from_rows(&rows, PASSED, today),
        bounced: period_from_rows(&rows, BOUNCED, today),
        // Every portal login is audited, which also covers logins before counters existed.
        logins: period_of(now, |s| {
            store.count_audit_since(crate::audit::PORTAL_LOGIN, s)
        })
        .await?,
        login_failed: period_from_rows(&rows, LOGIN_FAILED, today),
        lockouts: period_from_rows(&rows, LOCKOUTS, today),
        replies: period_from_rows(&rows, REPLIES, today),
        answer_failed: period_from_rows(&rows, ANSWER_FAILED, today),
        password_resets: period_from_rows(&rows, PASSWORD_RESETS, today),
        source_throttled: period_from_rows(&rows, SOURCE_THROTTLED, today),
        admin_logins: period_from_rows(&rows, ADMIN_LOGINS, today),
        admin_login_failed: period_from_rows(&rows, ADMIN_LOGIN_FAILED, today),
        admin_lockouts: period_from_rows(&rows, ADMIN_LOCKOUTS, today),
        content_reads: period_from_rows(&rows, CONTENT_READS, today),
        part_downloads: period_from_rows(&rows, PART_DOWNLOADS, today),
        eml_downloads: period_from_rows(&rows, EML_DOWNLOADS, today),
        new_accounts: period_of(now, |s| store.count_accounts_created_since(s)).await?,
        opens: period_of(now, |s| store.count_opens_since(s)).await?,
        revocations: period_of(now, |s| {
            store.count_message_events_since(sealpost_store::MessageEventKind::Revoked, s)
        })
        .await?,
        expiries: period_of(now, |s| {
            store.count_message_events_since(sealpost_store::MessageEventKind::Expired, s)
        })
        .await?,
        locked_now: store.count_locked_accounts(now).await?,
        oldest_age_secs: queue.oldest_created_at.map(|t| (now - t).max(0)),
        queue,
        last_errors: store.queue_recent_errors(10).await?,
        nodes: store.nodes().await?,
        accounts_total: store.count_accounts().await?,
        series,
        now,
    })
}

/// The Prometheus text exposition of a snapshot. Counts are per installation; the `period`
/// label says over which window (`today`, `7d`, `30d`).
pub fn prometheus(d: &Dashboard) -> String {
    let mut out = String::new();
    let periods: [(&str, Period, &str); 20] = [
        (
            "sealpost_mails_encrypted",
            d.encrypted,
            "Recipients a mail was encrypted for",
        ),
        (
            "sealpost_mails_passed",
            d.passed,
            "Recipients a mail was passed through to",
        ),
        (
            "sealpost_mails_bounced",
            d.bounced,
            "Recipients that bounced",
        ),
        (
            "sealpost_accounts_created",
            d.new_accounts,
            "New recipient accounts",
        ),
        (
            "sealpost_portal_logins",
            d.logins,
            "Successful portal logins",
        ),
        (
            "sealpost_portal_login_failures",
            d.login_failed,
            "Failed portal logins",
        ),
        ("sealpost_lockouts", d.lockouts, "Account lockouts"),
        (
            "sealpost_opens",
            d.opens,
            "Secure messages opened for the first time",
        ),
        ("sealpost_replies", d.replies, "Secure replies sent"),
        (
            "sealpost_revocations",
            d.revocations,
            "Copies of secure messages revoked",
        ),
        (
            "sealpost_expiries",
            d.expiries,
            "Copies of secure messages that expired",
        ),
        (
            "sealpost_secret_answer_failures",
            d.answer_failed,
            "Wrong secret answers",
        ),
        (
            "sealpost_password_resets",
            d.password_resets,
            "Passwords replaced by a secret answer",
        ),
        (
            "sealpost_source_throttled",
            d.source_throttled,
            "Sign-ins and answers refused because their client address had too many failures",
        ),
        (
            "sealpost_admin_logins",
            d.admin_logins,
            "Successful admin sign-ins",
        ),
        (
            "sealpost_admin_login_failures",
            d.admin_login_failed,
            "Failed admin sign-ins",
        ),
        (
            "sealpost_admin_lockouts",
            d.admin_lockouts,
            "Admin lockouts",
        ),
        (
            "sealpost_content_reads",
            d.content_reads,
            "Decrypted messages shown",
        ),
        (
            "sealpost_part_downloads",
            d.part_downloads,
            "Parts of decrypted messages downloaded",
        ),
        (
            "sealpost_eml_downloads",
            d.eml_downloads,
            "Decrypted messages downloaded as .eml",
        ),
    ];
    for (name, p, help) in periods {
        out.push_str(&format!("# HELP {name} {help}.\n# TYPE {name} gauge\n"));
        for (label, v) in [("today", p.today), ("7d", p.days7), ("30d", p.days30)] {
            out.push_str(&format!("{name}{{period=\"{label}\"}} {v}\n"));
        }
    }
    let gauges: [(&str, i64, &str); 5] = [
        (
            "sealpost_queue_items",
            d.queue.queued,
            "Mails in the outbound queue",
        ),
        (
            "sealpost_queue_deferred",
            d.queue.deferred,
            "Queued mails waiting for a retry",
        ),
        (
            "sealpost_queue_oldest_age_seconds",
            d.oldest_age_secs.unwrap_or(0),
            "Age of the oldest queued mail",
        ),
        ("sealpost_accounts", d.accounts_total, "Recipient accounts"),
        (
            "sealpost_accounts_locked",
            d.locked_now,
            "Accounts locked right now",
        ),
    ];
    for (name, v, help) in gauges {
        out.push_str(&format!(
            "# HELP {name} {help}.\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    }
    out.push_str(
        "# HELP sealpost_node_heartbeat_age_seconds Seconds since a node's last heartbeat.\n",
    );
    out.push_str("# TYPE sealpost_node_heartbeat_age_seconds gauge\n");
    for n in &d.nodes {
        let name: String = n
            .name
            .chars()
            .filter(|c| !matches!(c, '"' | '\\' | '\n'))
            .collect();
        out.push_str(&format!(
            "sealpost_node_heartbeat_age_seconds{{node=\"{name}\"}} {}\n",
            (d.now - n.heartbeat_at).max(0)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_add_up_by_age() {
        let rows = vec![
            (100, ENCRYPTED.to_string(), 1),
            (99, ENCRYPTED.to_string(), 2),
            (94, ENCRYPTED.to_string(), 4),
            (93, ENCRYPTED.to_string(), 8),
            (71, ENCRYPTED.to_string(), 16),
            (100, BOUNCED.to_string(), 32),
        ];
        let p = period_from_rows(&rows, ENCRYPTED, 100);
        assert_eq!(
            p,
            Period {
                today: 1,
                days7: 7,
                days30: 31
            }
        );
    }
}

/// Per-process metrics for Prometheus, which scrapes every node: delivery attempts by result
/// and web request latency. Kept in atomics because they change on every request.
pub mod live {
    use std::fmt::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};

    static DELIVERED: AtomicU64 = AtomicU64::new(0);
    static DEFERRED: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicU64 = AtomicU64::new(0);

    /// Upper bounds (seconds) of the latency histogram's buckets.
    const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
    static BUCKET_COUNTS: [AtomicU64; 10] = [const { AtomicU64::new(0) }; 10];
    static REQUESTS: AtomicU64 = AtomicU64::new(0);
    static SUM_MICROS: AtomicU64 = AtomicU64::new(0);

    /// Per-recipient results of one delivery attempt.
    pub fn delivery(delivered: usize, deferred: usize, failed: usize) {
        DELIVERED.fetch_add(delivered as u64, Ordering::Relaxed);
        DEFERRED.fetch_add(deferred as u64, Ordering::Relaxed);
        FAILED.fetch_add(failed as u64, Ordering::Relaxed);
    }

    pub fn observe_request(elapsed: std::time::Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(BUCKET_COUNTS.iter()) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        SUM_MICROS.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn prometheus() -> String {
        let mut out = String::new();
        out.push_str("# HELP sealpost_delivery_attempts_total Per-recipient delivery results on this node.\n");
        out.push_str("# TYPE sealpost_delivery_attempts_total counter\n");
        for (result, v) in [
            ("delivered", &DELIVERED),
            ("deferred", &DEFERRED),
            ("failed", &FAILED),
        ] {
            let _ = writeln!(
                out,
                "sealpost_delivery_attempts_total{{result=\"{result}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP sealpost_http_request_duration_seconds Web request latency on this node.\n",
        );
        out.push_str("# TYPE sealpost_http_request_duration_seconds histogram\n");
        for (bound, count) in BUCKETS.iter().zip(BUCKET_COUNTS.iter()) {
            let _ = writeln!(
                out,
                "sealpost_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let total = REQUESTS.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "sealpost_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "sealpost_http_request_duration_seconds_sum {}",
            SUM_MICROS.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "sealpost_http_request_duration_seconds_count {total}");
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn histogram_buckets_are_cumulative() {
            observe_request(std::time::Duration::from_millis(30));
            let text = prometheus();
            let value = |le: &str| -> u64 {
                let key = format!("sealpost_http_request_duration_seconds_bucket{{le=\"{le}\"}} ");
                let line = text.lines().find(|l| l.starts_with(&key)).unwrap();
                line[key.len()..].parse().unwrap()
            };
            assert!(value("0.05") >= 1);
            assert!(value("+Inf") >= value("0.05"));
            assert!(value("0.05") >= value("0.025"));
        }
    }
}
