//! Persistent state of a Sealpost node: accounts, keys, sessions, temporary opens, the
//! outbound queue, settings, audit events, the message ledger, node heartbeats and the
//! encrypted copies of the opt-in `link` delivery profile.
//!
//! One [`Store`] serves every backend. Queries are written once with `?` placeholders in the
//! SQL that SQLite, PostgreSQL and MariaDB share; the few statements where the dialects differ
//! (upserts) are chosen per [`Backend`]. The domain sees only plain Rust types, never a driver type.

mod access;
mod accounts;
mod admins;
mod attempts;
mod audit;
mod backup;
mod ledger;
mod ledger_search;
mod link_copies;
mod message_control;
mod migrate;
mod nodes;
mod opens;
mod passkeys;
mod phrases;
mod queue;
mod recovery;
mod second_factor;
mod sender_links;
mod sessions;
mod settings;
mod stats;
#[cfg(feature = "testing")]
pub mod testing;

pub use access::AccountAccess;
pub use accounts::{Account, AccountStatus, NewAccount, SealingRecipient};
pub use admins::Admin;
pub use attempts::{LockPolicy, Principal, Reservation};
pub use audit::AuditEvent;
pub use backup::StoredKey;
pub use ledger::LedgerEntry;
pub use ledger_search::LedgerQuery;
pub use link_copies::{LinkCopy, NewLinkCopy};
pub use message_control::{
    MessageEntry, MessageEvent, MessageEventKind, MessageFilter, Revocation, SealedEntry,
};
pub use nodes::NodeInfo;
pub use opens::{TEMP_OPEN_CHUNK, TempOpenWriter};
pub use passkeys::{ChallengeKind, NewPasskey, PasskeyChallenge, StoredPasskey};
pub use queue::{NewQueuedMail, QueueItem, QueueStats};
pub use second_factor::{NewPendingSignIn, PendingSignIn, RememberedDevice, TotpState};
pub use sender_links::{MessageSubject, NewSenderLink, SenderGrant};
pub use sessions::{NewSession, SessionKind, SessionRecord};
pub use stats::day_of;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

/// A database transaction spanning several repository calls; commit it or drop it to roll back.
pub type StoreTx = Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a record with this key already exists")]
    Conflict,
    #[error("unsupported database URL (expected sqlite://, postgres:// or mysql://): {0}")]
    UnsupportedUrl(String),
    #[error("migration {version} failed: {reason}")]
    Migration { version: i64, reason: String },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Unique-key violations become [`StoreError::Conflict`] so callers can retry or report them.
    fn from_write(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(StoreError::UnsupportedUrl(redact_url(url))),
        }
    }
}

