//! Test support (cargo feature `testing`): a throw-away database per test on every backend
//! that is available, so tests of this and other crates run in parallel without interfering.
//!
//! SQLite is always available (a temporary file). PostgreSQL and MariaDB/MySQL are used when
//! [`POSTGRES_URL_VAR`] / [`MYSQL_URL_VAR`] hold a server URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres` or `mysql://root@127.0.0.1:3306/test`; the
//! user must be allowed to create and drop databases.
//!
//! ```ignore
//! #[tokio::test]
//! async fn works_on_postgres() {
//!     sealpost_store::testing::run_store_test("postgres", |store| async move {
//!         assert_eq!(store.count_accounts().await.unwrap(), 0);
//!     })
//!     .await;
//! }
//! ```

use std::future::Future;
use std::path::PathBuf;

use sqlx::{AnyConnection, Connection, Executor};

use crate::{Backend, Result, Store, StoreError, redact_url};

/// Environment variable naming a PostgreSQL server URL for the backend tests.
pub const POSTGRES_URL_VAR: &str = "SEALPOST_TEST_POSTGRES_URL";
/// Environment variable naming a MariaDB/MySQL server URL for the backend tests.
pub const MYSQL_URL_VAR: &str = "SEALPOST_TEST_MYSQL_URL";
/// The "server URL" of SQLite: [`fresh_database`] turns it into a new temporary file.
pub const SQLITE_SERVER_URL: &str = "sqlite:";

/// Every backend with its server URL, `None` when its environment variable is not set:
/// `[("sqlite", Some("sqlite:")), ("postgres", ..), ("mysql", ..)]`.
pub fn test_server_urls() -> Vec<(&'static str, Option<String>)> {
    ["sqlite", "postgres", "mysql"]
        .into_iter()
        .map(|label| (label, server_url(label)))
        .collect()
}

/// The server URL for one backend label (`sqlite`, `postgres`, `mysql`), or `None` when the
/// backend is not configured. An empty variable counts as not set.
pub fn server_url(label: &str) -> Option<String> {
    let var = match label {
        "sqlite" => return Some(SQLITE_SERVER_URL.to_string()),
        "postgres" => POSTGRES_URL_VAR,
        "mysql" | "mariadb" => MYSQL_URL_VAR,
        _ => return None,
    };
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// Like [`server_url`], but prints one line saying the backend is skipped when it is missing.
pub fn server_url_or_skip(label: &str) -> Option<String> {
    let url = server_url(label);
    if url.is_none() {
        let (var, name) = match label {
            "postgres" => (POSTGRES_URL_VAR, "PostgreSQL"),
            "mysql" | "mariadb" => (MYSQL_URL_VAR, "MariaDB/MySQL"),
            _ => ("(none)", label),
        };
        eprintln!("{var} not set: {name} store suite skipped");
    }
    url
}

/// Creates an empty database named `sp_test_<random hex>` on the server of `server_url` and
/// returns a URL pointing at it, with a guard that drops it again. For SQLite the database is
/// a new file in the system temporary directory (the path in `server_url` is ignored).
pub async fn fresh_database(server_url: &str) -> Result<(String, DropGuard)> {
    sqlx::any::install_default_drivers();
    let backend = Backend::from_url(server_url)?;
    let name = format!("sp_test_{}", uuid::Uuid::new_v4().simple());
    let target = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            Target {
                backend,
                server_url: server_url.to_string(),
                name,
                path: Some(path),
            }
        }
        Backend::Postgres | Backend::MySql => {
            let mut conn = admin_connection(server_url).await?;
            conn.execute(create_sql(backend, &name).as_str()).await?;
            let _ = conn.close().await;
            Target {
                backend,
                server_url: server_url.to_string(),
                name,
                path: None,
            }
        }
    };
    let url = match &target.path {
        Some(path) => format!("sqlite://{}", path.display()),
        None => with_database(server_url, &target.name),
    };
    Ok((
        url,
        DropGuard {
            target: Some(target),
        },
    ))
}

/// [`fresh_database`], connected and migrated.
pub async fn fresh_store(server_url: &str) -> Result<(Store, DropGuard)> {
    let (url, guard) = fresh_database(server_url).await?;
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    Ok((store, guard))
}

