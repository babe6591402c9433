"""Test helpers: valid identifiers, sample requests, reading a topic to its end, polling."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from starlette.types import ASGIApp

from events.catalogue import Catalogue, Stage, load_catalogue
from events.codec import decode
from events.decisions import correct, decide
from events.errors import SignatureRejected
from events.identifiers import USCC_ALPHABET, uscc_check_character
from events.models import (
    AccountabilityTriggered,
    CaseCorrected,
    CaseDetails,
    CaseFacts,
    CaseFiled,
    CaseRevoked,
    ConfiscationCompleted,
    DeadLetter,
    LandProceduresObtained,
    MeasureDecision,
    Parcel,
    Payload,
    PenaltyDecided,
    RestorationVerified,
)
from events.signing import TrustStore
from events.topics import DEAD_LETTERS
from services.access import dev_token
from services.config import Settings

_rng = random.Random()
StepT = TypeVar("StepT", bound=Payload)


def new_uscc() -> str:
    body = "9114" + "1181" + "".join(_rng.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_character(body)


def new_parcel_code() -> str:
    """A well-formed 宗地代码 in Xiaoyi (141181), unique enough for one test session."""
    return f"141181{_rng.randrange(10**6):06d}GB{_rng.randrange(10**5):05d}"


def new_unit_code(parcel: str | None = None) -> str:
    """A well-formed 不动产单元代码, on `parcel` if given."""
    return f"{parcel or new_parcel_code()}F{_rng.randrange(10**8):08d}"


def business_premises_facts(**changes: Any) -> dict[str, Any]:
    """The facts of a case that starts nearly every measure: an unpermitted construction
    project whose building is used as business premises, at a site of its own."""
    facts: dict[str, Any] = {
        "site": {"location": "孝义市兑镇镇东村北侧厂房", "real_estate_unit": new_unit_code()},
        "project": {
            "code": f"2307-141181-04-01-{_rng.randrange(10**6):06d}",
            "name": "某建材厂房",
            "works_started": True,
            "construction_permit": False,
        },
        "building_use": "business_premises",
    }
    facts.update(changes)
    return facts


def case_body(*parcels: tuple[str, str], township: str = "duizhen", **extra: Any) -> dict[str, Any]:
    """A valid POST /v1/cases body; parcels as (land_class, area_mu). By default its facts
    are `business_premises_facts()`: pass `facts=` for a narrower case."""
    body: dict[str, Any] = {
        "township": township,
        "subject": {"kind": "organization", "id": new_uscc(), "name": "孝义市某建材有限公司"},
        "parcels": [{"land_class": cls, "area_mu": area} for cls, area in parcels]
        or [{"land_class": "cultivated", "area_mu": "1.5"}],
        "facts": business_premises_facts(),
        "violation_kind": "illegal_construction",
        "source": "satellite",
        "found_on": "2026-10-12",
    }
    body.update(extra)
    return body


def filed_event(body: dict[str, Any], case_id: str) -> CaseFiled:
    """The case.filed the registry would emit for a POST /v1/cases `body`: with the
    measures its facts start, decided as the registry decides them."""
    details = CaseDetails.model_validate(body)
    starts = decide(load_catalogue(), [Stage.filing], details.parcels, details.facts)
    return CaseFiled.model_validate({**details.model_dump(), "case_id": case_id, "starts": starts})


def filing_measures(body: dict[str, Any]) -> set[str]:
    """The measure codes filing `body` starts."""
    return {decision.measure for decision in filed_event(body, "RL-PREVIEW").starts}


def corrected_event(
    case_id: str,
    parcels: Sequence[Parcel],
    before: CaseFacts,
    after: CaseFacts,
    *,
    reason: str = "resurveyed",
    reached: Sequence[Stage] = (Stage.filing,),
    catalogue: Catalogue | None = None,
) -> CaseCorrected:
    """The case.corrected the registry would emit when a case's facts go from `before` to
    `after` on the same parcels: the measures whose target moved end and start again."""
    change = correct(catalogue or load_catalogue(), reached, (parcels, before), (parcels, after))
    return CaseCorrected(
        case_id=case_id,
        parcels=list(parcels),
        facts=after,
        reason=reason,
        starts=change.starts,
        ends=change.ends,
    )


# What the later steps of a sample case record besides the case's id and the measures a
# step starts (those the registry decides from the case's land and facts).
STEP_FIELDS: dict[type[Payload], dict[str, str]] = {
    PenaltyDecided: {
        "decision_no": "孝自然资罚〔2026〕12号",
        "decided_on": "2026-11-02",
        "fine_yuan": "120000.00",
        "summary": "限期拆除，恢复耕地原状，并处罚款",
    },
    AccountabilityTriggered: {
        "township": "duizhen",
        "basic_farmland_mu": "6",
        "cultivated_mu": "6",
        "rule": "seed §四(五): 5 mu of permanent basic farmland or more",
    },
    ConfiscationCompleted: {
        "decision_no": "孝自然资罚〔2026〕12号",
        "completed_on": "2027-01-20",
        "property": "厂房一栋及其占用的土地",
    },
    RestorationVerified: {
        "verified_on": "2027-03-01",
        "natural_resources_officer": "王某",
        "agriculture_officer": "李某",
    },
    CaseRevoked: {
        "court": "孝义市人民法院",
        "decision_no": "(2027)晋1181行初5号",
        "revoked_on": "2027-04-01",
    },
    LandProceduresObtained: {
        "approval_no": "晋政地〔2027〕88号",
        "approved_on": "2027-02-01",
        "approved_by": "山西省人民政府",
    },
}


def step_event(kind: type[StepT], case_id: str, starts: Sequence[MeasureDecision] = ()) -> StepT:
    """Case `case_id`'s sample `kind` step (`STEP_FIELDS`); a step that starts measures
    starts `starts`."""
    fields: dict[str, Any] = {"case_id": case_id, **STEP_FIELDS[kind]}
    if "starts" in kind.model_fields:
        fields["starts"] = list(starts)
    return kind.model_validate(fields)


def bearer(home: Path, role: str) -> dict[str, str]:
    """The headers that call the registry API as `role`, with its development token."""
    return {"Authorization": f"Bearer {dev_token(home, role)}"}


@asynccontextmanager
async def in_process(
    app: ASGIApp, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling `app` in this process (no socket), sending `headers` every time."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://registry", headers=headers
    ) as client:
        yield client


def service_env(settings: Settings, **more: str) -> dict[str, str]:
    """The environment for a service process on `settings`' broker, database and home:
    this process's own (the development keys switch included), with `more` on top."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "DATABASE_URL": settings.database_url or "",
        "REDLINE_HOME": str(settings.home),
        **more,
    }


