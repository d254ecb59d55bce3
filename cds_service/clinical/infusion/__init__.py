"""Infusion bags: the builds a daily dose splits into in `calculator`, the `infusion` calculation in `facts`."""

__all__ = ["calculator", "facts"]
