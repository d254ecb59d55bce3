"""The cards stage: an Evaluation and the data gaps -> the spec-valid CDS Hooks response."""

# The public modules; each names its own public functions and types.
__all__ = ["merge", "render", "suggestions"]
