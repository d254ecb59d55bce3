"""Pure clinical calculators; every threshold is an argument the caller reads from the rule files."""

# The public modules; each names its own public functions and types.
__all__ = ["bags", "growth", "hlh", "hscore", "kdigo", "mas2016", "renal", "tristate"]