def run_python(
    *args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python *args` as a process of its own with `env`, its output captured as text;
    what it exits with is the caller's to check."""
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@asynccontextmanager
async def producing(bootstrap: str, **options: Any) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer waiting on every in-sync replica (acks=all), stopped however the
    block ends; `options` go to AIOKafkaProducer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def group_members(bootstrap: str, group: str) -> int:
    """How many members consumer `group` has once it is stable (0 while it rebalances)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        (found,) = response.groups
        return 0 if found[2] != "Stable" else len(found[5])  # state, members
    finally:
        await admin.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll `check` until it holds; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record now in `topic`, by manual assignment (no group join), partition order kept."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if topic not in await consumer.topics():  # also refreshes metadata for every topic
            raise AssertionError(f"no topic {topic} on {bootstrap}")
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[ConsumerRecord[bytes, bytes]] = []
        remaining = {tp for tp in assigned if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for tp, batch in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                records.extend(batch)
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        if remaining:
            raise AssertionError(f"could not read {topic} to its end: {remaining}")
        return records
    finally:
        await consumer.stop()


async def dead_letters(bootstrap: str, trust: TrustStore) -> list[DeadLetter]:
    """Every dead letter on the broker signed by a key `trust` knows. The broker is shared
    by the session's tests, and other tests' parties sign under keys this trust lacks."""
    letters = []
    for record in await read_topic(bootstrap, DEAD_LETTERS.name):
        if record.value is None:
            continue
        try:
            _, letter = decode(record.value, trust)
        except SignatureRejected:
            continue
        assert isinstance(letter, DeadLetter)
        letters.append(letter)
    return letters


class HtmlNesting(HTMLParser):
    """Fails on an end tag that closes another element than the last one opened; keeps
    the text between the tags."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def nested_text(html: str) -> str:
    """The text of `html`, once every element it opens is found closed, in order."""
    checker = HtmlNesting()
    checker.feed(html)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return "".join(checker.text)


def required_tool(name: str, install: str) -> str:
    """The path of command `name`; the test fails (never skips), saying how to install it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `{install}`")
    return path


@asynccontextmanager
async def serving(
    server: uvicorn.Server, sockets: list[socket.socket], what: str = "uvicorn serving"
) -> AsyncIterator[None]:
    """`server` serving on `sockets` in this loop, from when it listens to the block's end;
    if it stops before it listens, why is raised."""
    task = asyncio.create_task(server.serve(sockets=sockets))
    try:

        async def listening() -> bool:
            if task.done():
                task.result()  # why it ended
            return server.started

        await eventually(listening, timeout=30, what=what)
        yield
    finally:
        server.should_exit = True
        await task
