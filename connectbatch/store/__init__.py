"""The only package that speaks SQL: the embedded DuckDB file and its repositories."""

from connectbatch.store.db import Database, DatabaseBusyError

__all__ = ["Database", "DatabaseBusyError"]
