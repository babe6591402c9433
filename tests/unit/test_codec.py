import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from events.codec import DecodedOnce, decode, encode_signed
from events.envelope import (
    MAX_EVENT_BYTES,
    Envelope,
    decode_envelope,
    encode,
    new_event,
    payload_of,
    schema_uri,
)
from events.errors import InvalidEvent, SignatureRejected, UnknownEventType
from events.models import BlocklistEntry, CaseFiled, ClueReported, DeadLetter
from events.signing import Signer, TrustedKey, TrustStore

SOURCE = "/authorities/natural_resources"
SIGNER = Signer.generate("nr")
TRUST = TrustStore(
    [TrustedKey("nr", "Natural Resources Bureau", SOURCE, SIGNER.public_key_b64(), ("redline.*",))]
)


def case() -> CaseFiled:
    return CaseFiled.model_validate(
        {
            "case_id": "C-2024-001",
            "township": "城关镇",
            "subject": {"kind": "person", "id": "11010519491231002X", "name": "张三"},
            "parcels": [
                {"land_class": "permanent_basic_farmland", "area_m2": "3335"},
                {"land_class": "cultivated", "area_mu": "7.25"},
            ],
            "facts": {"site": {"location": "城关镇北关村"}, "building_use": "residence"},
            "violation_kind": "illegal construction",
            "source": "satellite",
            "found_on": "2024-03-01",
        }
    )


def wire(**changes: object) -> bytes:
    _, raw = encode_signed(case(), SIGNER, source=SOURCE)
    document = json.loads(raw)
    document.update(changes)
    return json.dumps(document).encode()


def invalid(raw: bytes) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        decode(raw, TRUST)
    return caught.value


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{not json", b"[1, 2]", b"NaN", b'"x"'])
def test_undecodable_bytes(raw: bytes) -> None:
    assert invalid(raw).field == "json"


def test_missing_envelope_attribute_is_named() -> None:
    document = json.loads(wire())
    del document["id"]
    err = invalid(json.dumps(document).encode())
    assert err.field == "id"
    assert str(err).startswith("id: ")


def test_naive_time_refused() -> None:
    assert invalid(wire(time="2024-03-01T10:00:00")).field == "time"


def test_missing_payload_field_is_named() -> None:
    envelope = new_event(case(), source=SOURCE)
    data = dict(envelope.data)
    del data["township"]
    with pytest.raises(InvalidEvent) as caught:
        payload_of(envelope.model_copy(update={"data": data}))
    assert caught.value.field == "data.township"


def test_unknown_event_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        decode(wire(type="redline.case.exploded.v1"), TRUST)
    assert caught.value.field == "type"


def test_oversize() -> None:
    raw = wire(padding="x" * MAX_EVENT_BYTES)
    assert invalid(raw).field == "size"
    with pytest.raises(InvalidEvent):
        decode_envelope(raw)


def test_round_trip_gives_an_equal_model() -> None:
    when = datetime(2024, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    envelope, raw = encode_signed(case(), SIGNER, source=SOURCE, event_id="e-1", time=when)
    received, payload = decode(raw, TRUST)
    assert payload == case()
    assert received == envelope
    assert received.subject == "C-2024-001"
    assert received.dataschema == schema_uri("redline.case.filed.v3")
    assert isinstance(payload, CaseFiled)
    assert payload.basic_farmland_mu() == Decimal("5.0025")
    assert json.loads(raw)["data"]["parcels"][0]["area_mu"] == "5.0025"


def test_defaults_and_explicit_subject() -> None:
    clue = ClueReported(
        clue_id="K-1",
        source="drone",
        township="城关镇",
        location="村北",
        description="new walls",
        reported_on="2024-01-01",
    )
    envelope = new_event(clue, source=SOURCE)
    assert envelope.subject == "K-1"
    assert envelope.time.tzinfo is not None
    entry = BlocklistEntry.model_validate(
        {
            "measure": "refuse_loans",
            "department": "banks",
            "target": "subject",
            "subject_hash": "ab" * 32,
            "key_id": "cd" * 8,
            "version": 1,
            "subject_kind": "person",
            "masked_name": "张*",
            "cases": [
                {
                    "case_id": "C-1",
                    "legal_basis": "seed §三",
                    "since": datetime(2024, 1, 1, tzinfo=UTC),
                }
            ],
        }
    )
    with pytest.raises(InvalidEvent) as caught:
        new_event(entry, source=SOURCE)
    assert caught.value.field == "subject"
    assert new_event(entry, source=SOURCE, subject="refuse_loans:" + "ab" * 32).subject


def test_encode_omits_absent_attributes() -> None:
    raw = encode(new_event(case(), source=SOURCE))
    assert "signature" not in json.loads(raw)


def test_dead_letter_of_an_oversize_message_still_fits() -> None:
    letter = DeadLetter.for_message(
        consumer="finance",
        topic="redline.violations.v1",
        partition=0,
        offset=7,
        reason="size",
        detail="too big",
        original=b"x" * (2 * MAX_EVENT_BYTES),
    )
    _, raw = encode_signed(letter, SIGNER, source=SOURCE, subject="finance")
    assert len(raw) <= MAX_EVENT_BYTES
    assert "truncated" in decode(raw, TRUST)[1].detail  # type: ignore[attr-defined]


class CountingTrust(TrustStore):
    """The real trust store, counting the signatures it checks."""

    checked = 0

    def verify(self, envelope: Envelope) -> TrustedKey:
        self.checked += 1
        return super().verify(envelope)


def test_decoded_once_checks_each_distinct_message_once_for_every_reader() -> None:
    trust = CountingTrust(TRUST.keys)
    decoded = DecodedOnce(trust, size=8)
    _, raw = encode_signed(case(), SIGNER, source=SOURCE)
    answers = [decoded(raw) for _ in range(21)]  # 21 departments read the same record
    assert trust.checked == 1
    assert decoded.hits == 20
    assert all(answer == decode(raw, TRUST) for answer in answers)


def test_decoded_once_refuses_a_copied_signature_on_other_content() -> None:
    decoded = DecodedOnce(CountingTrust(TRUST.keys), size=8)
    genuine = json.loads(encode_signed(case(), SIGNER, source=SOURCE)[1])
    decoded(json.dumps(genuine).encode())
    forged = dict(genuine, data=dict(genuine["data"], case_id="C-2024-999"))
    with pytest.raises(SignatureRejected) as caught:
        decoded(json.dumps(forged).encode())
    assert caught.value.reason == "bad_signature"


def test_decoded_once_keeps_no_refusal_and_forgets_the_oldest() -> None:
    trust = CountingTrust(TRUST.keys)
    decoded = DecodedOnce(trust, size=2)
    bad = wire(signature="AAAA")
    for _ in range(2):
        with pytest.raises(SignatureRejected):
            decoded(bad)
    assert trust.checked == 2  # a refusal is checked again each time
    first, second, third = (encode_signed(case(), SIGNER, source=SOURCE)[1] for _ in range(3))
    for raw in (first, second, third, first):
        decoded(raw)
    assert trust.checked == 2 + 4  # the first was forgotten when the third came
    decoded(third)
    assert decoded.hits == 1
