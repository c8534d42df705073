-- Sealpost schema v3 (PostgreSQL): growing lockouts and per-source failure counters.
-- How often an account or admin was locked since its holder last got in; each lock lasts
-- twice as long as the one before (capped), so repeated guessing gets slower and slower.
ALTER TABLE accounts ADD COLUMN lock_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE admins ADD COLUMN lock_count BIGINT NOT NULL DEFAULT 0;
-- Failed sign-ins and secret answers per client address (or IPv6 /64) in the current lockout
-- window, shared by all nodes: a source over its limit is refused before it can add to any
-- account's counter.
CREATE TABLE source_failures (
    source TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL
);