/// Removes a password from a database URL before it appears in an error or log line.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Counter increments not yet written (see [`Store::buffer_counter`]).
    pending_counters: std::sync::Arc<std::sync::Mutex<Vec<(String, i64, i64)>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Connects and prepares the connection (SQLite: WAL, busy timeout, foreign keys).
    /// A SQLite file and its directory are created when missing.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => sqlite_url_with_create(url)?,
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|_| StoreError::UnsupportedUrl(redact_url(&url)))?;
        let mut pool_options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .max_connections(match backend {
                // SQLite has a single writer; a few connections let readers run beside it.
                Backend::Sqlite => 4,
                _ => 16,
            });
        if backend == Backend::Sqlite {
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // Deleted rows (a delivered credentials mail, an ended session) are
                    // overwritten with zeros instead of lingering in free space of the file.
                    conn.execute("PRAGMA secure_delete = ON").await?;
                    // FULL: a commit is on disk before the SMTP 250 goes out, so not even a
                    // power cut loses an accepted mail (NORMAL would, in WAL mode).
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    // Queue rows are written and deleted again within seconds. A longer WAL
                    // between checkpoints lets most of them die there without ever reaching
                    // the main file; a bigger page cache saves re-reading the queue's pages.
                    conn.execute("PRAGMA wal_autocheckpoint = 4000").await?;
                    conn.execute("PRAGMA cache_size = -8192").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(options).await?;
        Ok(Store {
            pool,
            backend,
            pending_counters: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every migration not yet applied; safe to run on every start and from many nodes.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        migrate::run(self).await
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`)
    /// so two writers queue on the busy timeout instead of failing on lock upgrade.
    pub async fn begin(&self) -> Result<StoreTx> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _ => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// SQLite: copies the write-ahead log into the database file and truncates it to zero
    /// bytes, so rows deleted since (delivered mails with their passwords, ended sessions) are
    /// gone from both files, not only from the newest page versions. A no-op on the servers.
    pub async fn checkpoint_wal(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Cheap round trip for readiness probes.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Rewrites `?` placeholders to `$n` for PostgreSQL; the SQL in this crate never has a
    /// literal question mark, so a plain scan is enough.
    fn sql<'a>(&self, query: &'a str) -> Cow<'a, str> {
        sql_for(self.backend, query)
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Most rows one multi-row statement carries: keeps every backend far below its limit on bound
/// parameters (SQLite's is the lowest, 32,766) and statements small enough to cache.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

/// `rows` copies of one `(?, …)` tuple, comma-separated, for a multi-row INSERT.
pub(crate) fn value_rows(rows: usize, tuple: &str) -> String {
    vec![tuple; rows].join(", ")
}

pub(crate) fn sql_for(backend: Backend, query: &str) -> Cow<'_, str> {
    if backend != Backend::Postgres || !query.contains('?') {
        return Cow::Borrowed(query);
    }
    let mut out = String::with_capacity(query.len() + 8);
    let mut n = 0;
    for c in query.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn sqlite_url_with_create(url: &str) -> Result<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(url.to_string());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        // Private like the files inside it (only directories made here get this mode).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(parent)
            .map_err(|e| {
                StoreError::Database(sqlx::Error::Configuration(
                    format!("cannot create {}: {e}", parent.display()).into(),
                ))
            })?;
    }
    restrict_database_files(std::path::Path::new(path), !url.contains("mode="))?;
    if url.contains("mode=") {
        Ok(url.to_string())
    } else if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

/// Makes the database file and its WAL and shared-memory files readable by the node's user
/// only. The file is created here (0600) before SQLite first opens it, because SQLite gives
/// new WAL and SHM files the mode of the database file; files an older version created with
/// a wider mode are narrowed. Changing the process's umask instead would race with every
/// other thread creating files.
fn restrict_database_files(path: &std::path::Path, create: bool) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let failed = |path: &std::path::Path, e: std::io::Error| {
        StoreError::Database(sqlx::Error::Configuration(
            format!("cannot restrict {}: {e}", path.display()).into(),
        ))
    };
    if create {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(path, e)),
        }
    }
    let mut files = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    for file in files {
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| failed(&file, e))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(&file, e)),
        }
    }
    Ok(())
}

/// Reads a text column. MariaDB/MySQL send `TEXT` columns as BLOB on the wire, which the `Any`
/// driver hands over as bytes, so bytes are accepted too and must be UTF-8.
pub(crate) fn text(row: &AnyRow, column: &str) -> Result<String> {
    opt_text(row, column)?.ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
}

/// Like [`text`] for a nullable column.
pub(crate) fn opt_text(row: &AnyRow, column: &str) -> Result<Option<String>> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(v) => Ok(v),
        Err(sqlx::Error::ColumnDecode { .. }) => {
            let bytes: Option<Vec<u8>> = row.try_get(column)?;
            bytes
                .map(|b| {
                    String::from_utf8(b)
                        .map_err(|_| StoreError::Corrupt(format!("{column} is not UTF-8")))
                })
                .transpose()
        }
        Err(e) => Err(e.into()),
    }
}

/// Current time in Unix seconds; the store keeps every time in this form.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Commits a transaction, mapping the driver's error into the store's.
pub async fn commit(tx: StoreTx) -> Result<()> {
    tx.commit().await.map_err(StoreError::from_write)
}

#[cfg(feature = "testing")]
impl Store {
    /// Runs arbitrary SQL; only for tests that simulate faults (e.g. a failing trigger).
    pub async fn execute_unchecked(&self, sql: &str) -> Result<()> {
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered() {
        assert_eq!(
            sql_for(Backend::Postgres, "SELECT a FROM t WHERE b = ? AND c = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
        assert_eq!(sql_for(Backend::Sqlite, "x = ?"), "x = ?");
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn unknown_scheme_is_rejected() {
        assert!(matches!(
            Backend::from_url("oracle://x"),
            Err(StoreError::UnsupportedUrl(_))
        ));
    }
}
