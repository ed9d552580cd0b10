"""PostgreSQL access: a connection pool and tenant-scoped transactions (one pool per process, see shared.bootstrap)."""

from shared.db.pool import Conn, Database, Row, enter_tenant, identity_claim, one

__all__ = ["Conn", "Database", "Row", "enter_tenant", "identity_claim", "one"]
