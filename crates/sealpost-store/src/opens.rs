//! Temporary opens: a payload posted to `/open` waits here under a one-time token until the
//! recipient's browser comes back with its session cookie. The payload is the envelope itself,
//! which is ciphertext, so nothing readable is stored.
//!
//! Envelopes up to [`TEMP_OPEN_CHUNK`] bytes take one row. Larger ones are stored in rows of
//! that size, written as they arrive ([`TempOpenWriter`]), and one last row under the token's
//! hash names them: until it exists the envelope is not there, and it expires and is purged
//! together with its chunks. A single large row cost a lot: every driver copies a bound value
//! a few times over (SQLite for the binding, the record and its pages), so a 20 MB envelope
//! in one statement briefly needed some 80 MB more, held SQLite's only write lock for the
//! whole write, and would exceed MySQL's `max_allowed_packet` (16 MB on older servers).
//!
//! On SQLite these writes are not synced to disk (`synchronous = NORMAL` for the statement,
//! which in WAL mode keeps the database consistent and every other commit as durable as
//! before): a temporary open needs no power-cut durability, since the recipient's browser
//! still has the payload and simply posts it again. The chunks of a large envelope also do
//! not set off SQLite's automatic checkpoint (which would copy the megabytes just written
//! into the database file, with two syncs, inside the request): the writer runs that
//! checkpoint itself, in the background, once the envelope is complete.

use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};

use crate::{Backend, Result, Store};

/// Size of the rows a large envelope is stored in (all but the last are this size).
pub const TEMP_OPEN_CHUNK: usize = 1 << 20;

/// The row under the token's hash of a chunked envelope holds this marker, the chunk count
/// and the total length (16 bytes); the chunks are rows `{token_hash}.{i}`, i = 1..=n. An
/// envelope always starts with "SPX", so a stored envelope is never read as an index.
const INDEX_MAGIC: &[u8; 4] = b"SPC\x01";

const INSERT: &str =
    "INSERT INTO temp_opens (token_hash, payload, created_at, expires_at) VALUES (?, ?, ?, ?)";

fn chunk_key(token_hash: &str, i: usize) -> String {
    format!("{token_hash}.{i}")
}

fn index_record(chunks: usize, total: usize) -> Vec<u8> {
    let mut out = INDEX_MAGIC.to_vec();
    out.extend_from_slice(&(chunks as u32).to_be_bytes());
    out.extend_from_slice(&(total as u64).to_be_bytes());
    out
}

/// `(chunks, total)` of an index record.
fn parse_index(row: &[u8]) -> Option<(usize, usize)> {
    let rest = row.strip_prefix(INDEX_MAGIC)?;
    let (chunks, total) = rest.split_first_chunk::<4>()?;
    let total: [u8; 8] = total.try_into().ok()?;
    let chunks = usize::try_from(u32::from_be_bytes(*chunks)).ok()?;
    let total = usize::try_from(u64::from_be_bytes(total)).ok()?;
    (chunks >= 1 && total > 0).then_some((chunks, total))
}

/// A large envelope being stored chunk by chunk as it arrives. Nothing is visible until
/// [`finish`](Self::finish); a writer dropped before that removes the chunks it wrote (in the
/// background; the purge of expired opens would remove them too).
pub struct TempOpenWriter {
    store: Store,
    token_hash: String,
    now: i64,
    expires_at: i64,
    chunks: usize,
    total: usize,
    finished: bool,
}

impl Store {
    /// Parks an envelope (one row, or chunks and an index row).
    pub async fn insert_temp_open(
        &self,
        token_hash: &str,
        payload: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        if payload.len() <= TEMP_OPEN_CHUNK {
            return self
                .insert_temp_row(token_hash, payload, now, expires_at, false)
                .await;
        }
        let mut writer = self.temp_open_writer(token_hash, now, expires_at);
        for chunk in payload.chunks(TEMP_OPEN_CHUNK) {
            writer.write_chunk(chunk).await?;
        }
        writer.finish().await
    }

