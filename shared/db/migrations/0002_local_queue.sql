-- Intentionally empty. This migration used to create `local_queue`, the PostgreSQL stand-in for the
-- Service Bus index queue, in every database, production included. The stand-in is development-only
-- now (devhost/local_queue.py creates its own table when the local host starts its queue), so a new
-- database gets no such table. The file stays so the numbering does not move; databases that
-- applied the old text are accepted (shared/db/migrate.py, _REWRITTEN) and 0007 drops the table there.
SELECT 1;
