"""Report rules without a database: periods, aggregation, percentiles, masking, rendering."""

from __future__ import annotations

import csv
import io
import random
import re
import statistics
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.bootstrap import load_ranking_rule
from services.errors import InvalidInput
from services.registry.domain import TRANSITIONS, CaseStatus
from services.reports.common import Heading, percentile
from services.reports.department import department_report
from services.reports.notice import (
    NoticeSourceRow,
    RecordRow,
    notice_refusal,
    public_name,
    public_notice,
    scrub,
)
from services.reports.outcomes import ResponseRow, classify
from services.reports.periods import Period, parse_period, parse_quarter, parse_year
from services.reports.ranking import (
    RankingRule,
    SatelliteCaseRow,
    parse_ranking_rule,
    satellite_ranking,
)
from services.reports.render import to_csv, to_html
from services.reports.render.labels import STATUS_LABELS
from services.reports.township import (
    ENDING_STEPS,
    AccountabilityRow,
    BlockRow,
    ClueRow,
    FiledCaseRow,
    OpenCaseRow,
    TownshipRows,
    is_open_over_bound,
    township_report,
)
from tests.support import nested_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
NAMES = {"xinyi": "新义街道", "duizhen": "兑镇镇", "xiabao": "下堡镇"}
PERSON_ID = "141181198507140013"  # a valid resident ID (check character 3)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type,misc]


# --- periods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026Q2", date(2026, 4, 1), date(2026, 6, 30)),
        ("2024q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2026Q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026Q4", date(2026, 10, 1), date(2026, 12, 31)),
    ],
)
def test_a_quarter_is_its_three_months(text: str, first: date, last: date) -> None:
    period = parse_quarter(text, TODAY)
    assert (period.first_day, period.last_day) == (first, last)
    assert period.label == text.upper()


def test_periods_take_a_year_a_quarter_or_explicit_days() -> None:
    assert parse_period("2025", TODAY) == Period("2025", date(2025, 1, 1), date(2025, 12, 31))
    assert parse_period("2025Q2", TODAY).last_day == date(2025, 6, 30)
    days = parse_period("2025-07-15..2025-08-01", TODAY)
    assert (days.first_day, days.last_day) == (date(2025, 7, 15), date(2025, 8, 1))
    assert parse_year("2026", TODAY).first_day == date(2026, 1, 1)


# The field each parser names when it refuses a text, and what it refuses with which reason.
PARSERS = {"quarter": parse_quarter, "period": parse_period}
BAD_PERIODS = {
    "quarter": [
        ("2026Q5", "the quarter must be 1 to 4, got 5"),
        ("2026Q0", "the quarter must be 1 to 4, got 0"),
        ("Q3 2026", "expected a quarter such as 2026Q3"),
        ("2026-Q3", "expected a quarter such as 2026Q3"),
        ("2027Q1", "2027Q1 has not begun yet (today is 2026-11-29)"),
        ("1999Q4", "year 1999 is before 2000"),
    ],
    "period": [
        ("2025-08-01..2025-07-15", "the first day 2025-08-01 is after the last day 2025-07-15"),
        ("2025-02-30..2025-03-01", "expected a date such as 2026-07-01"),
        ("last quarter", "expected 2026, 2026Q3 or 2026-07-01..2026-09-30"),
        ("2026-12-01..2026-12-31", "has not begun yet"),
        ("2027", "2027 has not begun yet"),
    ],
}


@pytest.mark.parametrize(
    ("field", "text", "reason"),
    [(field, text, reason) for field, bad in BAD_PERIODS.items() for text, reason in bad],
)
def test_a_bad_period_is_refused_naming_the_field(field: str, text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        PARSERS[field](text, TODAY)
    assert refused.value.field == field
    assert reason in refused.value.reason


def test_a_window_runs_from_local_midnight_to_local_midnight() -> None:
    window = parse_quarter("2025Q3", TODAY).window(SHANGHAI)
    assert window.start == utc(2025, 6, 30, 16)
    assert window.end == utc(2025, 9, 30, 16)
    assert window.holds(utc(2025, 6, 30, 16, 30))  # 00:30 on 1 July in Xiaoyi
    assert not window.holds(utc(2025, 6, 30, 15, 59, 59))  # 23:59:59 on 30 June
    assert not window.holds(window.end)
    assert window.holds_day(date(2025, 9, 30))
    assert not window.holds_day(date(2025, 10, 1))


# --- percentiles ---------------------------------------------------------------------


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 1.5)


