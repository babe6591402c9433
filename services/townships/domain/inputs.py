"""What a township, the bureau or the organisation department submits, each figure bounded,
and the refusals a command can meet."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from events.models import DecimalStr, Id, NonEmptyText, Text
from services.errors import RedlineError

EARLIEST_YEAR = 2000
# Xiaoyi covers 937.56 km² ≈ 1.41 million mu: no township figure can exceed 1.5 million.
MAX_TOWNSHIP_MU = Decimal(1_500_000)
MU_DECIMAL_PLACES = 4
# Figures entered and figures the bus holds are compared to the hundredth of a mu.
TOLERANCE_MU = Decimal("0.01")
MAX_CASES_CITED = 50
MAX_OPEN_CASES = 100_000


class StateError(RedlineError):
    """A command the record's current state does not allow (HTTP 409); both are named."""


class NotYours(RedlineError):
    """A township acting on another township's record (HTTP 403)."""


class NotFound(RedlineError):
    """No such talk or report (HTTP 404)."""


# --- input --------------------------------------------------------------------------


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


def _places(value: Decimal) -> Decimal:
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MU_DECIMAL_PLACES:
        raise ValueError(f"at most {MU_DECIMAL_PLACES} decimal places, got {value}")
    return value


Mu = Annotated[DecimalStr, Field(ge=0, le=int(MAX_TOWNSHIP_MU))]
Year = Annotated[int, Field(ge=EARLIEST_YEAR, le=2100)]
CaseId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class TalkRequest(_Input):
    """Natural resources asks the city government to hold a warning talk with a township
    whose farmland work falls short (seed §二: 提请市人民政府…开展警示约谈)."""

    township: Id
    reason: NonEmptyText
    cases: list[CaseId] = Field(default_factory=list, max_length=MAX_CASES_CITED)

    @field_validator("cases")
    @classmethod
    def _distinct(cls, cases: list[str]) -> list[str]:
        return list(dict.fromkeys(cases))


class TalkDecision(_Input):
    """The city government's answer: approve with the talk's date and the deadline for
    rectification (限时整改), or decline with a reason."""

    decision: Literal["approve", "decline"]
    talk_on: date | None = None
    rectify_by: date | None = None
    reason: Text = ""


class RectificationReport(_Input):
    """The township reports its rectification done."""

    completed_on: date
    summary: NonEmptyText


class NoticeDetails(_Input):
    """通报表扬 or 通报批评 of a township for a year, with the text as published."""

    year: Year
    kind: Literal["praise", "criticism"]
    text: NonEmptyText


class VetoDetails(_Input):
    """一票否决 in a township's annual assessment (§四(三): 重大问题"一票否决")."""

    year: Year
    reason: NonEmptyText


class Target(_Input):
    """One responsibility target for the quarter, in mu: what was set and what was done."""

    target: Mu
    achieved: Mu

    @field_validator("target", "achieved")
    @classmethod
    def _at_most_four_places(cls, value: Decimal) -> Decimal:
        return _places(value)

    @property
    def met(self) -> bool:
        return self.achieved >= self.target


TARGET_LABELS: dict[str, str] = {
    "cultivated_land": "耕地保有量",
    "basic_farmland": "永久基本农田保护面积",
    "occupation_compensation": "耕地占补平衡",
    "inflow_outflow": "耕地进出平衡",
    "high_standard_farmland": "高标准农田建设",
}


class ResponsibilityTargets(_Input):
    """The tasks each township answers for under its responsibility letter (§四(一))."""

    cultivated_land: Target  # 耕地保有量
    basic_farmland: Target  # 永久基本农田保护面积
    occupation_compensation: Target  # 耕地占补平衡: cultivated land to supplement, supplemented
    inflow_outflow: Target  # 耕地进出平衡: cultivated land to bring back, brought back
    high_standard_farmland: Target  # 高标准农田建设: area to build, built

    def items(self) -> list[tuple[str, Target]]:
        return [(name, getattr(self, name)) for name in TARGET_LABELS]


class StatedFindings(_Input):
    """What the township says it found in the quarter: compared with the bus's records."""

    cultivated_occupied_mu: Mu  # cultivated land (basic farmland included) found occupied
    basic_farmland_occupied_mu: Mu
    restored_mu: Mu  # occupied land restored and verified (复耕验收) in the quarter
    open_cases: Annotated[int, Field(ge=0, le=MAX_OPEN_CASES)]

    @field_validator("cultivated_occupied_mu", "basic_farmland_occupied_mu", "restored_mu")
    @classmethod
    def _at_most_four_places(cls, value: Decimal) -> Decimal:
        return _places(value)


class QuarterFigures(_Input):
    """每季度向市政府书面汇报: the targets and the quarter's findings, as the township enters
    them."""

    targets: ResponsibilityTargets
    findings: StatedFindings
    note: Text = ""
