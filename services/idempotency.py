"""Commands answered once per `Idempotency-Key` (the registry's, referrals', townships').

The first answer is stored under the key with a fingerprint of the request, in the same
transaction as the command's writes; a repeat of the request gets that answer again, and
another request under the same key is refused, naming the header.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from services.errors import InvalidInput


@dataclass(frozen=True)
class StoredResponse:
    operation: str
    request_hash: str
    status_code: int
    body: dict[str, Any]


class IdempotencyKeys(abc.ABC):
    """The part of a transaction that keeps idempotency keys."""

    @abc.abstractmethod
    async def claim_idempotency_key(self, key: str) -> StoredResponse | None:
        """Lock the key for this transaction; the earlier answer under it, if any."""

    @abc.abstractmethod
    async def save_idempotent_response(self, key: str, response: StoredResponse) -> None: ...


def fingerprint(operation: str, request: BaseModel | Any) -> str:
    """What a repeat must match: the operation and the request, canonically."""
    body = request.model_dump(mode="json") if isinstance(request, BaseModel) else request
    canonical = json.dumps([operation, body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


Transaction = TypeVar("Transaction", bound=IdempotencyKeys)


async def once(
    transaction: Callable[[], AbstractAsyncContextManager[Transaction]],
    operation: str,
    request: BaseModel | Any,
    key: str | None,
    write: Callable[[Transaction], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run `write` in one transaction, once per idempotency key."""
    request_hash = fingerprint(operation, request)
    async with transaction() as tx:
        if key is not None:
            earlier = await tx.claim_idempotency_key(key)
            if earlier is not None:
                if earlier.request_hash != request_hash:
                    raise InvalidInput(
                        "Idempotency-Key", "already used for a different request; use a new key"
                    )
                return earlier.body
        body = await write(tx)
        if key is not None:
            await tx.save_idempotent_response(
                key, StoredResponse(operation, request_hash, 200, body)
            )
        return body
