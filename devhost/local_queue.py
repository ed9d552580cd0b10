"""The local stand-in for the Service Bus index queue: a PostgreSQL table with peek-lock semantics.

`make dev` and the tests send index jobs here (``INDEX_QUEUE_BACKEND=postgres``) and
:class:`devhost.servicebus.QueueWorker` drives the queue-triggered function from it, as the Functions
host does from Service Bus: lock, complete, abandon (redelivered with the delivery count + 1),
dead-letter after the maximum delivery count, duplicate sends of a recent message id dropped.

The product never creates this table: devhost creates it (:func:`create_local_queue_table`) when it
starts the local queue, as the schema owner, and grants the app role what it needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from shared.queue import DeadLetter

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.db import Database

# Any constant works; it serialises concurrent creators of the table (two test processes, say).
_LOCK_KEY = 0x466F6C696F51  # "FolioQ"

_TABLE = """
CREATE TABLE IF NOT EXISTS local_queue (
  queue_name      text NOT NULL,
  message_id      text NOT NULL,              -- duplicate detection: one live row per id
  body            jsonb NOT NULL,
  state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'completed', 'deadlettered')),
  delivery_count  integer NOT NULL DEFAULT 0,
  enqueued_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  sequence_number bigint GENERATED ALWAYS AS IDENTITY,
  lock_token      uuid,
  locked_until    timestamptz,
  dead_letter_reason text,
  dead_letter_description text,
  settled_at      timestamptz,
  PRIMARY KEY (queue_name, message_id)
);
CREATE INDEX IF NOT EXISTS local_queue_ready ON local_queue (queue_name, sequence_number) WHERE state = 'active';
"""


def create_local_queue_table(admin_url: str, app_role: str) -> None:
    """Create the queue's table if it is missing (idempotent) and let ``app_role`` use it.

    Runs as the schema owner (``DATABASE_ADMIN_URL``), like migrations: the app role cannot create tables.
    """
    with psycopg.connect(admin_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(_TABLE)
        # An identity column needs no grant on its sequence: INSERT on the table is enough.
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON local_queue TO {}").format(sql.Identifier(app_role))
        )


def local_queue_from_settings(settings: Settings, database: Database) -> PostgresQueue:
    """The local queue named by ``INDEX_QUEUE_NAME``, with its table created if missing."""
    admin = settings.database_admin_url or settings.require("database_url")
    create_local_queue_table(admin.reveal(), settings.database_app_role)
    return PostgresQueue(database, settings.index_queue_name, max_delivery=settings.index_max_delivery)


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    body: dict[str, Any]
    delivery_count: int
    lock_token: str
    enqueued_at: dt.datetime
    sequence_number: int


class PostgresQueue:
    """A durable queue with Service Bus peek-lock semantics, for the local host and tests."""

    def __init__(self, db: Database, name: str, *, max_delivery: int = 5, dedupe_window_s: float = 3600) -> None:
        self._db = db
        self.name = name
        self.max_delivery = max_delivery
        self._dedupe_window = dt.timedelta(seconds=dedupe_window_s)

    def send(self, message_id: str, body: dict[str, Any]) -> None:
        with self._db.transaction() as conn:
            # Like Service Bus duplicate detection: a second send of a recent id is dropped.
            conn.execute(
                "DELETE FROM local_queue WHERE queue_name = %s AND message_id = %s AND state = 'completed'"
                " AND settled_at < now() - %s",
                (self.name, message_id, self._dedupe_window),
            )
            conn.execute(
                "INSERT INTO local_queue (queue_name, message_id, body) VALUES (%s, %s, %s)"
                " ON CONFLICT (queue_name, message_id) DO NOTHING",
                (self.name, message_id, Jsonb(body)),
            )

    def receive(self, max_messages: int = 1, lock_s: float = 60.0) -> list[ReceivedMessage]:
        """Lock up to ``max_messages`` ready messages; an expired lock makes a message ready again."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "UPDATE local_queue q SET lock_token = gen_random_uuid(),"
                " locked_until = clock_timestamp() + %s, delivery_count = q.delivery_count + 1"
                " WHERE (queue_name, message_id) IN ("
                "   SELECT queue_name, message_id FROM local_queue WHERE queue_name = %s AND state = 'active'"
                "   AND (locked_until IS NULL OR locked_until < clock_timestamp())"
                "   ORDER BY sequence_number FOR UPDATE SKIP LOCKED LIMIT %s)"
                " RETURNING message_id, body, delivery_count, lock_token, enqueued_at, sequence_number",
                (dt.timedelta(seconds=lock_s), self.name, max_messages),
            ).fetchall()
        received = [
            ReceivedMessage(
                r["message_id"],
                r["body"],
                r["delivery_count"],
                str(r["lock_token"]),
                r["enqueued_at"],
                r["sequence_number"],
            )
            for r in rows
        ]
        # A message whose lock expired on its last allowed delivery goes to the dead-letter state.
        for message in [m for m in received if m.delivery_count > self.max_delivery]:
            self._settle(
                message,
                "deadlettered",
                "MaxDeliveryCountExceeded",
                f"delivered {message.delivery_count - 1} times without completing",
            )
        return [m for m in received if m.delivery_count <= self.max_delivery]

    def complete(self, message: ReceivedMessage) -> bool:
        return self._settle(message, "completed")

    def abandon(self, message: ReceivedMessage, error: str | None = None) -> None:
        """Unlock for redelivery, or dead-letter once the max delivery count is reached."""
        if message.delivery_count >= self.max_delivery:
            self._settle(message, "deadlettered", "MaxDeliveryCountExceeded", error)
            return
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE local_queue SET lock_token = NULL, locked_until = NULL"
                " WHERE queue_name = %s AND message_id = %s AND lock_token = %s",
                (self.name, message.message_id, message.lock_token),
            )

    def _settle(
        self, message: ReceivedMessage, state: str, reason: str | None = None, description: str | None = None
    ) -> bool:
        with self._db.transaction() as conn:
            # The lock token must still be ours: a message whose lock expired was redelivered.
            row = conn.execute(
                "UPDATE local_queue SET state = %s, settled_at = now(), lock_token = NULL, locked_until = NULL,"
                " dead_letter_reason = %s, dead_letter_description = %s"
                " WHERE queue_name = %s AND message_id = %s AND lock_token = %s RETURNING message_id",
                (state, reason, (description or "")[:1000] or None, self.name, message.message_id, message.lock_token),
            ).fetchone()
        return row is not None

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT message_id, body, delivery_count, dead_letter_reason, dead_letter_description, enqueued_at"
                " FROM local_queue WHERE queue_name = %s AND state = 'deadlettered' ORDER BY sequence_number"
                " LIMIT %s",
                (self.name, limit),
            ).fetchall()
        return [
            DeadLetter(
                r["message_id"],
                r["body"],
                r["delivery_count"],
                r["dead_letter_reason"],
                r["dead_letter_description"],
                r["enqueued_at"],
            )
            for r in rows
        ]

    def replay(self, message_id: str) -> bool:
        """Move a dead-lettered message back to the queue with a fresh delivery count."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE local_queue SET state = 'active', delivery_count = 0, dead_letter_reason = NULL,"
                " dead_letter_description = NULL, settled_at = NULL"
                " WHERE queue_name = %s AND message_id = %s AND state = 'deadlettered' RETURNING message_id",
                (self.name, message_id),
            ).fetchone()
        return row is not None

    def active_count(self) -> int:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM local_queue WHERE queue_name = %s AND state = 'active'", (self.name,)
            ).fetchone()
        return int(row["n"]) if row else 0
