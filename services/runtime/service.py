"""How a long-running service process lives: until SIGTERM/SIGINT, retrying outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from events.backoff import Backoff
from events.logmask import mask_logging
from services.config import Settings, load_settings
from services.errors import DatabaseError
from services.metrics import start_metrics_server

T = TypeVar("T")
MAX_BACKOFF_SECONDS = 5.0
RESTART_BACKOFF = (1.0, 30.0)  # a failed hosted service, started again as the supervisor would
STEADY_SECONDS = 60.0  # one that ran this long failed afresh, not in a streak
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(level: int | str = logging.INFO) -> None:
    """The one logging set-up of service processes: to stderr, ID numbers masked."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    mask_logging()


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` has passed; whether it is set.

    Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives as
    the event is set, and a relay cancelled just after a batch woke it ran on for ever."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


class Hosted:
    """One of the services or departments a host process runs (`body`). Its failure is its
    own: it is started again with the supervisor's backoff while the others go on."""

    restart_backoff: tuple[float, float] = RESTART_BACKOFF

    def __init__(self, name: str) -> None:
        self.name = name
        self.running = False  # at work now (False while it starts or waits to restart)
        self.restarts = 0

    async def body(self, stop: asyncio.Event) -> None:
        raise NotImplementedError

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(*self.restart_backoff)
        while not stop.is_set():
            began = time.monotonic()
            try:
                await self.body(stop)
                if stop.is_set():
                    return
                raise RuntimeError("it ended without being asked to stop")
            except Exception:  # its failure is its own; the others go on
                self.running = False
                if time.monotonic() - began > STEADY_SECONDS:
                    backoff.reset()
                delay = backoff.next()
                self.restarts += 1
                logging.getLogger("redline").exception(
                    "%s: failed; starting it again in %.0f s", self.name, delay
                )
                await wait_set(stop, delay)
            finally:
                self.running = False


async def retrying(
    stop: asyncio.Event, attempt: Callable[[], Awaitable[T]], *, what: str
) -> T | None:
    """Retry database errors with capped backoff until it works; None if asked to stop."""
    backoff = Backoff(0.1, MAX_BACKOFF_SECONDS)
    while not stop.is_set():
        try:
            return await attempt()
        except DatabaseError as exc:
            delay = backoff.next()
            logging.getLogger("redline").warning("%s: %s; retrying in %.1f s", what, exc, delay)
            await wait_set(stop, delay)
    return None


def serve(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `run(stop)` in a fresh event loop; SIGTERM or SIGINT sets `stop`."""
    configure_logging()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(stop)

    asyncio.run(main())


def serve_process(run: Callable[[Settings, asyncio.Event], Awaitable[None]]) -> None:
    """A service process's `main`: its settings from the environment, its metrics
    endpoint, then `run(settings, stop)` until SIGTERM or SIGINT."""
    settings = load_settings()
    start_metrics_server(settings)
    serve(lambda stop: run(settings, stop))