def test_percentiles_agree_with_the_inclusive_quantiles_of_the_standard_library() -> None:
    rng = random.Random(9)
    for size in (2, 3, 10, 57, 200):
        values = [rng.uniform(0, 500) for _ in range(size)]
        cuts = statistics.quantiles(values, n=20, method="inclusive")
        assert percentile(values, 0.95) == pytest.approx(cuts[18])
        assert percentile(values, 0.5) == pytest.approx(statistics.median(values))


# --- township report -----------------------------------------------------------------


def _township(
    rows: TownshipRows,
    township: str | None = None,
    bound: int = 90,
    names: dict[str, str] = NAMES,
    departments_read: tuple[str, ...] = ("finance",),
) -> Any:
    """The township report of 2025Q3 on `rows`, as of the quarter's end."""
    period = parse_quarter("2025Q3", TODAY)
    window = period.window(SHANGHAI)
    return township_report(
        Heading(period, window, "Asia/Shanghai", as_of=window.end, generated_at=NOW),
        township=township,
        older_than_days=bound,
        names=names,
        departments_read=list(departments_read),
        rows=rows,
    )


def _rows() -> TownshipRows:
    return TownshipRows(
        clues=[
            ClueRow("xinyi", "satellite", date(2025, 7, 1)),
            ClueRow("xinyi", "satellite", date(2025, 9, 30)),
            ClueRow("xinyi", "tip", date(2025, 8, 1)),
            ClueRow("xinyi", "tip", date(2025, 10, 1)),  # next quarter
        ],
        filed=[
            FiledCaseRow(
                "RL-1",
                "xinyi",
                utc(2025, 6, 30, 16, 30),
                (("permanent_basic_farmland", Decimal("5")), ("cultivated", Decimal("1.005"))),
            ),
            FiledCaseRow("RL-2", "duizhen", utc(2025, 8, 1), (("construction", Decimal("2.5")),)),
            FiledCaseRow(
                "RL-0", "duizhen", utc(2025, 6, 30, 15, 59), (("cultivated", Decimal(9)),)
            ),
        ],
        accountability=[AccountabilityRow("RL-1", "xinyi", utc(2025, 6, 30, 16, 30))],
        blocks=[
            BlockRow("finance", "refuse_fiscal_funding", "RL-1", "xinyi", utc(2025, 7, 2), None),
            BlockRow("banks", "refuse_loans", "RL-0", "duizhen", utc(2025, 6, 1), utc(2025, 8, 3)),
        ],
        open_cases=[
            OpenCaseRow("RL-0", "duizhen", utc(2025, 6, 1), None),  # 121 days at the end
            OpenCaseRow("RL-9", "duizhen", utc(2025, 6, 1), utc(2025, 9, 1)),  # ended before
            OpenCaseRow("RL-2", "duizhen", utc(2025, 8, 1), None),  # too young
        ],
    )


def test_the_township_report_counts_what_happened_in_the_quarter() -> None:
    report = _township(_rows())
    by = {row.township: row for row in report.rows}
    assert list(by) == ["xinyi", "duizhen"]  # the townships file's order; xiabao had nothing
    xinyi, duizhen = by["xinyi"], by["duizhen"]
    assert xinyi.clues_by_source["satellite"] == 2
    assert xinyi.clues_by_source["tip"] == 1
    assert xinyi.clues_by_source["drone"] == 0
    assert xinyi.clues_total == 3
    assert xinyi.cases_filed == 1  # filed at 00:30 local on 1 July
    assert xinyi.area_mu_by_land_class["permanent_basic_farmland"] == Decimal(5)
    assert xinyi.cultivated_land_mu == Decimal("6.005")
    assert xinyi.accountability_referrals == 1
    assert (xinyi.measures_applied, xinyi.measures_lifted) == (1, 0)
    assert duizhen.cases_filed == 1  # RL-0 was filed at 23:59 local on 30 June
    assert duizhen.area_mu_by_land_class["construction"] == Decimal("2.5")
    assert (duizhen.measures_applied, duizhen.measures_lifted) == (0, 1)
    assert duizhen.open_case_ids == ["RL-0"]
    assert report.totals.cases_filed == 2
    assert report.totals.measures_applied + report.totals.measures_lifted == 2
    assert report.totals.area_mu_by_land_class["cultivated"] == Decimal("1.005")


