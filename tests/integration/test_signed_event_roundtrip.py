"""A signed case.filed event crosses the real broker and comes back equal and verified."""

from __future__ import annotations

import time
import uuid
from datetime import date
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from events.catalogue import Stage, load_catalogue
from events.codec import decode, encode_signed
from events.decisions import decide
from events.errors import SignatureRejected
from events.identifiers import uscc_check_character
from events.land import LandClass
from events.models import CaseFacts, CaseFiled, ClueSource, Parcel, Subject
from events.signing import Signer, TrustedKey, TrustStore
from events.topics import VIOLATIONS
from tests.conftest import Stack
from tests.support import business_premises_facts

SOURCE = "/authorities/natural_resources"


def _case(case_id: str) -> CaseFiled:
    first17 = "91141181MA0K" + uuid.uuid4().hex[:5].upper().translate(
        str.maketrans("IOSVZ", "12345")
    )
    parcels = [
        Parcel(land_class=LandClass.permanent_basic_farmland, area_mu=Decimal("5.5")),
        Parcel.from_m2(LandClass.cultivated, "6670"),
    ]
    facts = CaseFacts.model_validate(business_premises_facts())
    return CaseFiled(
        case_id=case_id,
        township="xiaoyi-duizhen",
        subject=Subject(
            kind="organization",
            id=first17 + uscc_check_character(first17),
            name="孝义市某建材有限公司",
        ),
        parcels=parcels,
        facts=facts,
        starts=decide(load_catalogue(), [Stage.filing], parcels, facts),
        violation_kind="illegal_construction",
        source=ClueSource.satellite,
        found_on=date(2026, 11, 2),
    )


async def _consume_by_id(stack: Stack, event_ids: set[str]) -> dict[str, bytes]:
    consumer = AIOKafkaConsumer(
        VIOLATIONS.name,
        bootstrap_servers=stack.kafka,
        group_id=f"test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, bytes] = {}
    deadline = time.monotonic() + 60
    try:
        while set(found) != event_ids and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    if key in event_ids and record.value is not None:
                        found[key] = record.value
    finally:
        await consumer.stop()
    return found


async def test_signed_case_filed_round_trips_through_the_broker(stack: Stack) -> None:
    signer = Signer.generate("natural_resources-test")
    forger = Signer.generate("natural_resources-test")  # same key id, different key
    trust = TrustStore(
        [
            TrustedKey(
                key_id=signer.key_id,
                issuer="natural_resources",
                source=SOURCE,
                public_key_b64=signer.public_key_b64(),
                may_issue=("redline.case.*",),
            )
        ]
    )
    genuine_id, forged_id = f"case-{uuid.uuid4().hex}", f"case-{uuid.uuid4().hex}"
    genuine = _case(genuine_id)
    envelope, raw = encode_signed(genuine, signer, source=SOURCE)
    _, forged_raw = encode_signed(_case(forged_id), forger, source=SOURCE)

    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(VIOLATIONS.name, raw, key=genuine_id.encode())
        await producer.send_and_wait(VIOLATIONS.name, forged_raw, key=forged_id.encode())
    finally:
        await producer.stop()

    received = await _consume_by_id(stack, {genuine_id, forged_id})

    got_envelope, got_payload = decode(received[genuine_id], trust)
    assert got_envelope.id == envelope.id
    assert got_envelope.type == CaseFiled.event_type
    assert got_payload == genuine
    assert isinstance(got_payload, CaseFiled)
    assert got_payload.starts  # the decisions, with their facts and rule, cross intact
    assert got_payload.cultivated_mu() == Decimal("15.505")
    with pytest.raises(SignatureRejected) as rejected:
        decode(received[forged_id], trust)
    assert rejected.value.reason == "bad_signature"