/// Runs `test` against a fresh, migrated store of the backend `label` (`sqlite`, `postgres`,
/// `mysql`), or prints a skip line and returns when that backend is not configured. The
/// database is dropped afterwards, also when the test panics (the panic is then resumed).
pub async fn run_store_test<F, Fut>(label: &str, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(server) = server_url_or_skip(label) else {
        return;
    };
    let (store, guard) = match fresh_store(&server).await {
        Ok(v) => v,
        Err(e) => panic!(
            "cannot prepare a {label} test database on {}: {e}",
            redact_url(&server)
        ),
    };
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    if let Err(e) = guard.drop_database().await {
        eprintln!("could not drop {label} test database: {e}");
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("{label} store test did not finish: {e}"),
        }
    }
}

/// Drops the test database when dropped (best effort, errors are printed). Prefer
/// [`DropGuard::drop_database`] from async code after closing every pool on the database.
#[must_use = "the database is dropped when the guard is dropped"]
pub struct DropGuard {
    target: Option<Target>,
}

impl std::fmt::Debug for DropGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropGuard")
            .field("database", &self.database_name())
            .finish()
    }
}

struct Target {
    backend: Backend,
    server_url: String,
    name: String,
    path: Option<PathBuf>,
}

impl DropGuard {
    /// The name of the test database (`sp_test_<hex>`).
    pub fn database_name(&self) -> Option<&str> {
        self.target.as_ref().map(|t| t.name.as_str())
    }

    /// Drops the database now. On PostgreSQL remaining connections are terminated.
    pub async fn drop_database(mut self) -> Result<()> {
        match self.target.take() {
            Some(target) => target.drop_now().await,
            None => Ok(()),
        }
    }

    /// Keeps the database (e.g. to inspect it after a failure).
    pub fn keep(mut self) {
        self.target = None;
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let Some(target) = self.target.take() else {
            return;
        };
        if let Some(path) = &target.path {
            remove_sqlite_files(path);
            return;
        }
        // Drop has no async context; a thread with its own runtime works inside or outside one.
        let name = target.name.clone();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            rt.block_on(target.drop_now())
        });
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {name}: {e}"),
            Err(_) => eprintln!("could not drop test database {name}: cleanup panicked"),
        }
    }
}

impl Target {
    async fn drop_now(self) -> Result<()> {
        if let Some(path) = &self.path {
            remove_sqlite_files(path);
            return Ok(());
        }
        let mut conn = admin_connection(&self.server_url).await?;
        let result = match self.backend {
            Backend::Postgres => {
                let forced = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                match conn.execute(forced.as_str()).await {
                    Ok(_) => Ok(()),
                    // PostgreSQL before 13 has no FORCE.
                    Err(_) => conn
                        .execute(format!("DROP DATABASE IF EXISTS {}", self.name).as_str())
                        .await
                        .map(drop),
                }
            }
            _ => conn
                .execute(format!("DROP DATABASE IF EXISTS {}", self.name).as_str())
                .await
                .map(drop),
        };
        let _ = conn.close().await;
        Ok(result?)
    }
}

async fn admin_connection(server_url: &str) -> Result<AnyConnection> {
    AnyConnection::connect(server_url).await.map_err(|e| {
        StoreError::Database(sqlx::Error::Configuration(
            format!("cannot connect to {}: {e}", redact_url(server_url)).into(),
        ))
    })
}

fn create_sql(backend: Backend, name: &str) -> String {
    match backend {
        Backend::MySql => {
            format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        }
        _ => format!("CREATE DATABASE {name}"),
    }
}

fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Replaces the database (path) of a server URL, keeping credentials, host and query.
fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.find('?') {
        Some(q) => (&server_url[..q], &server_url[q..]),
        None => (server_url, ""),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{root}/{database}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@localhost?ssl-mode=disabled", "x"),
            "mysql://root@localhost/x?ssl-mode=disabled"
        );
        assert_eq!(
            with_database("mysql://u:p@h:1/test/", "x"),
            "mysql://u:p@h:1/x"
        );
    }
}