def test_the_township_filter_keeps_one_township() -> None:
    report = _township(_rows(), township="duizhen")
    assert [row.township for row in report.rows] == ["duizhen"]
    assert report.totals.clues_total == 0


def test_an_empty_quarter_gives_an_empty_report() -> None:
    report = _township(TownshipRows())
    assert report.rows == []
    assert report.totals.cases_filed == 0
    assert report.totals.area_mu_by_land_class["cultivated"] == Decimal(0)
    html = to_html(report)
    assert "no activity recorded" in html
    assert to_csv(report).count("\r\n") == 1  # the header only


def test_open_cases_count_only_past_the_bound_and_still_open() -> None:
    as_of = utc(2025, 10, 1)
    bound = timedelta(days=90)
    exactly = OpenCaseRow("A", "xinyi", as_of - bound, None)
    older = OpenCaseRow("B", "xinyi", as_of - bound - timedelta(seconds=1), None)
    ended = OpenCaseRow("C", "xinyi", utc(2024, 1, 1), as_of - timedelta(seconds=1))
    ends_later = OpenCaseRow("D", "xinyi", utc(2024, 1, 1), as_of)
    assert not is_open_over_bound(exactly, as_of, bound)  # "older than" is strict
    assert is_open_over_bound(older, as_of, bound)
    assert not is_open_over_bound(ended, as_of, bound)
    assert is_open_over_bound(ends_later, as_of, bound)


# --- department report ---------------------------------------------------------------


def _response(
    department: str,
    required: datetime,
    hours: float | None,
    *,
    deadline: int = 72,
    failed: bool = False,
    action: str = "apply",
) -> ResponseRow:
    done = None if hours is None else required + timedelta(hours=hours)
    return ResponseRow(
        department=department,
        measure="m",
        case_id="RL-1",
        action=action,
        required_at=required,
        due_at=required + timedelta(hours=deadline),
        done_at=done,
        failed_at=required + timedelta(hours=1) if failed else None,
    )


def test_each_requirement_has_one_outcome() -> None:
    at = utc(2025, 7, 10)
    as_of = utc(2025, 7, 20)
    assert classify(_response("f", at, 72), as_of) == "on_time"  # exactly at the deadline
    assert classify(_response("f", at, 72.01), as_of) == "late"
    assert classify(_response("f", at, None, failed=True), as_of) == "failed"
    assert classify(_response("f", at, None), as_of) == "unanswered"
    assert classify(_response("f", utc(2025, 7, 19), None), as_of) == "pending"


def _department(
    rows: list[ResponseRow], department: str | None = None, names: dict[str, str] | None = None
) -> Any:
    """The departments' record of 2025Q3 on `rows`, as of now."""
    period = parse_quarter("2025Q3", TODAY)
    return department_report(
        Heading(period, period.window(SHANGHAI), "Asia/Shanghai", as_of=NOW, generated_at=NOW),
        department=department,
        names=names or {},
        rows=rows,
    )


def test_the_department_record_counts_outcomes_and_response_times() -> None:
    at = utc(2025, 8, 1)
    rows = [
        _response("finance", at, 1),
        _response("finance", at, 3),
        _response("finance", at, 80),
        _response("finance", at, None),
        _response("finance", at, None, failed=True),
        _response("finance", at, 2, action="lift"),
        _response("banks", at, 30, deadline=24),
        _response("banks", utc(2025, 6, 30, 15), 1),  # 23:00 on 30 June local: Q2
    ]
    report = _department(rows, names={"finance": "财政局", "banks": "金融企业"})
    finance, banks = report.rows
    assert finance.department == "finance"
    assert (finance.required, finance.lifts_required) == (6, 1)
    assert (finance.on_time, finance.late, finance.failed, finance.unanswered) == (3, 1, 1, 1)
    assert finance.pending == 0
    assert finance.on_time_rate == 50.0
    assert finance.median_response_hours == 2.5  # of 1, 2, 3, 80
    assert finance.p95_response_hours == pytest.approx(68.45)  # 3 + 0.85 * 77
    assert (banks.required, banks.late, banks.median_response_hours) == (1, 1, 30.0)
    assert report.totals.required == 7


