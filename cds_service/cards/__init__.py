"""Turning findings into spec-valid cards (and, later, suggestion resources)."""
