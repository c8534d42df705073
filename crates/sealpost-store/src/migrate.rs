//! Versioned schema migrations, one SQL file per version and backend, embedded in the binary.

use sqlx::{AnyConnection, Connection};

use crate::{Backend, Result, Store, StoreError, sql_for, unix_now};

struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
    mysql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
        mysql: include_str!("../migrations/mysql/0001_init.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_admin.sql"),
        postgres: include_str!("../migrations/postgres/0002_admin.sql"),
        mysql: include_str!("../migrations/mysql/0002_admin.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_lockout.sql"),
        postgres: include_str!("../migrations/postgres/0003_lockout.sql"),
        mysql: include_str!("../migrations/mysql/0003_lockout.sql"),
    },
    Migration {
        version: 4,
        sqlite: include_str!("../migrations/sqlite/0004_admin_totp_step.sql"),
        postgres: include_str!("../migrations/postgres/0004_admin_totp_step.sql"),
        mysql: include_str!("../migrations/mysql/0004_admin_totp_step.sql"),
    },
    Migration {
        version: 5,
        sqlite: include_str!("../migrations/sqlite/0005_recovery.sql"),
        postgres: include_str!("../migrations/postgres/0005_recovery.sql"),
        mysql: include_str!("../migrations/mysql/0005_recovery.sql"),
    },
    Migration {
        version: 6,
        sqlite: include_str!("../migrations/sqlite/0006_link_copies.sql"),
        postgres: include_str!("../migrations/postgres/0006_link_copies.sql"),
        mysql: include_str!("../migrations/mysql/0006_link_copies.sql"),
    },
    Migration {
        version: 7,
        sqlite: include_str!("../migrations/sqlite/0007_security_phrase.sql"),
        postgres: include_str!("../migrations/postgres/0007_security_phrase.sql"),
        mysql: include_str!("../migrations/mysql/0007_security_phrase.sql"),
    },
    Migration {
        version: 8,
        sqlite: include_str!("../migrations/sqlite/0008_message_control.sql"),
        postgres: include_str!("../migrations/postgres/0008_message_control.sql"),
        mysql: include_str!("../migrations/mysql/0008_message_control.sql"),
    },
    Migration {
        version: 9,
        sqlite: include_str!("../migrations/sqlite/0009_sender_links.sql"),
        postgres: include_str!("../migrations/postgres/0009_sender_links.sql"),
        mysql: include_str!("../migrations/mysql/0009_sender_links.sql"),
    },
    Migration {
        version: 10,
        sqlite: include_str!("../migrations/sqlite/0010_mailbox_codes.sql"),
        postgres: include_str!("../migrations/postgres/0010_mailbox_codes.sql"),
        mysql: include_str!("../migrations/mysql/0010_mailbox_codes.sql"),
    },
    Migration {
        version: 11,
        sqlite: include_str!("../migrations/sqlite/0011_second_factor.sql"),
        postgres: include_str!("../migrations/postgres/0011_second_factor.sql"),
        mysql: include_str!("../migrations/mysql/0011_second_factor.sql"),
    },
    Migration {
        version: 12,
        sqlite: include_str!("../migrations/sqlite/0012_passkeys.sql"),
        postgres: include_str!("../migrations/postgres/0012_passkeys.sql"),
        mysql: include_str!("../migrations/mysql/0012_passkeys.sql"),
    },
];

/// Key of the PostgreSQL advisory lock / name of the MariaDB named lock that serializes
/// migrations across nodes.
const LOCK_KEY: i64 = 0x5ea1_9057;
const LOCK_NAME: &str = "sealpost_migrate";

pub(crate) async fn run(store: &Store) -> Result<Vec<i64>> {
    let backend = store.backend();
    // Everything runs on one connection that holds a server-side lock, so nodes starting at
    // the same time migrate one after the other (PostgreSQL would otherwise fail on concurrent
    // CREATE TABLE, and MariaDB commits DDL implicitly, so its transaction protects nothing).
    // SQLite needs no lock: BEGIN IMMEDIATE already serializes writers.
    let mut conn = store.pool().acquire().await?;
    lock(backend, &mut conn).await?;
    let result = apply(backend, &mut conn).await;
    if unlock(backend, &mut conn).await.is_err() {
        // Never hand a connection that may still hold the lock back to the pool.
        let _ = conn.detach().close().await;
    }
    result
}

async fn lock(backend: Backend, conn: &mut AnyConnection) -> Result<()> {
    match backend {
        Backend::Sqlite => {}
        Backend::Postgres => {
            // pg_advisory_lock returns `void`, which `Any` cannot decode; count the row instead.
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM (SELECT pg_advisory_lock($1)) AS migration_lock",
            )
            .bind(LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
        }
        Backend::MySql => {
            let got: Option<i64> = sqlx::query_scalar("SELECT CAST(GET_LOCK(?, 600) AS SIGNED)")
                .bind(LOCK_NAME)
                .fetch_one(&mut *conn)
                .await?;
            if got != Some(1) {
                return Err(StoreError::Migration {
                    version: 0,
                    reason: "timed out waiting for another node's migration".into(),
                });
            }
        }
    }
    Ok(())
}

async fn unlock(backend: Backend, conn: &mut AnyConnection) -> Result<()> {
    match backend {
        Backend::Sqlite => {}
        Backend::Postgres => {
            sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut *conn)
                .await?;
        }
        Backend::MySql => {
            sqlx::query_scalar::<_, Option<i64>>("SELECT CAST(RELEASE_LOCK(?) AS SIGNED)")
                .bind(LOCK_NAME)
                .fetch_one(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn apply(backend: Backend, conn: &mut AnyConnection) -> Result<Vec<i64>> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let mut tx = match backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            _ => conn.begin().await?,
        };
        let done: Option<i64> = sqlx::query_scalar(&sql_for(
            backend,
            "SELECT version FROM schema_migrations WHERE version = ?",
        ))
        .bind(m.version)
        .fetch_optional(&mut *tx)
        .await?;
        if done.is_some() {
            continue;
        }
        let script = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
            Backend::MySql => m.mysql,
        };
        for statement in split_statements(script) {
            sqlx::query(&statement)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Migration {
                    version: m.version,
                    reason: e.to_string(),
                })?;
        }
        let inserted = sqlx::query(&sql_for(
            backend,
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
        ))
        .bind(m.version)
        .bind(unix_now())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                applied.push(m.version);
            }
            // Another node applied it at the same moment; its schema is the same as ours.
            Err(e) => match StoreError::from_write(e) {
                StoreError::Conflict => continue,
                other => return Err(other),
            },
        }
    }
    Ok(applied)
}

/// Splits a migration script on `;` at line ends, dropping `--` comment lines.
fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let stmt = current.trim().trim_end_matches(';').to_string();
            if !stmt.is_empty() {
                out.push(stmt);
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}
