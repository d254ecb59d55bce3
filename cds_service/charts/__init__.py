"""Charts behind card links: chart files (definition), a request's data frozen for one link (snapshot,
links) and the drawing (draw, which alone imports matplotlib, on first use)."""

# The public modules; each names its own public functions and types.
__all__ = ["definition", "draw", "links", "snapshot", "text"]
