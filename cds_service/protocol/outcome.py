"""Errors as FHIR OperationOutcome bodies.

Every refusal the service makes (400, 401, 404, 412, 413, 415) carries an OperationOutcome
that names what was wrong, so that an integrator can fix the call without reading our logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from fhir.resources.R4B.operationoutcome import OperationOutcome

# FHIR issue-type codes (http://hl7.org/fhir/issue-type) by HTTP status.
_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    408: "timeout",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    500: "exception",
    503: "transient",
}


@dataclass(frozen=True)
class Issue:
    diagnostics: str
    severity: str = "error"
    code: str | None = None
    expression: str | None = None


@dataclass
class ProblemError(Exception):
    """Raised inside the service; turned into an HTTP status and an OperationOutcome at the edge."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def single(cls, status: int, diagnostics: str, expression: str | None = None) -> ProblemError:
        return cls(status, [Issue(diagnostics=diagnostics, expression=expression)])

    def __str__(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues)

    def outcome(self) -> dict[str, object]:
        return operation_outcome(self.issues, default_code=_ISSUE_CODE.get(self.status, "processing"))

    def body(self) -> bytes:
        return orjson.dumps(self.outcome())


def operation_outcome(issues: list[Issue], default_code: str = "processing") -> dict[str, object]:
    """An R4 OperationOutcome, built with the fhir.resources model so that what we emit is valid FHIR."""
    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": issue.severity,
                    "code": issue.code or default_code,
                    "diagnostics": issue.diagnostics,
                    **({"expression": [issue.expression]} if issue.expression else {}),
                }
                for issue in issues
            ],
        }
    )
    return outcome.model_dump(mode="json", exclude_none=True)
