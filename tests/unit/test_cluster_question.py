"""One cluster question for the publishers of a process (services.adapters.publisher)."""

from __future__ import annotations

import asyncio

import pytest

from services.adapters.publisher import ClusterQuestion
from services.errors import BrokerError


class Broker:
    """Answers each request once released; counts the requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.asked = asyncio.Event()  # a request is waiting to be answered
        self.release = asyncio.Event()
        self.answer: str | Exception = "cluster-a"

    async def request(self) -> str:
        self.requests += 1
        self.asked.set()
        await self.release.wait()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_asks_while_an_answer_is_on_its_way_share_one_request() -> None:
    question, broker = ClusterQuestion(), Broker()
    waiting = [asyncio.create_task(question.ask(broker.request)) for _ in range(3)]
    # The tasks take their first step in the loop turn that starts the request, before
    # this one wakes: all three are waiting on it.
    await broker.asked.wait()
    broker.release.set()
    assert await asyncio.gather(*waiting) == ["cluster-a"] * 3
    assert broker.requests == 1

    # Asked after that answer came: a new request, which sees a replaced broker.
    broker.answer = "cluster-b"
    assert await question.ask(broker.request) == "cluster-b"
    assert broker.requests == 2


async def test_a_failed_request_fails_every_waiter_and_the_next_ask_asks_again() -> None:
    question, broker = ClusterQuestion(), Broker()
    broker.answer = BrokerError("unreachable")
    waiting = [asyncio.create_task(question.ask(broker.request)) for _ in range(2)]
    await broker.asked.wait()
    broker.release.set()
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, BrokerError)
    broker.answer = "cluster-a"
    assert await question.ask(broker.request) == "cluster-a"
    assert broker.requests == 2


async def test_a_waiter_cancelled_does_not_cancel_the_question_for_the_others() -> None:
    question, broker = ClusterQuestion(), Broker()
    leaving = asyncio.create_task(question.ask(broker.request))
    staying = asyncio.create_task(question.ask(broker.request))
    await broker.asked.wait()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    broker.release.set()
    assert await staying == "cluster-a"
    assert broker.requests == 1
