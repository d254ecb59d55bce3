"""The therapy in force and being ordered: orders, routes and total daily dose, in `facts`."""

__all__ = ["facts"]
