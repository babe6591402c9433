"""A demo feed: realistic, seeded sample cases walked through their lifecycle.

The generator is pure (no I/O, one seeded RNG), so a seed always yields the same data and
the unit tests can check it without a database. `run_demo` paces it into a Registry with
idempotency keys derived from the seed, so a rerun on the same day writes nothing twice.

By job: the sample data (samples), the generator (generator) and the paced feed (feed);
this package re-exports them, so `from services.demo import X` is the one import.
"""

from __future__ import annotations

from services.demo.feed import DemoStats, _plan, describe_facts, run_demo, sign_off_jointly
from services.demo.generator import DemoGenerator
from services.demo.samples import (
    ANY_LAND,
    APPROVERS,
    AREA_IN_M2_SHARE,
    CENT,
    CLUE_SOURCES,
    COMPANY_SUFFIXES,
    COURTS,
    DIRECTIONS,
    FARMLAND,
    FEMALE_NAMES,
    FOUND_WITHIN_DAYS,
    INDUSTRIES,
    MALE_NAMES,
    NOT_FARMLAND,
    ORG_DIVISIONS,
    ORGANIZATION_SHARE,
    PARCEL_RIGHTS,
    RECTIFICATIONS,
    REUSE_SUBJECT,
    SCENARIO_LABELS,
    SCENARIOS,
    SURNAMES,
    TRADE_WORDS,
    VILLAGES,
    VIOLATION_LABELS,
    VIOLATIONS,
    XIAOYI,
    ProjectKind,
    RectificationAction,
    Scenario,
)

__all__ = [
    "ANY_LAND",
    "APPROVERS",
    "AREA_IN_M2_SHARE",
    "CENT",
    "CLUE_SOURCES",
    "COMPANY_SUFFIXES",
    "COURTS",
    "DIRECTIONS",
    "FARMLAND",
    "FEMALE_NAMES",
    "FOUND_WITHIN_DAYS",
    "INDUSTRIES",
    "MALE_NAMES",
    "NOT_FARMLAND",
    "ORGANIZATION_SHARE",
    "ORG_DIVISIONS",
    "PARCEL_RIGHTS",
    "RECTIFICATIONS",
    "REUSE_SUBJECT",
    "SCENARIOS",
    "SCENARIO_LABELS",
    "SURNAMES",
    "TRADE_WORDS",
    "VILLAGES",
    "VIOLATIONS",
    "VIOLATION_LABELS",
    "XIAOYI",
    "DemoGenerator",
    "DemoStats",
    "ProjectKind",
    "RectificationAction",
    "Scenario",
    "_plan",
    "describe_facts",
    "run_demo",
    "sign_off_jointly",
]
