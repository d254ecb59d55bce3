"""Facts: the request and its data reduced to small typed values the rules read."""
