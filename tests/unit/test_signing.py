import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from events.codec import decode, encode_signed
from events.envelope import encode, new_event
from events.errors import EventError, SignatureRejected
from events.models import CaseClosed, CaseFiled, CaseFiledV1, MeasureFailed
from events.signing import Signer, TrustedKey, TrustStore, sign

NR_SOURCE = "/authorities/natural_resources"
POWER_SOURCE = "/utilities/power"
SUBJECT = {"kind": "organization", "id": "91350100M000100Y43", "name": "某公司"}


def closed() -> CaseClosed:
    return CaseClosed(case_id="C-1", closed_on="2024-05-01", reason="restored")


def setup() -> tuple[Signer, Signer, TrustStore]:
    authority = Signer.generate("nr-2024")
    utility = Signer.generate("power-2024")
    trust = TrustStore(
        [
            TrustedKey(
                "nr-2024",
                "Natural Resources Bureau",
                NR_SOURCE,
                authority.public_key_b64(),
                ("redline.case.*", "redline.clue.*"),
            ),
            TrustedKey(
                "power-2024",
                "Power supplier",
                POWER_SOURCE,
                utility.public_key_b64(),
                ("redline.measure.*",),
            ),
        ]
    )
    return authority, utility, trust


def reason_of(trust: TrustStore, envelope: object) -> str:
    with pytest.raises(SignatureRejected) as caught:
        trust.verify(envelope)  # type: ignore[arg-type]
    return caught.value.reason


def test_sign_and_verify() -> None:
    authority, _, trust = setup()
    envelope = sign(new_event(closed(), source=NR_SOURCE), authority)
    assert envelope.signingkey == "nr-2024"
    assert trust.verify(envelope).issuer == "Natural Resources Bureau"


def test_tampered_data_is_a_bad_signature() -> None:
    authority, _, trust = setup()
    envelope = sign(new_event(closed(), source=NR_SOURCE), authority)
    tampered = envelope.model_copy(update={"data": {**envelope.data, "case_id": "C-2"}})
    assert reason_of(trust, tampered) == "bad_signature"
    moved = envelope.model_copy(update={"subject": "C-2"})
    assert reason_of(trust, moved) == "bad_signature"


def test_unknown_key() -> None:
    _, _, trust = setup()
    stranger = Signer.generate("stranger")
    assert reason_of(trust, sign(new_event(closed(), source=NR_SOURCE), stranger)) == "unknown_key"


def test_key_not_allowed_for_the_type() -> None:
    _, utility, trust = setup()
    envelope = sign(new_event(closed(), source=POWER_SOURCE), utility)
    assert reason_of(trust, envelope) == "issuer_not_allowed"
    failed = MeasureFailed(
        case_id="C-1", department="power", measure="refuse_supply", error="timeout", caused_by="e-1"
    )
    trust.verify(sign(new_event(failed, source=POWER_SOURCE), utility))


def test_source_mismatch() -> None:
    _, utility, trust = setup()
    failed = MeasureFailed(
        case_id="C-1", department="power", measure="refuse_supply", error="timeout", caused_by="e-1"
    )
    envelope = sign(new_event(failed, source=NR_SOURCE), utility)
    assert reason_of(trust, envelope) == "source_mismatch"


def test_missing_or_garbled_signature_is_malformed() -> None:
    authority, _, trust = setup()
    assert reason_of(trust, new_event(closed(), source=NR_SOURCE)) == "malformed"
    signed = sign(new_event(closed(), source=NR_SOURCE), authority)
    assert reason_of(trust, signed.model_copy(update={"signature": "not base64!"})) == "malformed"
    short = base64.b64encode(b"x" * 10).decode()
    assert reason_of(trust, signed.model_copy(update={"signature": short})) == "malformed"


def test_signer_pem_round_trip() -> None:
    authority, _, trust = setup()
    again = Signer.from_pem("nr-2024", authority.private_pem())
    assert again.public_key_b64() == authority.public_key_b64()
    trust.verify(sign(new_event(closed(), source=NR_SOURCE), again))
    with pytest.raises(EventError):
        Signer.from_pem("x", b"not a pem")


def test_signatures_are_the_standard_ed25519_of_the_pem_key() -> None:
    """Signed with libsodium, the signature is the one OpenSSL makes with the PEM's key
    (Ed25519 is deterministic), and OpenSSL accepts it: consumers built on any library agree."""
    authority = Signer.generate("nr-2024")
    key = serialization.load_pem_private_key(authority.private_pem(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    message = b'{"id":"an event"}'
    signature = authority.sign_bytes(message)
    assert signature == key.sign(message)
    key.public_key().verify(signature, message)
    trusted = TrustedKey("nr-2024", "nr", NR_SOURCE, authority.public_key_b64(), ("*",))
    assert trusted.verifies(signature, message)
    assert not trusted.verifies(signature, message + b" ")
    assert not trusted.verifies(signature[:63], message)


def test_trust_store_yaml_round_trip(tmp_path: Path) -> None:
    authority, _, trust = setup()
    path = tmp_path / "trust.yaml"
    trust.dump(path)
    loaded = TrustStore.load(path)
    assert loaded.keys == trust.keys
    loaded.verify(sign(new_event(closed(), source=NR_SOURCE), authority))


def test_bad_trust_store_names_entry_and_field(tmp_path: Path) -> None:
    authority, _, _ = setup()
    path = tmp_path / "trust.yaml"
    path.write_text(
        "keys:\n"
        f"  - {{key_id: ok, issuer: NR, source: /a, public_key: '{authority.public_key_b64()}',"
        " may_issue: ['redline.*']}\n"
        "  - {key_id: broken, issuer: NR, source: /a, public_key: 'AAAA', may_issue: ['x']}\n",
        encoding="utf-8",
    )
    with pytest.raises(EventError, match=r"keys\[1\] \(broken\)\.public_key"):
        TrustStore.load(path)
    path.write_text("keys:\n  - {key_id: k, issuer: NR, source: /a, public_key: x}\n")
    with pytest.raises(EventError, match=r"keys\[0\] \(k\)\.may_issue"):
        TrustStore.load(path)
    path.write_text("keys: [\n")
    with pytest.raises(EventError, match="cannot read"):
        TrustStore.load(path)


def test_v1_case_filed_signed_as_v1_decodes_to_v2() -> None:
    authority, _, trust = setup()
    old = CaseFiledV1.model_validate(
        {
            "case_id": "C-7",
            "township": "城关镇",
            "subject": SUBJECT,
            "land_class": "permanent_basic_farmland",
            "area_mu": "6",
            "violation_kind": "illegal construction",
            "source": "satellite",
            "found_on": "2023-01-05",
            "clue_id": None,
        }
    )
    envelope = sign(
        new_event(old, source=NR_SOURCE, time=datetime(2023, 1, 6, tzinfo=UTC)), authority
    )
    assert envelope.type == "redline.case.filed.v1"
    received, payload = decode(encode(envelope), trust)
    assert received.type == "redline.case.filed.v1"
    assert isinstance(payload, CaseFiled)
    assert payload.basic_farmland_mu() == 6
    assert payload.parcels[0].land_class == "permanent_basic_farmland"


def test_encode_signed_then_decode() -> None:
    authority, _, trust = setup()
    envelope, raw = encode_signed(closed(), authority, source=NR_SOURCE, event_id="e-1")
    assert decode(raw, trust) == (envelope, closed())
