"""Why a call was refused: a stable reason code for logs and the audit trail, and a sentence for the
caller's OperationOutcome."""

from __future__ import annotations


class AuthError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
