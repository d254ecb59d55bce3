"""Ferritin over time: growth rates in `calculator`, the ferritin trend and response calculations in `facts`."""

__all__ = ["calculator", "facts"]
