"""What the subscriber connector's tests run it against: the `redline-connector run` daemon as
a process of its own, and a webhook receiver on a loopback port."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from connectors.subscriber.subscriber import Subscriber


@asynccontextmanager
async def connector_daemon(
    command: Sequence[str], env: dict[str, str], token: str, cwd: Path | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client, sending `token`, on the address the daemon says it serves. When the block
    ends the daemon must stop on SIGTERM with exit status 0; if the block fails, it is killed."""
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        assert "serving " in line, f"the daemon said {line!r} (exit {proc.returncode})"
        address = line.split("serving ")[1].split()[0]
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=address, headers=auth) as client:
            yield client
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@contextmanager
def webhook(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` answering on a loopback port, on a thread, for the block: its hook URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def started(subscriber: Subscriber) -> Iterator[Subscriber]:
    """`subscriber` with its consumer and senders on background threads of this process,
    stopped when the block ends."""
    subscriber.start()
    try:
        yield subscriber
    finally:
        subscriber.stop()
