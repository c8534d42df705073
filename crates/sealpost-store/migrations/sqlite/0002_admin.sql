-- Sealpost schema v2 (SQLite): administrators and daily statistics counters.
CREATE TABLE admins (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    totp_secret TEXT,
    must_change_password INTEGER NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    created_at INTEGER NOT NULL,
    last_login_at INTEGER
);
-- One row per UTC day and counter name, incremented by every node (an upsert), so the
-- dashboard and /metrics agree across nodes without a metrics server.
CREATE TABLE stat_counters (
    day INTEGER NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (day, name)
);
CREATE INDEX accounts_created ON accounts (created_at);
CREATE INDEX message_ledger_account ON message_ledger (account_id);
CREATE INDEX message_ledger_opened ON message_ledger (first_opened_at);
