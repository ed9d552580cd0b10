-- Whether a failed document can succeed if indexed again.
--
-- A file the indexer refuses (corrupt, unsupported, unreadable, too large, over a plan limit) or a
-- file no longer stored fails the same way every time, so the web app should not offer "Retry"
-- and re-index answers 409; a temporary problem that outlasted every delivery can succeed later.
-- The indexer sets this whenever it marks a document failed. Rows failed before this column
-- existed keep the old behaviour (retryable), so no Retry button disappears from under anyone.
-- Meaningful only while status = 'failed'.

ALTER TABLE documents ADD COLUMN retryable boolean NOT NULL DEFAULT true;
