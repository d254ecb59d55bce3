"""Why a call was refused: a stable reason code for logs and the audit trail, and a sentence for the
caller's OperationOutcome."""

from __future__ import annotations


class AuthError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def shown(value: object, width: int = 80) -> str:
    """A value from the token, quoted for a message and cut to `width` characters: the caller chose it."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 4] + "...'"
