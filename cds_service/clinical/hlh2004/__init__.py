"""The HLH-2004 diagnostic criteria (Henter 2007): counted in `calculator`, read and worded in `facts`."""

__all__ = ["calculator", "facts"]
