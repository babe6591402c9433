"""The consumer skeleton's claim (services.consumer.take), the same on every store that
keeps its consumer's event ids: a check each store's contract runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from services.consumer import Claims, Consumed


def fresh(name: str) -> str:
    """An id no other check uses: the checks of a module share one database."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


async def claim(tx: Claims, *event_ids: str) -> set[str]:
    return await tx.claim([Consumed(event_id, "case.filed") for event_id in event_ids])


async def claimed_once(transaction: Callable[[], AbstractAsyncContextManager[Claims]]) -> None:
    """An id is claimed by one claim only, in its transaction or a later one."""
    a, b, c, d = (fresh(name) for name in "abcd")
    async with transaction() as tx:
        assert await claim(tx, a, b) == {a, b}
        assert await claim(tx, b, c) == {c}
    async with transaction() as tx:
        assert await claim(tx, a, d) == {d}
    async with transaction() as tx:
        assert await claim(tx, a, b, c, d) == set()
