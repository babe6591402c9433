"""The CSV column specs of the reports: headers, renamed attributes, report-wide values
and lists (a notice's rectifications) written as one cell."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from services.reports.render.page import csv_text


def _rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@dataclass(frozen=True)
class Row:
    cases: int = 3
    flagged: bool = True
    tags: list[str] = field(default_factory=lambda: ["a", "b"])


def test_a_column_takes_an_attribute_a_renamed_one_or_a_report_value() -> None:
    written = _rows(csv_text(["satellite_cases=cases", "flagged", "tags", "year"], [Row()], year=5))
    assert written == [["satellite_cases", "flagged", "tags", "year"], ["3", "true", "a;b", "5"]]
