"""The city's day. Days, quarters, years and deadlines are the city's (Asia/Shanghai by
default, `REDLINE_TIMEZONE`), never UTC's: a case filed at 07:30 on 1 April is in Q2."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo


def city_day(now: datetime, timezone: ZoneInfo) -> date:
    """The city's date at the instant `now`."""
    return now.astimezone(timezone).date()


@dataclass(eq=False)
class CityClock:
    """A service that tells the time by an injected clock and counts days in the city."""

    _: KW_ONLY
    timezone: ZoneInfo
    clock: Callable[[], datetime]

    def today(self, now: datetime | None = None) -> date:
        """The city's date at `now`, or at the clock's now."""
        return city_day(self.clock() if now is None else now, self.timezone)
