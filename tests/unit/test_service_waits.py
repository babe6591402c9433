"""`wait_set`: a cancellation it accepts is never lost, whenever the event is set.

`asyncio.wait_for` on Python 3.11 returns normally when the event is set just before the
cancellation lands; a relay cancelled that way ran on for ever and its process hung."""

from __future__ import annotations

import asyncio

import pytest

from services.runtime.service import wait_set


@pytest.mark.parametrize("steps", range(4))
async def test_an_accepted_cancellation_is_raised_even_as_the_event_is_set(steps: int) -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_set(event, 10))
    await asyncio.sleep(0)  # one loop step: the task now waits on the event
    event.set()
    for _ in range(steps):  # let the wake-up run that far, no further
        await asyncio.sleep(0)
    if waiting.cancel():
        with pytest.raises(asyncio.CancelledError):
            await waiting
    else:
        assert await waiting is True  # it had finished: nothing was left to cancel


async def test_it_tells_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 10) is True
