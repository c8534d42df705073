-- Sealpost schema v6 (MariaDB/MySQL): encrypted copies kept for the opt-in `link` delivery
-- profile. The payload is the envelope exactly as sealed for the recipient (ciphertext); it is
-- kept until `expires_at` (`delivery.link_days`) and then deleted by the sweeper. Only the
-- SHA-256 of the link id is stored, like session tokens.
CREATE TABLE link_copies (
    link_hash VARCHAR(191) PRIMARY KEY,
    envelope_id VARCHAR(191) NOT NULL,
    account_id VARCHAR(191) NOT NULL,
    payload LONGBLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX link_copies_envelope ON link_copies (envelope_id);
CREATE INDEX link_copies_account ON link_copies (account_id);
CREATE INDEX link_copies_expiry ON link_copies (expires_at);
