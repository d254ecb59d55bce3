"""The synthetic data the playground offers: patient Bundles, draft order presets and saved requests.

They live in `fhir_fixtures/` beside the rules directory, where the rule cases already find their
patients (`../fhir_fixtures/patients/...`), so a deployment that ships its rules with their cases
ships the playground's data too. Missing folders just mean empty lists: a pasted request still works.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from cds_service.data.compose import bundle_resources
from cds_service.facts.time import in_calendar

Resource = dict[str, Any]

# FHIR elements that date the clinical data itself (when measured, ordered, recorded); a birth date or a
# dosage's bounds say nothing about when the chart was current.
_DATA_TIMES = frozenset(
    {
        "effectiveDateTime",
        "effectiveInstant",
        "issued",
        "authoredOn",
        "recordedDate",
        "onsetDateTime",
        "abatementDateTime",
        "collectedDateTime",
    }
)
_PERIODS = frozenset({"effectivePeriod", "collectedPeriod"})
_FHIR_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# The rules look back 24-72 h from "now": evaluating just after the newest result sees the chart as the
# clinician did, whatever the wall clock says about synthetic data.
AFTER_LATEST = timedelta(hours=1)
# A fixture's name: a plain file name, short enough for any file system (a longer one is no fixture).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclasses.dataclass(frozen=True)
class PatientFixture:
    key: str  # the file name without .json
    patient_id: str
    name: str
    sex: str
    age: str
    as_of: datetime

    @property
    def label(self) -> str:
        return f"{self.key} — {self.name}, {self.sex} {self.age}".rstrip()


@dataclasses.dataclass(frozen=True)
class OrderPreset:
    key: str
    label: str
    resource: Resource


def fixtures_dir(rules_dir: Path) -> Path:
    return rules_dir.resolve().parent / "fhir_fixtures"


def patients(folder: Path) -> list[PatientFixture]:
    listed = []
    for path in sorted((folder / "patients").glob("*.json")):
        resources = bundle_resources(orjson.loads(path.read_bytes()))
        listed.append(_describe(path.stem, resources))
    return listed


def patient_resources(folder: Path, key: str) -> list[Resource] | None:
    """The resources of one patient Bundle, or None when there is no such fixture."""
    path = _named_file(folder / "patients", key, ".json")
    return bundle_resources(orjson.loads(path.read_bytes())) if path else None


def order_presets(folder: Path) -> list[OrderPreset]:
    index = folder / "orders" / "index.yaml"
    if not index.is_file():
        return []
    listed = []
    for item in (yaml.safe_load(index.read_text(encoding="utf-8")) or {}).get("orders", []):
        path = _named_file(folder / "orders", str(item["file"]).removesuffix(".json"), ".json")
        if path is not None:
            listed.append(OrderPreset(path.stem, str(item["label"]), orjson.loads(path.read_bytes())))
    return listed


def saved_requests(folder: Path) -> list[str]:
    return sorted(path.stem for path in (folder / "requests").glob("*.json"))


def saved_request(folder: Path, key: str) -> bytes | None:
    path = _named_file(folder / "requests", key, ".json")
    return path.read_bytes() if path else None


def default_as_of(document: Any, now: datetime | None = None) -> datetime:
    """When to evaluate a request or Bundle as of: just after its newest data, else now."""
    latest = max(data_times(document), default=None)
    if latest is None:
        return (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    moment = latest + AFTER_LATEST
    # Whole minutes: what a datetime-local input shows, and later than the data either way.
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment.astimezone(UTC)


def data_times(document: Any) -> Iterator[datetime]:
    """Every time at which `document` (any FHIR JSON) says something was measured, ordered or recorded."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key in _DATA_TIMES and isinstance(value, str):
                moment = parse_fhir_time(value)
                if moment is not None:
                    yield moment
            elif key in _PERIODS and isinstance(value, dict):
                yield from (m for v in value.values() if isinstance(v, str) and (m := parse_fhir_time(v)))
            else:
                yield from data_times(value)
    elif isinstance(document, list):
        for item in document:
            yield from data_times(item)


def parse_fhir_time(text: str) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware UTC datetime (a date or zoneless time: UTC)."""
    if not _FHIR_DATE.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text) if "T" in text else datetime.fromisoformat(text[:10])
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # The service's calendar (facts/time.py): "9999-12-31" is some EHRs' "no date", not the newest data.
    return moment if in_calendar(moment) else None


def _describe(key: str, resources: list[Resource]) -> PatientFixture:
    patient = next((r for r in resources if r.get("resourceType") == "Patient"), {})
    as_of = default_as_of(resources)
    return PatientFixture(
        key=key,
        patient_id=str(patient.get("id", "")),
        name=_name(patient),
        sex={"female": "F", "male": "M", "other": "X"}.get(str(patient.get("gender")), "?"),
        age=_age(patient.get("birthDate"), as_of.date()),
        as_of=as_of,
    )


def _name(patient: Resource) -> str:
    names = patient.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    if name.get("text"):
        return str(name["text"])
    return " ".join([*name.get("given", []), name.get("family", "")]).strip() or "(no name)"


def _age(birth_date: Any, on: date) -> str:
    if not isinstance(birth_date, str):
        return ""
    try:
        born = date.fromisoformat(birth_date[:10])
    except ValueError:
        return ""
    years = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    if years >= 2:
        return str(years)
    months = (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
    return f"{months} mo" if months >= 1 else f"{(on - born).days} d"


def _named_file(folder: Path, key: str, suffix: str) -> Path | None:
    # Only plain names: a key is never a path, so nothing outside the fixtures folder can be read.
    if not _NAME.match(key):
        return None
    path = folder / f"{key}{suffix}"
    return path if path.is_file() else None
