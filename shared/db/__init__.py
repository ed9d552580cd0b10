"""PostgreSQL access: one lazily created pool per process and tenant-scoped transactions."""

from shared.db.pool import Database, get_database, reset_database

__all__ = ["Database", "get_database", "reset_database"]
