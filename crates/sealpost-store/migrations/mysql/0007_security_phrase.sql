-- Sealpost schema v7 (MariaDB/MySQL): a recipient's personal security phrase, shown in every
-- later carrier so that a look-alike mail without it stands out. Not a secret (it is mailed
-- in clear in every carrier), so it is kept as text; one row per account that chose one.
CREATE TABLE security_phrases (
    account_id VARCHAR(191) PRIMARY KEY,
    phrase VARCHAR(255) NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