    /// A writer for an envelope of more than [`TEMP_OPEN_CHUNK`] bytes.
    pub fn temp_open_writer(&self, token_hash: &str, now: i64, expires_at: i64) -> TempOpenWriter {
        TempOpenWriter {
            store: self.clone(),
            token_hash: token_hash.to_string(),
            now,
            expires_at,
            chunks: 0,
            total: 0,
            finished: false,
        }
    }

    /// The parked envelope, None when it is unknown, expired, or (chunked) incomplete.
    pub async fn temp_open(&self, token_hash: &str, now: i64) -> Result<Option<Vec<u8>>> {
        let Some(first) = self.temp_open_row(token_hash, now).await? else {
            return Ok(None);
        };
        let Some((chunks, total)) = parse_index(&first) else {
            return Ok(Some(first));
        };
        let mut out = Vec::with_capacity(total);
        for i in 1..=chunks {
            match self.temp_open_row(&chunk_key(token_hash, i), now).await? {
                Some(chunk) if out.len() + chunk.len() <= total => out.extend_from_slice(&chunk),
                _ => return Ok(None),
            }
        }
        Ok((out.len() == total).then_some(out))
    }

    /// Rows (index rows and chunks) of parked envelopes, expired or not: what uploads have
    /// put on disk.
    pub async fn count_temp_open_rows(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar(&self.sql("SELECT COUNT(*) FROM temp_opens"))
                .fetch_one(self.pool())
                .await?,
        )
    }

    pub async fn delete_temp_open(&self, token_hash: &str) -> Result<()> {
        let first: Option<Vec<u8>> =
            sqlx::query_scalar(&self.sql("SELECT payload FROM temp_opens WHERE token_hash = ?"))
                .bind(token_hash)
                .fetch_optional(self.pool())
                .await?;
        let chunks = first.as_deref().and_then(parse_index).map_or(0, |(n, _)| n);
        // The index row first: from then on nobody reads the chunks.
        self.delete_temp_rows(token_hash, chunks).await
    }

    async fn delete_temp_rows(&self, token_hash: &str, chunks: usize) -> Result<()> {
        let delete = self.sql("DELETE FROM temp_opens WHERE token_hash = ?");
        sqlx::query(&delete)
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        for i in 1..=chunks {
            sqlx::query(&delete)
                .bind(chunk_key(token_hash, i))
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    async fn temp_open_row(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            &self.sql("SELECT payload FROM temp_opens WHERE token_hash = ? AND expires_at > ?"),
        )
        .bind(key)
        .bind(now)
        .fetch_optional(self.pool())
        .await?)
    }

    /// One row; on SQLite without syncing its commit and, with `no_checkpoint`, without
    /// setting off an automatic checkpoint.
    async fn insert_temp_row(
        &self,
        key: &str,
        bytes: &[u8],
        now: i64,
        expires_at: i64,
        no_checkpoint: bool,
    ) -> Result<()> {
        let sql = self.sql(INSERT);
        let insert = sqlx::query(&sql)
            .bind(key)
            .bind(bytes)
            .bind(now)
            .bind(expires_at);
        if self.backend != Backend::Sqlite {
            insert.execute(self.pool()).await?;
            return Ok(());
        }
        let mut conn = Relaxed(Some(self.pool().acquire().await?));
        let Some(c) = conn.0.as_mut() else {
            return Ok(());
        };
        let saved = relax(c, no_checkpoint).await?;
        let result = insert.execute(&mut **c).await;
        restore(c, saved).await?;
        conn.0.take(); // settings restored: back to the pool
        result?;
        Ok(())
    }
}