def test_an_answer_stamped_before_its_requirement_counts_as_zero_hours() -> None:
    row = _response("finance", utc(2025, 8, 1), -2)
    report = _department([row], department="finance")
    assert report.rows[0].median_response_hours == 0.0
    assert report.rows[0].department_name == "finance"


# --- ranking -------------------------------------------------------------------------


def _satellite(
    case_id: str, township: str, basic: str, cultivated: str, *, revoked: bool = False
) -> SatelliteCaseRow:
    return SatelliteCaseRow(
        case_id, township, date(2025, 5, 1), Decimal(basic), Decimal(cultivated), revoked
    )


RANKING_ROWS = [
    _satellite("A", "xinyi", "2", "4"),
    _satellite("B", "xinyi", "3", "3"),  # xinyi: 7 mu cultivated, 5 of them basic farmland
    _satellite("C", "duizhen", "0", "9.99"),
    _satellite("D", "xiabao", "0", "9.99"),  # same area: same rank
    _satellite("E", "xiabao", "20", "20", revoked=True),  # a court revoked it
]


def test_the_ranking_orders_by_cultivated_area_and_flags_by_the_citys_rule() -> None:
    rule = RankingRule(basic_farmland_mu=Decimal(5))
    report = satellite_ranking(
        period=parse_year("2025", TODAY),
        generated_at=NOW,
        names=NAMES,
        rows=RANKING_ROWS,
        rule=rule,
    )
    ranks = [(row.rank, row.township, row.flagged) for row in report.rows]
    assert ranks == [(1, "duizhen", False), (1, "xiabao", False), (3, "xinyi", True)]
    assert report.rows[2].basic_farmland_mu == Decimal(5)
    assert "永久基本农田 5 亩 ≥ 5 亩" in report.rows[2].flag_reason
    assert report.rule == "永久基本农田合计 ≥ 5 亩"
    assert report.revoked_excluded == 1
    assert report.large_cases == []  # no single case reaches the per-case thresholds


def test_the_per_case_thresholds_no_longer_flag_a_townships_totals() -> None:
    """xinyi's totals (5 mu basic farmland) reach the per-CASE 5 mu threshold, but no rule of
    the city's says so: without one, nothing is flagged."""
    report = satellite_ranking(
        period=parse_year("2025", TODAY),
        generated_at=NOW,
        names=NAMES,
        rows=RANKING_ROWS,
        rule=RankingRule(),
    )
    assert not any(row.flagged for row in report.rows)


