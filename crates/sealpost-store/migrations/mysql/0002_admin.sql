-- Sealpost schema v2 (MariaDB/MySQL): administrators and daily statistics counters.
CREATE TABLE admins (
    id VARCHAR(191) PRIMARY KEY,
    name VARCHAR(191) NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    totp_secret TEXT,
    must_change_password BIGINT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- One row per UTC day and counter name, incremented by every node (an upsert), so the
-- dashboard and /metrics agree across nodes without a metrics server.
CREATE TABLE stat_counters (
    day BIGINT NOT NULL,
    name VARCHAR(191) NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (day, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX accounts_created ON accounts (created_at);
CREATE INDEX message_ledger_account ON message_ledger (account_id(191));
CREATE INDEX message_ledger_opened ON message_ledger (first_opened_at);
