"""The test's stand-in for the registry: it decides a case's measures with the registry's
own pure function (events.decisions) and publishes the signed events straight onto the
violations topic, so a consumer's test controls every event, its order and its bytes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiokafka import AIOKafkaProducer

from events.authorities import NATURAL_RESOURCES
from events.catalogue import Catalogue, Stage, load_catalogue
from events.codec import encode_signed
from events.decisions import decide
from events.models import (
    CaseCorrected,
    CaseDetails,
    CaseFacts,
    CaseFiled,
    CaseRevoked,
    Parcel,
    Payload,
)
from events.signing import Signer
from events.topics import VIOLATIONS
from tests.support import corrected_event


@dataclass
class Bureau:
    producer: AIOKafkaProducer
    signer: Signer
    catalogue: Catalogue = field(default_factory=load_catalogue)
    cases: dict[str, tuple[list[Parcel], CaseFacts]] = field(default_factory=dict)

    def sign(self, payload: Payload, case_id: str) -> bytes:
        _, raw = encode_signed(
            payload, self.signer, source=NATURAL_RESOURCES.source, subject=case_id
        )
        return raw

    async def publish(self, payload: Payload, case_id: str) -> bytes:
        """Sign and send one event, keyed by its case; returns the bytes sent."""
        raw = self.sign(payload, case_id)
        await self.producer.send_and_wait(VIOLATIONS.name, raw, key=case_id.encode())
        return raw

    async def file(self, body: dict[str, Any], *, publish: bool = True) -> tuple[CaseFiled, bytes]:
        """File a case from a POST /v1/cases body, with its filing measures as decided;
        the signed bytes, sent unless `publish` is False (the caller sends them)."""
        details = CaseDetails.model_validate(body)
        case_id = f"T{date.today().year}-{uuid.uuid4().hex[:12]}"
        starts = decide(self.catalogue, [Stage.filing], details.parcels, details.facts)
        filed = CaseFiled(case_id=case_id, starts=starts, **details.model_dump())
        self.cases[case_id] = (list(details.parcels), details.facts)
        if publish:
            return filed, await self.publish(filed, case_id)
        return filed, self.sign(filed, case_id)

    async def correct(self, case_id: str, facts: CaseFacts) -> CaseCorrected:
        """Correct a filed case's facts: measures whose target moved end and start again."""
        parcels, before = self.cases[case_id]
        reason = "the survey found the premises elsewhere"
        corrected = corrected_event(
            case_id, parcels, before, facts, reason=reason, catalogue=self.catalogue
        )
        self.cases[case_id] = (parcels, facts)
        await self.publish(corrected, case_id)
        return corrected

    async def revoke(self, case_id: str) -> None:
        revoked = CaseRevoked(
            case_id=case_id,
            court="孝义市人民法院",
            decision_no=f"(2026)晋1181行初{uuid.uuid4().int % 1000}号",
            revoked_on=date(2026, 11, 20),
        )
        await self.publish(revoked, case_id)
