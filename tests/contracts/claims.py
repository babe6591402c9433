"""The consumer skeleton's claim (services.consumer.take), the same on every store that
keeps its consumer's event ids: a check each store's contract runs with its own way of
writing ids consumed in a batch."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from services.consumer import Claims, Consumed

TxT = TypeVar("TxT", bound=Claims)
Consume = Callable[[TxT, list[tuple[str, str]]], Awaitable[None]]


def fresh(name: str) -> str:
    """An id no other check uses: the checks of a module share one database."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


async def claim(tx: Claims, *event_ids: str) -> set[str]:
    return await tx.claim([Consumed(event_id, "case.filed") for event_id in event_ids])


async def claimed_once(
    transaction: Callable[[], AbstractAsyncContextManager[TxT]], consume: Consume[TxT]
) -> None:
    """An id is claimed by one claim only, whether claimed or written consumed before; a
    batch writing an id consumed twice keeps it."""
    a, b, c, d, written = (fresh(name) for name in "abcdw")
    async with transaction() as tx:
        assert await claim(tx, a, b) == {a, b}
        assert await claim(tx, b, c) == {c}
    async with transaction() as tx:
        assert await claim(tx, a, d) == {d}
        await consume(tx, [(written, "case.filed"), (a, "case.filed")])
        await consume(tx, [(written, "case.filed")])  # already there: kept
    async with transaction() as tx:
        assert await claim(tx, a, b, c, d, written) == set()
