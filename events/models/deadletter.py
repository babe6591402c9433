"""A message a consumer refused, kept with the reason so nothing is lost."""

from __future__ import annotations

import base64
from typing import Annotated, ClassVar

from pydantic import (
    Field,
    StringConstraints,
)

from events.models.values import Name, Payload, Text

# A dead letter must itself fit in an event (MAX_EVENT_BYTES), so the original is cut.
MAX_DEADLETTER_ORIGINAL_BYTES = 128 * 1024


class DeadLetter(Payload):
    """A message a consumer refused, kept with the reason so nothing is lost."""

    event_type: ClassVar[str] = "redline.deadletter.v1"

    consumer: Name
    topic: Name
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    reason: Name
    detail: Text
    original_b64: Annotated[
        str,
        StringConstraints(
            pattern=r"^[A-Za-z0-9+/]*={0,2}$",
            max_length=4 * (MAX_DEADLETTER_ORIGINAL_BYTES // 3 + 1),
        ),
    ]

    @classmethod
    def for_message(
        cls,
        *,
        consumer: str,
        topic: str,
        partition: int,
        offset: int,
        reason: str,
        detail: str,
        original: bytes,
    ) -> DeadLetter:
        """Build one from raw bytes, cutting an original too big to fit in an event."""
        if len(original) > MAX_DEADLETTER_ORIGINAL_BYTES:
            detail = f"{detail} (original truncated from {len(original)} bytes)"
            original = original[:MAX_DEADLETTER_ORIGINAL_BYTES]
        return cls(
            consumer=consumer,
            topic=topic,
            partition=partition,
            offset=offset,
            reason=reason,
            detail=detail[:4000],
            original_b64=base64.b64encode(original).decode("ascii"),
        )
