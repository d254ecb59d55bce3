"""Durable state in SQL (SQLite by default, PostgreSQL by URL): cards issued and feedback."""
