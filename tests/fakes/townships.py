"""An in-memory TownshipStore; the registry's figures are whatever the test sets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal

from services.errors import DatabaseError
from services.idempotency import StoredResponse
from services.townships.domain import BusFigures, Notice, QuarterReport, Talk, Veto
from services.townships.ports import DaySpan, QuarterSpan, TownshipStore, TownshipTransaction
from tests.fakes.snapshots import Committed, PgSequence, as_json, unique

NO_FIGURES = BusFigures(0, Decimal(0), Decimal(0), Decimal(0), 0)


@dataclass
class TownshipState:
    keys: dict[str, StoredResponse] = field(default_factory=dict)
    talks: dict[str, Talk] = field(default_factory=dict)
    notices: dict[str, Notice] = field(default_factory=dict)
    vetoes: dict[tuple[str, int], Veto] = field(default_factory=dict)
    reports: dict[tuple[str, str], QuarterReport] = field(default_factory=dict)
    # What bus_figures answers, by township code (summed over the codes asked for).
    bus: dict[str, BusFigures] = field(default_factory=dict)


class FakeTownshipTransaction(TownshipTransaction):
    def __init__(self, state: TownshipState, store: FakeTownshipStore, readonly: bool) -> None:
        self.state = state
        self.store = store
        self.readonly = readonly

    def _write(self) -> None:
        if self.readonly:
            raise DatabaseError("cannot execute a write in a read-only transaction")

    async def claim_idempotency_key(self, key: str) -> StoredResponse | None:
        return self.state.keys.get(key)

    async def save_idempotent_response(self, key: str, response: StoredResponse) -> None:
        self._write()
        unique("idempotency_keys", key, key in self.state.keys)
        self.state.keys[key] = replace(response, body=as_json(response.body))

    async def next_talk_id(self, year: int) -> str:
        return f"WT-{year}-{self.store.talk_numbers.next():06d}"

    async def talk(self, talk_id: str, *, for_update: bool = False) -> Talk | None:
        return self.state.talks.get(talk_id)

    async def save_talk(self, talk: Talk) -> None:
        self._write()
        old = self.state.talks.get(talk.talk_id)
        if old is not None:  # the adapter's upsert keeps who asked, when and why
            talk = replace(
                talk,
                township=old.township,
                reason=old.reason,
                cases=old.cases,
                requested_by=old.requested_by,
                requested_at=old.requested_at,
            )
        self.state.talks[talk.talk_id] = talk

    async def talks(self, township: str | None, span: DaySpan) -> list[Talk]:
        return [
            t
            for talk_id, t in sorted(self.state.talks.items())
            if (township is None or t.township == township)
            and (
                span.start <= t.requested_at < span.end
                or (t.rectify_by is not None and span.first_day <= t.rectify_by <= span.last_day)
            )
        ]

    async def next_notice_id(self, year: int) -> str:
        return f"TB-{year}-{self.store.notice_numbers.next():06d}"

    async def add_notice(self, notice: Notice) -> None:
        self._write()
        unique("township_notices", notice.notice_id, notice.notice_id in self.state.notices)
        self.state.notices[notice.notice_id] = notice

    async def notices(self, year: int) -> list[Notice]:
        return [n for _, n in sorted(self.state.notices.items()) if n.year == year]

    async def veto(self, township: str, year: int) -> Veto | None:
        return self.state.vetoes.get((township, year))

    async def add_veto(self, veto: Veto) -> None:
        self._write()
        key = (veto.township, veto.year)
        unique("township_vetoes", key, key in self.state.vetoes)
        self.state.vetoes[key] = veto

    async def vetoes(self, year: int) -> list[Veto]:
        return [v for (_, y), v in self.state.vetoes.items() if y == year]

    async def report(
        self, township: str, quarter: str, *, for_update: bool = False
    ) -> QuarterReport | None:
        return self.state.reports.get((township, quarter))

    async def save_report(self, report: QuarterReport) -> None:
        self._write()
        self.state.reports[(report.township, report.quarter)] = report

    async def reports(self, quarters: Sequence[str]) -> list[QuarterReport]:
        wanted = set(quarters)
        return [r for key, r in sorted(self.state.reports.items()) if key[1] in wanted]

    async def bus_figures(self, codes: Sequence[str], span: QuarterSpan) -> BusFigures:
        total = NO_FIGURES
        for code in codes:
            part = self.state.bus.get(code, NO_FIGURES)
            total = BusFigures(
                total.cases_filed + part.cases_filed,
                total.cultivated_occupied_mu + part.cultivated_occupied_mu,
                total.basic_farmland_occupied_mu + part.basic_farmland_occupied_mu,
                total.restored_mu + part.restored_mu,
                total.open_cases + part.open_cases,
            )
        return total


class FakeTownshipStore(Committed[TownshipState], TownshipStore):
    def __init__(self) -> None:
        super().__init__(TownshipState())
        self.talk_numbers = PgSequence()
        self.notice_numbers = PgSequence()

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[TownshipTransaction]:
        async with self.tables.begin() as work:
            yield FakeTownshipTransaction(work, self, readonly)
