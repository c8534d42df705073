-- Sealpost schema v9 (MariaDB/MySQL): what proof-of-delivery reports and the sender's link need.
-- The subject of each sealed copy as a report names it: always its SHA-256, in clear only
-- while messages.report_subject = clear (set at sealing). Deleted with its ledger row.
CREATE TABLE message_subjects (
    envelope_id VARCHAR(191) PRIMARY KEY,
    subject_sha256 TEXT NOT NULL,
    subject TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- The sender's single-use status link (/s/{token}) of one sealed copy: only the hash of the
-- 256-bit token is kept. Following it consumes it and leaves the hash of a short-lived
-- capability that lets that page (and nothing else) revoke that copy.
CREATE TABLE sender_links (
    token_hash VARCHAR(191) PRIMARY KEY,
    envelope_id VARCHAR(191) NOT NULL,
    sender TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    capability_hash VARCHAR(191),
    capability_expires_at BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX sender_links_envelope ON sender_links (envelope_id);
CREATE INDEX sender_links_capability ON sender_links (capability_hash);
