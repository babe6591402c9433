"""Bad input on the violation stream: each kind goes to the dead-letter topic with its
reason and changes nothing, and the consumer carries on (here the blocklist builder,
which shares the decoding and dead-lettering of every consumer)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from events.authorities import NATURAL_RESOURCES, demo_subscriber
from events.catalogue import Stage, load_catalogue
from events.decisions import decide
from events.envelope import MAX_EVENT_BYTES, Envelope, encode, schema_uri
from events.models import CaseDetails, CaseFiled, DeadLetter
from events.signing import Signer, TrustStore, sign
from events.topics import VIOLATIONS
from services.config import Settings
from services.entrypoints.blocklist import run_builder
from services.runtime.devkeys import load_dev_signer
from tests.conftest import Stack
from tests.support import (
    business_premises_facts,
    case_body,
    dead_letters,
    eventually,
    new_parcel_code,
    new_unit_code,
)

CONSUMER = "blocklist_builder"


def _envelope(case_id: str, event_type: str, data: dict[str, Any], source: str) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        source=source,
        type=event_type,
        subject=case_id,
        time=datetime.now(UTC),
        dataschema=schema_uri(event_type),
        data=data,
    )


def _filed_data(case_id: str, **changes: Any) -> dict[str, Any]:
    """A case.filed as the registry writes it, with the measures its facts start."""
    details = CaseDetails.model_validate(case_body())
    starts = decide(load_catalogue(), [Stage.filing], details.parcels, details.facts)
    data = CaseFiled(case_id=case_id, starts=starts, **details.model_dump()).model_dump(mode="json")
    data.update(changes)
    return data


def _facts_off_parcel() -> dict[str, Any]:
    site = {
        "location": "东关村",
        "parcel_code": new_parcel_code(),
        "real_estate_unit": new_unit_code(),
    }
    return business_premises_facts(site=site)


@pytest.fixture
async def builder(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_builder(settings, stop, heartbeat_every=1.0))
    yield
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_each_kind_of_bad_input_is_dead_lettered_with_its_reason_and_changes_nothing(
    builder: None, settings: Settings, stack: Stack, trust: TrustStore, db: asyncpg.Pool
) -> None:
    bureau = load_dev_signer(settings.home, NATURAL_RESOURCES)
    utility = demo_subscriber("power_supply")
    impostor = Signer.generate(bureau.key_id)  # the bureau's key id, another key
    source = NATURAL_RESOURCES.source

    def signed(
        case_id: str,
        event_type: str,
        data: dict[str, Any],
        signer: Signer = bureau,
        src: str = source,
    ) -> bytes:
        return encode(sign(_envelope(case_id, event_type, data, src), signer))

    filed = CaseFiled.event_type
    bad_id = _filed_data("x")["subject"] | {"id": "91141181MA0000000X"}
    inputs: dict[str, Callable[[str], bytes]] = {
        "malformed JSON": lambda c: b'{"specversion": "1.0", "id": ' + c.encode(),
        "oversized message": lambda c: b" " * (MAX_EVENT_BYTES + 1),
        "unknown event type": lambda c: signed(c, "redline.case.teleported.v1", {"case_id": c}),
        "unknown version": lambda c: signed(c, "redline.case.filed.v9", _filed_data(c)),
        "bad fact (a unit not on its parcel)": lambda c: signed(
            c, filed, _filed_data(c, facts=_facts_off_parcel())
        ),
        "missing field": lambda c: signed(
            c, filed, {k: v for k, v in _filed_data(c).items() if k != "subject"}
        ),
        "wrong check character": lambda c: signed(c, filed, _filed_data(c, subject=bad_id)),
        "forged signature": lambda c: signed(c, filed, _filed_data(c), impostor),
        "issuer not allowed (a utility sending case.filed)": lambda c: signed(
            c, filed, _filed_data(c), load_dev_signer(settings.home, utility), utility.source
        ),
    }
    expected = {
        "malformed JSON": ("invalid_event", "not a JSON document"),
        "oversized message": ("invalid_event", "size"),
        "unknown event type": ("unknown_event_type", "teleported"),
        "unknown version": ("unknown_event_type", "filed.v9"),
        "bad fact (a unit not on its parcel)": ("invalid_event", "facts.site"),
        "missing field": ("invalid_event", "subject"),
        "wrong check character": ("invalid_event", "check character"),
        "forged signature": ("signature_bad_signature", ""),
        "issuer not allowed (a utility sending case.filed)": ("signature_issuer_not_allowed", ""),
    }
    sent: dict[bytes, tuple[str, str]] = {}
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.kafka, acks="all", max_request_size=2 * MAX_EVENT_BYTES
    )
    await producer.start()
    try:
        for label, make in inputs.items():
            case_id = f"RL-BAD-{uuid.uuid4().hex[:8]}"
            raw = make(case_id)
            sent[raw] = (label, case_id)
            await producer.send_and_wait(VIOLATIONS.name, raw, key=case_id.encode())
        replayed_case = f"RL-BAD-{uuid.uuid4().hex[:8]}"
        good = signed(replayed_case, filed, _filed_data(replayed_case))
        for _ in range(2):  # a replayed old event: taken once, then ignored as a duplicate
            await producer.send_and_wait(VIOLATIONS.name, good, key=replayed_case.encode())
    finally:
        await producer.stop()

    letters: dict[str, DeadLetter] = {}

    async def all_dead_lettered() -> bool:
        for letter in await dead_letters(stack.kafka, trust):
            original = base64.b64decode(letter.original_b64)
            for raw, (label, _) in sent.items():
                if letter.consumer == CONSUMER and raw.startswith(original):
                    letters[label] = letter
        return len(letters) == len(inputs)

    await eventually(all_dead_lettered, timeout=60, what="every bad input dead-lettered")

    async def replay_taken() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM blocklist.blocks WHERE case_id = $1", replayed_case
        )
        return bool(count)

    await eventually(replay_taken, timeout=60, what="the good event taken once")
    table = ["| input | where it went | reason |", "|---|---|---|"]
    for label, (reason, detail) in expected.items():
        letter = letters[label]
        assert letter.reason == reason, (label, letter.reason, letter.detail)
        assert detail in letter.detail, (label, letter.detail)
        table.append(
            f"| {label} | dead letter ({letter.consumer}) | {reason}: {letter.detail[:80]} |"
        )
    case_ids = [case_id for _, case_id in sent.values()]
    changed = await db.fetchval(
        "SELECT count(*) FROM blocklist.cases WHERE case_id = ANY($1::text[])", case_ids
    )
    assert changed == 0  # nothing bad reached the lists
    # Each list keys the subject under its own key (events.subject_keys).
    outbox = await db.fetchval(
        "SELECT count(*) FROM blocklist.outbox o, blocklist.cases c, "
        "jsonb_each(c.list_hashes) AS list(measure, hashes) "
        "WHERE c.case_id = $1 AND o.key = list.hashes ->> 'subject'",
        replayed_case,
    )
    assert outbox == 4  # one entry per list: the replay published nothing more
    table.append("| replayed old event (same id twice) | taken once, then ignored | duplicate |")
    print("\n".join(table))
