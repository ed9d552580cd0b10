"""The connection pool and the tenant-scoped transaction every request runs in."""

from __future__ import annotations

import hashlib
import hmac
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
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

# This transaction's binding, as migration 0009's folio_context_message() computes it: a signature
# over it is good for one transaction of one backend (also behind PgBouncer, which keeps a
# transaction on one backend), so one seen in a log cannot be replayed.
_BINDING = "SELECT pg_backend_pid() || '/' || (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint AS b"
# The key of the Database a pooled connection belongs to, for enter_tenant() on that connection.
_KEYS: weakref.WeakKeyDictionary[Conn, bytes] = weakref.WeakKeyDictionary()


def identity_claim(idp: str, subject: str, email: str | None, email_verified: bool) -> str:
    """``app.identity`` for sign-in: what a signed context lets folio_sign_in write (migration 0009)."""
    return "\x1f".join((idp, subject, email or "", "true" if email_verified else "false"))


def context_key_bytes(settings: Settings) -> bytes | None:
    """DATABASE_CONTEXT_KEY as the bytes both the pool (signing) and migrate (installing) use; None if unset."""
    key = settings.database_context_key
    return key.reveal().encode() if key is not None and key.is_set() else None


def _signature(key: bytes, tenant: str, user: str, identity: str, binding: str) -> str:
    message = f"{tenant}/{user}/{identity}/{binding}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _preamble(names: dict[str, str]) -> str:
    return "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names)


def _values(names: dict[str, str]) -> list[str]:
    return [v for pair in names.items() for v in pair]


@contextmanager
def _begun(conn: Conn) -> Iterator[None]:
    """End a transaction begun with a plain BEGIN: COMMIT when the block succeeds, else ROLLBACK."""
    try:
        yield
    except BaseException:
        if not conn.closed:
            conn.rollback()
        raise
    conn.commit()


def enter_tenant(conn: Conn, tenant_id: UUID | None, user_id: UUID | None = None, access: str = "") -> None:
    """Switch an open transaction of the pool to another tenant (e.g. the one a Stripe event names).

    With a context key the new setting is signed, as :meth:`Database.transaction` signs its own.
    ``access`` (``app.access``, migration 0013) narrows what the transaction may read, e.g. ``"api_key"``:
    open collections only; it is signed with the tenant and user.
    """
    tenant, user = str(tenant_id) if tenant_id else "", str(user_id) if user_id else ""
    values = {"app.tenant_id": tenant, "app.user_id": user, "app.access": access}
    key = _KEYS.get(conn)
    if key is not None:
        binding = one(conn.execute(_BINDING).fetchone())["b"]
        values["app.context_sig"] = _signature(key, tenant, user, access, binding)
    conn.execute(_preamble(values), _values(values))


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
        context_key: bytes | None = None,
    ) -> None:
        self._context_key = context_key or None
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
            configure=self._remember_key if self._context_key is not None else None,
            check=ConnectionPool.check_connection,
            open=False,
            name="folio",
        )
        self._opened = False
        self._open_lock = threading.Lock()

    def _remember_key(self, conn: Conn) -> None:
        """Once per new connection: it signs with this pool's key, also in enter_tenant()."""
        assert self._context_key is not None
        _KEYS[conn] = self._context_key

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
            context_key=context_key_bytes(settings),
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
        self,
        tenant_id: UUID | None = None,
        user_id: UUID | None = None,
        local_settings: dict[str, str] | None = None,
        *,
        identity: str | None = None,
    ) -> Iterator[Conn]:
        """One transaction with ``app.tenant_id``/``app.user_id`` set locally for row-level security.

        The settings are transaction-local (``set_config(..., true)``), so a pooled connection,
        or a PgBouncer backend, never carries one caller's tenant into the next transaction.
        ``local_settings`` (e.g. ``hnsw.ef_search``) are set in the same round trip. ``identity``
        (:func:`identity_claim`) is the one identity sign-in may write in this transaction.

        With a context key, the tenant, user and identity are signed for this transaction
        (``app.context_sig``, migration 0009): SQL run as the app role cannot choose another tenant,
        because the database accepts the settings only with the signature, and only the app holds
        the key. The server's binding for the transaction is read in the round trip of BEGIN.
        """
        self._ensure_open()
        tenant, user = str(tenant_id) if tenant_id else "", str(user_id) if user_id else ""
        names = {
            "app.tenant_id": tenant,
            "app.user_id": user,
            "app.identity": identity or "",
            "app.identity_sig": "",
            "statement_timeout": self._statement_timeout,
            **(local_settings or {}),
        }
        try:
            with self._pool.connection() as conn, ExitStack() as transaction:
                if self._context_key is None:
                    transaction.enter_context(conn.transaction())
                    conn.execute(_preamble(names), _values(names))
                else:
                    # Pipelined: BEGIN and the binding go in one round trip, the signed settings in the
                    # next, so signing adds no round trip to the unsigned BEGIN + settings. The
                    # transaction is begun and ended by hand, not with conn.transaction(): a psycopg
                    # transaction entered in pipeline mode keeps the connection in pipeline mode until
                    # it ends, and COPY (shared/indexer.py) cannot run in pipeline mode.
                    with conn.pipeline():
                        conn.execute("BEGIN")
                        binding = one(conn.execute(_BINDING).fetchone())["b"]
                        names["app.context_sig"] = _signature(self._context_key, tenant, user, "", binding)
                        if identity:
                            names["app.identity_sig"] = _signature(self._context_key, "", "", identity, binding)
                        conn.execute(_preamble(names), _values(names))
                    transaction.enter_context(_begun(conn))
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
