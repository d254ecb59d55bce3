"""Captured exchanges: what a real client sent (tests/fixtures/real-clients/), kept as method, path, headers
and body. Anywhere a hook request is read from a file or a form, a capture is read as the request it holds."""

from __future__ import annotations

from typing import Any


def captured_body(document: Any) -> Any:
    """The hook request a captured exchange holds under "body"; any other document as it is."""
    if isinstance(document, dict) and isinstance(document.get("body"), dict) and "hook" not in document:
        return document["body"]
    return document
