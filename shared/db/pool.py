"""The connection pool and the tenant-scoped transaction every request runs in."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shared.config import Settings
from shared.errors import ConfigError, Unavailable

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# Scope of the Entra token Azure Database for PostgreSQL accepts as a password.
# A connection of the pool: rows come back as dicts (psycopg's dict_row).
Row = dict[str, Any]
Conn = psycopg.Connection[Row]


def one(row: Row | None) -> Row:
    """The row a statement always returns (an aggregate, ``INSERT ... RETURNING``); None would be a bug."""
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


_POSTGRES_ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"


def _entra_connection_class(token: Callable[[], str]) -> type[psycopg.Connection[Any]]:
    """A connection class that uses a fresh Entra token as the password of each new connection.

    Tokens live about an hour; pooled connections outlive them harmlessly because the server
    checks the password only at connect time.
    """

    class EntraConnection(psycopg.Connection):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            kwargs["password"] = token()
            return super().connect(conninfo, **kwargs)

    return EntraConnection


class Database:
    """A small pool plus :meth:`transaction`, which sets the tenant context for RLS."""

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout_s: float = 10.0,
        statement_timeout_ms: int = 15000,
        server_prepare: bool = True,
        token: Callable[[], str] | None = None,
    ) -> None:
        self._statement_timeout = str(int(statement_timeout_ms))
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if not server_prepare:
            # Behind PgBouncer in transaction mode a prepared statement may land on another backend.
            kwargs["prepare_threshold"] = None
        self._pool = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            kwargs=kwargs,
            connection_class=_entra_connection_class(token) if token else psycopg.Connection,
            check=ConnectionPool.check_connection,
            open=False,
            name="folio",
        )
        self._opened = False
        self._open_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, credential: TokenCredential | None = None) -> Database:
        """The pool DATABASE_URL describes; with DATABASE_ENTRA_AUTH, ``credential`` signs each connection in."""
        token: Callable[[], str] | None = None
        if settings.database_entra_auth:
            if credential is None:
                raise ConfigError("DATABASE_ENTRA_AUTH needs the app's identity.")

            def token() -> str:
                return str(credential.get_token(_POSTGRES_ENTRA_SCOPE).token)

        return cls(
            settings.require("database_url").reveal(),
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            timeout_s=settings.database_pool_timeout_s,
            statement_timeout_ms=settings.database_statement_timeout_ms,
            server_prepare=settings.database_server_prepare,
            token=token,
        )

    def _ensure_open(self) -> None:
        if not self._opened:
            with self._open_lock:
                if not self._opened:
                    # wait=False: a database that is down must not block the first request forever;
                    # the pool keeps trying in the background and getconn() times out cleanly.
                    self._pool.open(wait=False)
                    self._opened = True

    @contextmanager
    def transaction(
        self, tenant_id: UUID | None = None, user_id: UUID | None = None, local_settings: dict[str, str] | None = None
    ) -> Iterator[Conn]:
        """One transaction with ``app.tenant_id``/``app.user_id`` set locally for row-level security.

        The settings are transaction-local (``set_config(..., true)``), so a pooled connection,
        or a PgBouncer backend, never carries one caller's tenant into the next transaction.
        ``local_settings`` (e.g. ``hnsw.ef_search``) are set in the same round trip.
        """
        self._ensure_open()
        names = {
            "app.tenant_id": str(tenant_id) if tenant_id else "",
            "app.user_id": str(user_id) if user_id else "",
            "statement_timeout": self._statement_timeout,
            **(local_settings or {}),
        }
        preamble = "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names)
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute(preamble, [v for pair in names.items() for v in pair])
                yield conn
        except (psycopg.OperationalError, psycopg.errors.QueryCanceled) as exc:
            raise Unavailable("The database is unavailable; try again shortly.") from exc
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise Unavailable("The database is busy or unreachable; try again shortly.") from exc
            raise

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False
