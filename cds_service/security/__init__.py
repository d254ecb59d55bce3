"""Who may call: JWT verification per CDS Hooks 2.0 "Trusting CDS Clients"."""

# The public modules; each names its own public functions and types.
__all__ = ["errors", "guard", "keys", "refusals", "trust", "verify"]
