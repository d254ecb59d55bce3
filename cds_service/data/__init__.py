"""Patient data: prefetch semantics, the FHIR client and fast decoding; its own errors for what cannot be had."""

# The public modules; each names its own public functions and types.
__all__ = ["compose", "fetch", "prefetch", "resources", "upstream"]