def test_a_top_n_rule_flags_the_first_ranks_ties_included() -> None:
    report = satellite_ranking(
        period=parse_year("2025", TODAY),
        generated_at=NOW,
        names=NAMES,
        rows=RANKING_ROWS,
        rule=RankingRule(top=1),
    )
    assert [(row.township, row.flagged) for row in report.rows] == [
        ("duizhen", True),
        ("xiabao", True),
        ("xinyi", False),
    ]
    assert report.rows[0].flag_reason == "耕地面积排名第 1（前 1 名）"


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({}, "ranking:"),
        ({"ranking": {"cultivated": 10}}, "unknown key(s) cultivated"),
        ({"ranking": {"cultivated_mu": -1}}, "ranking.cultivated_mu: must be more than 0"),
        ({"ranking": {"basic_farmland_mu": "many"}}, "ranking.basic_farmland_mu: not a number"),
        ({"ranking": {"top": 2.5}}, "ranking.top: a whole number from 0 to 100"),
        ({"ranking": {"top": True}}, "ranking.top"),
    ],
)
def test_a_wrong_ranking_rule_is_refused_naming_the_key(
    document: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        parse_ranking_rule(document, "city.yaml")


def test_the_shipped_city_rule_loads() -> None:
    rule = load_ranking_rule()
    assert rule == parse_ranking_rule({"ranking": {"top": 3}}, "expected")


def test_an_empty_year_gives_an_empty_ranking() -> None:
    report = satellite_ranking(
        period=parse_year("2024", TODAY), generated_at=NOW, names=NAMES, rows=[], rule=RankingRule()
    )
    assert (report.rows, report.large_cases) == ([], [])
    assert "no satellite findings" in to_html(report)


# --- masking and the public notice ---------------------------------------------------


def test_a_persons_name_is_masked_an_organisations_is_published() -> None:
    assert public_name("person", "王建军") == "王**"
    assert public_name("organization", "孝义市鑫源建材有限公司") == "孝义市鑫源建材有限公司"


def test_free_text_loses_the_subjects_name_and_every_id() -> None:
    other = "91141181MA0K123456"
    text = f"当事人王建军（{PERSON_ID}）与{other}共同占地，代码 ABC 与编号 2025-17 保留"
    cleaned = scrub(text, "person", PERSON_ID, "王建军")
    assert "王建军" not in cleaned
    assert PERSON_ID not in cleaned
    assert other not in cleaned
    assert "王**" in cleaned
    assert "1411************13" in cleaned
    assert "ABC" in cleaned
    assert "2025-17" in cleaned


def _record(seq: int, step: str, **data: Any) -> RecordRow:
    return RecordRow(seq, step, data, utc(2025, 8, seq))


def _notice_row(case_id: str, *records: RecordRow, kind: str = "person") -> NoticeSourceRow:
    return NoticeSourceRow(
        case_id=case_id,
        township="xinyi",
        status="closed",
        subject_kind=kind,
        subject_id=PERSON_ID,
        subject_name="王建军",
        parcels=(("cultivated", Decimal("2.5")),),
        basic_farmland_mu=Decimal(0),
        cultivated_mu=Decimal("2.5"),
        violation_kind="illegal_construction",
        source="satellite",
        found_on=date(2025, 7, 1),
        accountability_started=False,
        records=(_record(1, "filing"), *records),
    )


PENALTY = {
    "decision_no": "孝自然资罚〔2025〕12号",
    "decided_on": "2025-08-10",
    "fine_yuan": "5000.00",
    "summary": "王建军非法占用土地2.50亩，<script>alert(1)</script>",
}


def test_only_decided_unrevoked_cases_may_be_published() -> None:
    assert notice_refusal([_record(1, "filing")]) is not None
    assert notice_refusal([_record(1, "filing"), _record(2, "penalty", **PENALTY)]) is None
    revoked = [_record(2, "penalty", **PENALTY), _record(3, "revocation")]
    assert "revoked by a court" in (notice_refusal(revoked) or "")


def test_the_public_notice_masks_and_escapes() -> None:
    rows = [
        _notice_row(
            "RL-2",
            _record(2, "penalty", **PENALTY),
            _record(3, "rectification", action="demolition", completed_on="2025-09-01"),
            _record(4, "restoration", verified_on="2025-10-01", natural_resources_officer="李明"),
            _record(5, "closure", closed_on="2025-10-05", reason="done"),
        ),
        _notice_row("RL-3", _record(2, "penalty", **PENALTY), _record(3, "revocation")),
        _notice_row("RL-4"),
    ]
    report = public_notice(
        selection="since 2025-01-01",
        generated_at=NOW,
        names=NAMES,
        rows=rows,
        since=date(2025, 1, 1),
    )
    assert [case.case_id for case in report.cases] == ["RL-2"]
    case = report.cases[0]
    assert (case.subject_name, case.subject_id) == ("王**", "1411************13")
    assert case.rectifications == ["demolition"]
    assert case.restoration_verified_on == date(2025, 10, 1)
    assert case.closed_on == date(2025, 10, 5)
    html = to_html(report)
    text = to_csv(report)
    for published in (html, text, report.model_dump_json()):
        assert "王建军" not in published
        assert PERSON_ID not in published
        assert "李明" not in published  # officers are not part of the notice
    assert "<script>" not in html
    assert "&lt;script&gt;" in html

    later = public_notice(
        selection="since", generated_at=NOW, names=NAMES, rows=rows, since=date(2025, 11, 1)
    )
    assert later.cases == []


def test_legalised_and_confiscated_cases_are_published_with_their_status() -> None:
    legalised = _notice_row(
        "RL-5",
        _record(2, "penalty", **PENALTY),
        _record(3, "land_procedures", approval_no="晋政地〔2025〕3号", approved_on="2025-09-01"),
    )
    confiscated = _notice_row(
        "RL-6",
        _record(2, "penalty", **PENALTY),
        _record(3, "confiscation", decision_no="罚12", completed_on="2025-09-20"),
    )
    legalised = replace(legalised, status="legalised")
    confiscated = replace(confiscated, status="confiscated")
    report = public_notice(
        selection="since", generated_at=NOW, names=NAMES, rows=[legalised, confiscated],
        since=date(2025, 1, 1),
    )  # fmt: skip
    assert [(case.case_id, case.status) for case in report.cases] == [
        ("RL-5", "legalised"),
        ("RL-6", "confiscated"),
    ]
    html = to_html(report)
    assert "已补办用地手续" in html
    assert "已没收到位" in html


def test_every_status_has_a_label_and_every_step_that_ends_a_case_is_an_ending_step() -> None:
    assert set(STATUS_LABELS) == {status.value for status in CaseStatus}
    not_open = {
        CaseStatus.restored,
        CaseStatus.revoked,
        CaseStatus.legalised,
        CaseStatus.confiscated,
        CaseStatus.closed,
    }
    ending = {step.value for step, (_, target) in TRANSITIONS.items() if target in not_open}
    assert ending == ENDING_STEPS


# --- rendering -----------------------------------------------------------------------


def test_html_nests_properly_and_escapes_names() -> None:
    rows = _rows()
    names = {**NAMES, "xinyi": '<b onmouseover="x">新义</b>'}
    report = _township(rows, names=names, departments_read=())
    html = to_html(report)
    nested_text(html)  # fails on an element closed out of order or left open
    assert "<b onmouseover" not in html
    assert "&lt;b onmouseover=&quot;x&quot;&gt;" in html
    assert html.count("<svg") == 2


def test_csv_has_a_bom_and_defuses_formulas() -> None:
    rows = [_notice_row("RL-2", _record(2, "penalty", **{**PENALTY, "summary": "=HYPERLINK(1)"}))]
    report = public_notice(selection="x", generated_at=NOW, names=NAMES, rows=rows, since=None)
    text = to_csv(report)
    assert text.startswith("\ufeff")
    parsed = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert parsed[0]["penalty_summary"] == "'=HYPERLINK(1)"
    assert parsed[0]["cultivated_mu"] == "2.5"


# --- issue #18 item 12(c): every free text of a notice is scrubbed ------------------------

OLD_ID = "110105491231002"  # a first-generation (15-digit) resident ID number
MOBILE = "13912345678"
LANDLINE = "0358-7212345"


def test_a_notice_scrubs_the_violation_kind_and_finds_old_ids_and_telephones() -> None:
    """The attack: an officer types the subject's name, an old 15-digit ID and telephone
    numbers into the violation kind and the penalty summary; the notice publishes none."""
    leaky = f"王建军（{OLD_ID}，电话 {MOBILE}，{LANDLINE}）在永久基本农田建房"
    row = replace(
        _notice_row("RL-7", _record(2, "penalty", **PENALTY | {"summary": leaky})),
        violation_kind=leaky,
    )
    report = public_notice(selection="RL-7", generated_at=NOW, names=NAMES, rows=[row], since=None)
    case = report.cases[0]
    assert (
        case.violation_kind
        == "王**（1101*********02，电话 139****5678，0358-*****45）在永久基本农田建房"
    )
    assert case.penalty_summary == case.violation_kind
    for published in (to_html(report), to_csv(report), report.model_dump_json()):
        for secret in ("王建军", OLD_ID, MOBILE, "7212345", "2345678"):
            assert secret not in published


def test_a_known_violation_kind_is_published_as_it_was() -> None:
    case = public_notice(
        selection="RL-8",
        generated_at=NOW,
        names=NAMES,
        rows=[_notice_row("RL-8", _record(2, "penalty", **PENALTY))],
        since=None,
    ).cases[0]
    assert case.violation_kind == "illegal_construction"


def test_an_organisations_name_is_published_but_not_a_telephone_typed_into_it() -> None:
    assert public_name("organization", f"孝义市鑫源建材有限公司 {MOBILE}") == (
        "孝义市鑫源建材有限公司 139****5678"
    )
