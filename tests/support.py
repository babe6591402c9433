"""Test helpers: valid identifiers, sample requests, reading a topic to its end, polling."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from events.catalogue import Stage, load_catalogue
from events.codec import decode
from events.decisions import decide
from events.errors import SignatureRejected
from events.identifiers import USCC_ALPHABET, uscc_check_character
from events.models import CaseDetails, CaseFiled, DeadLetter
from events.signing import TrustStore
from events.topics import DEAD_LETTERS

_rng = random.Random()


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
