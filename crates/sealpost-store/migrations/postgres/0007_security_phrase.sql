-- Sealpost schema v7 (PostgreSQL): a recipient's personal security phrase, shown in every
-- later carrier so that a look-alike mail without it stands out. Not a secret (it is mailed
-- in clear in every carrier), so it is kept as text; one row per account that chose one.
CREATE TABLE security_phrases (
    account_id TEXT PRIMARY KEY,
    phrase TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
