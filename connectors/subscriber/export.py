"""The current list as CSV, for a supplier's own systems (billing, loan origination).

One row per blocked subject: masked data and the subject hash only, never an ID number.
A subject behind several cases lists their ids separated by ';', each distinct legal
basis separated by ' | ', and the earliest `since`. The last two columns say what the
block is held against: `target` (subject or site) and, for a site, each case's site
hashes in the order of `case_ids` (cases ';', a case's hashes ','). A site's hashes are
keyed like subject IDs (events.privacy.site_identifiers): the replica never holds a site
itself, so a billing system matches its own addresses by hashing them with the subject
key (SubjectIds.site_hashes) and looking for a common hash.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from connectors.subscriber.results import BlockCase
from events.catalogue import Target

HEADER = (
    "measure",
    "subject_hash",
    "subject_kind",
    "masked_name",
    "case_ids",
    "legal_basis",
    "since",
    "target",
    "site_hashes",
)


@dataclass(frozen=True, slots=True)
class ExportRow:
    measure: str
    subject_hash: str
    subject_kind: str
    masked_name: str
    case_ids: str
    legal_basis: str
    since: str
    target: str
    site_hashes: str

    @classmethod
    def of(
        cls,
        measure: str,
        subject_hash: str,
        subject_kind: str,
        masked_name: str,
        cases: tuple[BlockCase, ...],
        *,
        target: Target,
    ) -> ExportRow:
        by_site = target is Target.site
        return cls(
            measure,
            subject_hash,
            subject_kind,
            masked_name,
            ";".join(case.case_id for case in cases),
            " | ".join(dict.fromkeys(case.legal_basis for case in cases)),
            min(case.since for case in cases).isoformat() if cases else "",
            target.value,
            ";".join(",".join(case.site_hashes) for case in cases) if by_site else "",
        )

    def cells(self) -> tuple[str, ...]:
        return (
            self.measure,
            self.subject_hash,
            self.subject_kind,
            self.masked_name,
            self.case_ids,
            self.legal_basis,
            self.since,
            self.target,
            self.site_hashes,
        )


def write_csv(rows: Iterable[ExportRow], out: TextIO) -> int:
    """Write the header and `rows`; returns the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for row in rows:
        writer.writerow(row.cells())
        count += 1
    return count
