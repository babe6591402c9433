"""The demo generator: valid, deterministic, realistic sample data (no database)."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from events.identifiers import validate_resident_id, validate_uscc
from events.models import CaseDetails, Subject
from services.demo import DemoGenerator
from services.registry.domain import check_accountability
from services.registry.handlers import load_townships

TODAY = date(2026, 5, 1)
TOWNSHIPS = sorted(load_townships())


def _generator(seed: int = 1) -> DemoGenerator:
    return DemoGenerator(seed, TOWNSHIPS, TODAY)


@pytest.fixture(scope="module")
def cases() -> list[CaseDetails]:
    gen = _generator()
    return [gen.case_details() for _ in range(500)]


def _check_subject(subject: Subject) -> None:
    if subject.kind == "organization":
        assert validate_uscc(subject.id) == subject.id
        assert subject.id[:2] == "91"
        assert subject.name.startswith("孝义市")
    else:
        assert validate_resident_id(subject.id, today=TODAY) == subject.id
        assert subject.id.startswith("141181")
        assert 1950 <= int(subject.id[6:10]) <= 2000
    assert subject == Subject.model_validate(subject.model_dump())


def test_every_subject_has_a_valid_identifier() -> None:
    gen = _generator()
    subjects = [gen.subject() for _ in range(1000)]
    for subject in subjects:
        _check_subject(subject)
    organizations = sum(s.kind == "organization" for s in subjects) / len(subjects)
    assert 0.5 < organizations < 0.7


def test_case_subjects_are_valid_and_some_repeat(cases: list[CaseDetails]) -> None:
    for case in cases:
        _check_subject(case.subject)
    repeats = Counter(case.subject.id for case in cases)
    assert any(count > 1 for count in repeats.values())
    assert len(repeats) < len(cases)


def test_same_seed_gives_the_same_sequence() -> None:
    first, second, other = _generator(42), _generator(42), _generator(43)
    run = [first.case_details() for _ in range(50)] + [first.penalty(), first.closure()]
    again = [second.case_details() for _ in range(50)] + [second.penalty(), second.closure()]
    assert run == again
    assert [other.case_details() for _ in range(50)] != run[:50]


def test_a_fair_share_crosses_the_accountability_threshold(cases: list[CaseDetails]) -> None:
    share = sum(check_accountability(case.parcels).due for case in cases) / len(cases)
    assert 0.10 <= share <= 0.40


def test_cases_are_recent_and_in_known_townships(cases: list[CaseDetails]) -> None:
    for case in cases:
        assert case.found_on <= TODAY
        assert (TODAY - case.found_on).days <= 90
        assert case.township in TOWNSHIPS
        assert 1 <= len(case.parcels) <= 3
    assert len({case.township for case in cases}) > 1


def test_some_areas_come_from_square_metres(cases: list[CaseDetails]) -> None:
    # m² converts to mu with more than 2 decimals; typed-in mu never has more than 2.
    converted = [
        p
        for case in cases
        for p in case.parcels
        if -int(p.area_mu.normalize().as_tuple().exponent) > 2
    ]
    assert converted


def test_step_dates_are_chained_and_never_in_the_future(cases: list[CaseDetails]) -> None:
    gen = _generator(7)
    for case in cases[:200]:
        clue = gen.clue(case)
        penalty = gen.penalty(case.found_on)
        rectification = gen.rectification(penalty.decided_on)
        restoration = gen.restoration(rectification.completed_on)
        closure = gen.closure(restoration.verified_on)
        revocation = gen.revocation(penalty.decided_on)
        dates = [
            case.found_on,
            penalty.decided_on,
            rectification.completed_on,
            restoration.verified_on,
            closure.closed_on,
        ]
        assert dates == sorted(dates)
        assert all(day <= TODAY for day in dates)
        assert clue.reported_on <= TODAY
        assert penalty.decided_on <= revocation.revoked_on <= TODAY
        assert penalty.fine_yuan > 0
        assert f"〔{penalty.decided_on.year}〕" in penalty.decision_no
        assert restoration.natural_resources_officer
        assert restoration.agriculture_officer


def test_steps_without_a_start_date_are_not_in_the_future() -> None:
    gen = _generator(3)
    for _ in range(200):
        assert gen.penalty().decided_on <= TODAY
        assert gen.rectification().completed_on <= TODAY
        assert gen.restoration().verified_on <= TODAY
        assert gen.revocation().revoked_on <= TODAY
        assert gen.closure().closed_on <= TODAY


def test_no_townships_is_refused() -> None:
    with pytest.raises(ValueError, match="township"):
        DemoGenerator(1, [], TODAY)
