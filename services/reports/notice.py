"""The public notice of typical cases (§四(六)): decided cases, personal data masked.

Every text a notice publishes is either a fixed code (township, source, status, land
class, rectification action, all checked against their lists when recorded) or goes
through `scrub`: an officer's free text may name anyone's ID or telephone number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from events.identifiers import mask_identifier, mask_name
from events.models import DecimalStr
from events.privacy import mask_identifiers
from services.reports.common import ReportModel, file_safe


@dataclass(frozen=True)
class RecordRow:
    seq: int
    step: str
    data: Mapping[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class NoticeSourceRow:
    """A case as the registry holds it, unmasked: only `public_notice` may read it."""

    case_id: str
    township: str
    status: str
    subject_kind: str
    subject_id: str
    subject_name: str
    parcels: tuple[tuple[str, Decimal], ...]
    basic_farmland_mu: Decimal
    cultivated_mu: Decimal
    violation_kind: str
    source: str
    found_on: date
    accountability_started: bool
    records: tuple[RecordRow, ...] = field(default=())


class NoticeParcel(ReportModel):
    land_class: str
    area_mu: DecimalStr


class NoticeCase(ReportModel):
    """A typical case as published: the subject's name (a person's) and ID masked."""

    case_id: str
    township: str
    township_name: str
    subject_kind: str
    subject_name: str
    subject_id: str
    violation_kind: str
    source: str
    found_on: date
    parcels: list[NoticeParcel]
    basic_farmland_mu: DecimalStr
    cultivated_mu: DecimalStr
    accountability_started: bool
    status: str
    decision_no: str
    decided_on: date
    fine_yuan: DecimalStr
    penalty_summary: str
    rectifications: list[str]
    restoration_verified_on: date | None
    closed_on: date | None


class NoticeReport(ReportModel):
    kind: Literal["notice"] = "notice"
    selection: str
    generated_at: datetime
    cases: list[NoticeCase]

    @property
    def slug(self) -> str:
        return f"notice-{file_safe(self.selection)}"


def public_name(kind: str, name: str) -> str:
    """A person's name is masked (张**); an organisation's is published, as notices do,
    with any ID or telephone number typed into it masked."""
    return mask_identifiers(name.strip()) if kind == "organization" else mask_name(name)


def scrub(text: str, subject_kind: str, subject_id: str, subject_name: str) -> str:
    """Free text made publishable: the subject's ID and a person's name masked, and any
    other ID number (18 or 15 characters) or telephone number too."""
    cleaned = text.replace(subject_id, mask_identifier(subject_id))
    if subject_kind != "organization" and subject_name.strip():
        cleaned = cleaned.replace(subject_name.strip(), mask_name(subject_name))
    return mask_identifiers(cleaned)


def notice_refusal(records: Sequence[RecordRow]) -> str | None:
    """Why a case may not be published, or None: it needs a penalty and no revocation."""
    steps = {record.step for record in records}
    if "revocation" in steps:
        return "revoked by a court; a revoked case is never published"
    if "penalty" not in steps:
        return "no penalty decided yet; only decided or closed cases are published"
    return None


def _last(records: Sequence[RecordRow], step: str) -> RecordRow | None:
    found = [record for record in records if record.step == step]
    return found[-1] if found else None


def _data_day(record: RecordRow | None, key: str) -> date | None:
    if record is None or record.data.get(key) is None:
        return None
    return date.fromisoformat(str(record.data[key]))


def notice_case(row: NoticeSourceRow, names: Mapping[str, str]) -> NoticeCase:
    penalty = _last(row.records, "penalty")
    if penalty is None or notice_refusal(row.records) is not None:
        raise ValueError(f"{row.case_id} is not publishable")
    decided_on = _data_day(penalty, "decided_on")
    if decided_on is None:
        raise ValueError(f"{row.case_id}: the penalty record has no decided_on")

    def clean(text: object) -> str:
        return scrub(str(text), row.subject_kind, row.subject_id, row.subject_name)

    return NoticeCase(
        case_id=row.case_id,
        township=row.township,
        township_name=names.get(row.township, row.township),
        subject_kind=row.subject_kind,
        subject_name=public_name(row.subject_kind, row.subject_name),
        subject_id=mask_identifier(row.subject_id),
        violation_kind=clean(row.violation_kind),
        source=row.source,
        found_on=row.found_on,
        parcels=[NoticeParcel(land_class=cls, area_mu=area) for cls, area in row.parcels],
        basic_farmland_mu=row.basic_farmland_mu,
        cultivated_mu=row.cultivated_mu,
        accountability_started=row.accountability_started,
        status=row.status,
        decision_no=clean(penalty.data.get("decision_no", "")),
        decided_on=decided_on,
        fine_yuan=Decimal(str(penalty.data.get("fine_yuan", "0"))),
        penalty_summary=clean(penalty.data.get("summary", "")),
        rectifications=[
            str(record.data.get("action", "other"))
            for record in row.records
            if record.step == "rectification"
        ],
        restoration_verified_on=_data_day(_last(row.records, "restoration"), "verified_on"),
        closed_on=_data_day(_last(row.records, "closure"), "closed_on"),
    )


def decided_or_closed_since(row: NoticeSourceRow, since: date) -> bool:
    decided = _data_day(_last(row.records, "penalty"), "decided_on")
    closed = _data_day(_last(row.records, "closure"), "closed_on")
    return any(day is not None and day >= since for day in (decided, closed))


def public_notice(
    *,
    selection: str,
    generated_at: datetime,
    names: Mapping[str, str],
    rows: Sequence[NoticeSourceRow],
    since: date | None,
) -> NoticeReport:
    """The publishable cases among `rows`, in case order; with `since`, those decided or
    closed on or after that day (a revoked or undecided case is silently left out)."""
    chosen = [
        row
        for row in sorted(rows, key=lambda r: r.case_id)
        if notice_refusal(row.records) is None
        and (since is None or decided_or_closed_since(row, since))
    ]
    return NoticeReport(
        selection=selection,
        generated_at=generated_at,
        cases=[notice_case(row, names) for row in chosen],
    )
