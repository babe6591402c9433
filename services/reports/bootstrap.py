"""Wiring for the reports: the real read store, townships, catalogue and time zone.

Kept beside the reports rather than in services/bootstrap.py so the feature stays in its
own files; it is the same kind of composition root.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.adapters.report_store import PostgresReportStore
from services.bootstrap import utc_now, zone
from services.config import Settings
from services.departments.catalogue import load_catalogue
from services.registry.handlers import load_townships
from services.reports.handlers import Reports


def build_reports(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Reports:
    """Reports over the database in `settings` (the broker is not needed); each report
    opens its own connection, so nothing here needs closing."""
    database = settings.database_url or settings.require()[1]
    return Reports(
        PostgresReportStore(database),
        townships={code: township.name for code, township in load_townships().items()},
        departments={d.code: d.name_zh for d in load_catalogue().departments},
        timezone=zone(settings),
        clock=clock,
    )
