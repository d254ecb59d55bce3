"""Durable state in SQL (SQLite by default, PostgreSQL by URL): cards issued and feedback."""

# The public modules; each names its own public functions and types.
__all__ = ["database", "limits", "postgres", "report", "schema", "startup"]
