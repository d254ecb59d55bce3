"""The HScore (Fardet 2014): scored in `calculator`, fed and worded in `facts`."""

__all__ = ["calculator", "facts"]