impl TempOpenWriter {
    /// Stores the next chunk: at most [`TEMP_OPEN_CHUNK`] bytes (every chunk but the last
    /// should be exactly that).
    pub async fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        let key = chunk_key(&self.token_hash, self.chunks + 1);
        self.store
            .insert_temp_row(&key, chunk, self.now, self.expires_at, true)
            .await?;
        self.chunks += 1;
        self.total += chunk.len();
        Ok(())
    }

    /// Bytes stored so far.
    pub fn written(&self) -> usize {
        self.total
    }

    /// Writes the index row: from now on the envelope can be read. On SQLite the WAL
    /// checkpoint the chunks call for then runs in the background.
    pub async fn finish(mut self) -> Result<()> {
        let index = index_record(self.chunks, self.total);
        self.store
            .insert_temp_row(&self.token_hash, &index, self.now, self.expires_at, true)
            .await?;
        self.finished = true;
        if self.store.backend == Backend::Sqlite {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(store.pool())
                    .await
                {
                    tracing::debug!(error = %e, "checkpoint after a temporary open failed");
                }
            });
        }
        Ok(())
    }
}

impl Drop for TempOpenWriter {
    fn drop(&mut self) {
        if self.finished || self.chunks == 0 {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let token_hash = std::mem::take(&mut self.token_hash);
            let chunks = self.chunks;
            runtime.spawn(async move {
                if let Err(e) = store.delete_temp_rows(&token_hash, chunks).await {
                    tracing::debug!(error = %e, "abandoned temporary open left to expire");
                }
            });
        }
    }
}

/// A pooled SQLite connection whose settings may differ from the pool's: unless taken out
/// after they were restored, it is detached (closed) when dropped, also when the request
/// that used it is cancelled halfway.
struct Relaxed(Option<PoolConnection<Any>>);

impl Drop for Relaxed {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

/// A connection's settings as they were before [`relax`].
#[derive(Clone, Copy)]
struct Saved {
    synchronous: i64,
    /// Only when it was changed.
    autocheckpoint: Option<i64>,
}

/// `synchronous = NORMAL` (from FULL or EXTRA; never stricter than before) on this
/// connection and, with `no_checkpoint`, no automatic checkpoint.
async fn relax(conn: &mut PoolConnection<Any>, no_checkpoint: bool) -> Result<Saved> {
    let synchronous: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut **conn)
        .await?
        .try_get(0)?;
    let autocheckpoint = if no_checkpoint {
        let pages: i64 = sqlx::query("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut **conn)
            .await?
            .try_get(0)?;
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut **conn)
            .await?;
        Some(pages)
    } else {
        None
    };
    if synchronous > 1 {
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut **conn)
            .await?;
    }
    Ok(Saved {
        synchronous,
        autocheckpoint,
    })
}

async fn restore(conn: &mut PoolConnection<Any>, saved: Saved) -> Result<()> {
    // Plain integers read from SQLite itself, never outside input.
    if saved.synchronous > 1 {
        sqlx::query(&format!("PRAGMA synchronous = {}", saved.synchronous))
            .execute(&mut **conn)
            .await?;
    }
    if let Some(pages) = saved.autocheckpoint {
        sqlx::query(&format!("PRAGMA wal_autocheckpoint = {pages}"))
            .execute(&mut **conn)
            .await?;
    }
    Ok(())
}

#[cfg(feature = "testing")]
impl Store {
    /// `(synchronous, wal_autocheckpoint)` of as many pooled SQLite connections as the pool
    /// holds, all held at once so that every idle one is among them.
    pub async fn pooled_sqlite_settings(&self) -> Result<Vec<(i64, i64)>> {
        let mut held = Vec::new();
        let mut out = Vec::new();
        for _ in 0..self.pool().options().get_max_connections() {
            let mut conn = self.pool().acquire().await?;
            let synchronous: i64 = sqlx::query("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            let pages: i64 = sqlx::query("PRAGMA wal_autocheckpoint")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            out.push((synchronous, pages));
            held.push(conn);
        }
        Ok(out)
    }
}
