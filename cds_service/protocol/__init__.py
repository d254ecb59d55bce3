"""The CDS Hooks wire protocol: requests, responses, discovery, prefetch templates, feedback and errors."""

# The public modules; each names its own public functions and types.
__all__ = ["body", "capture", "discovery", "feedback", "hooks", "outcome", "request", "response", "templates"]
