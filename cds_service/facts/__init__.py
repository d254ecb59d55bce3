"""Facts: the request and its data reduced to small typed values the rules read."""

# The public modules; each names its own public functions and types.
__all__ = [
    "build",
    "catalog",
    "coding",
    "conditions",
    "cultures",
    "derive",
    "knowledge",
    "labs",
    "medications",
    "model",
    "named",
    "names",
    "numbers",
    "orders",
    "patient",
    "strict",
    "time",
    "units",
]
