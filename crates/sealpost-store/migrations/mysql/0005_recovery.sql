-- Sealpost schema v5 (MariaDB/MySQL): self-service recovery codes and admin reset links.
-- One mailed recovery code per account: only a keyed hash of the code is kept, with its
-- wrong tries and the count of codes sent in the current rate-limit window.
CREATE TABLE recovery_codes (
    account_id VARCHAR(191) PRIMARY KEY,
    code_hash VARCHAR(191) NOT NULL,
    attempts BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    sent_in_window BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- One-time links that let a recipient set a password after an administrator's reset:
-- only the hash of the 256-bit token is kept.
CREATE TABLE reset_links (
    token_hash VARCHAR(191) PRIMARY KEY,
    account_id VARCHAR(191) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX reset_links_account ON reset_links (account_id);
