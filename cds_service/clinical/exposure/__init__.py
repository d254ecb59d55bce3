"""Prior exposure: courses of a medication class and neutropenia before a start, in `facts`."""

__all__ = ["facts"]
