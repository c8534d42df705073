-- Sealpost schema v1 (MariaDB/MySQL). Times are Unix seconds; booleans are 0/1 integers so that
-- the same queries run on every backend.
CREATE TABLE accounts (
    id VARCHAR(191) PRIMARY KEY,
    address VARCHAR(320) NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    must_change_password BIGINT NOT NULL,
    language TEXT,
    secret_question TEXT,
    secret_answer_hash TEXT,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    failed_answers BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    last_login_at BIGINT,
    last_login_ip TEXT,
    prev_login_at BIGINT,
    prev_login_ip TEXT,
    valid_until BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE recipient_keys (
    account_id VARCHAR(191) NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    wrapped LONGBLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE sessions (
    token_hash VARCHAR(191) PRIMARY KEY,
    kind TEXT NOT NULL,
    principal_id VARCHAR(191) NOT NULL,
    csrf_token TEXT NOT NULL,
    ip TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX sessions_principal ON sessions (principal_id);
CREATE TABLE temp_opens (
    token_hash VARCHAR(191) PRIMARY KEY,
    payload LONGBLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX temp_opens_expiry ON temp_opens (expires_at);
CREATE TABLE outbound_queue (
    id VARCHAR(191) PRIMARY KEY,
    kind TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    data LONGBLOB NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    give_up_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX outbound_queue_due ON outbound_queue (next_attempt_at);
CREATE TABLE settings (
    name VARCHAR(191) PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE audit_events (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT,
    detail TEXT,
    ip TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX audit_events_at ON audit_events (at);
CREATE TABLE message_ledger (
    envelope_id VARCHAR(191) PRIMARY KEY,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    first_opened_at BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX message_ledger_created ON message_ledger (created_at);
CREATE TABLE nodes (
    name VARCHAR(191) PRIMARY KEY,
    version TEXT NOT NULL,
    roles TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
