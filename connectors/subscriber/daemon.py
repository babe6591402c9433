"""The daemon: the subscriber's threads plus the check API served by uvicorn.

SIGTERM and SIGINT stop the HTTP server first (no new checks), then the consumer and the
senders; whatever they had not sent stays queued in the replica for the next start.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from connectors.subscriber.access import Access
from connectors.subscriber.api import ConnectorApp
from connectors.subscriber.errors import ConfigError
from connectors.subscriber.metrics import DaemonMetrics
from connectors.subscriber.subscriber import Subscriber

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so the address (port 0 picks a free one) is known up front."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it every response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError("port", f"cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def address(sock: socket.socket, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def make_server(
    subscriber: Subscriber, access: Access, tls: tuple[Path, Path] | None = None
) -> uvicorn.Server:
    """The check API's server; `tls` is (certificate chain, private key), both PEM."""
    config = uvicorn.Config(
        ConnectorApp(subscriber, DaemonMetrics(subscriber.config.name, subscriber), access=access),
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        timeout_keep_alive=30,
        ssl_certfile=None if tls is None else str(tls[0]),
        ssl_keyfile=None if tls is None else str(tls[1]),
    )
    return uvicorn.Server(config)


def serve(
    subscriber: Subscriber,
    sock: socket.socket,
    *,
    access: Access,
    tls: tuple[Path, Path] | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Run until SIGTERM/SIGINT (from the main thread) or `server.should_exit`."""
    server = make_server(subscriber, access, tls)

    def request_exit(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    # uvicorn installs its own handlers while serving, restores these afterwards and
    # re-raises the signal it caught: ours then only asks again for what is under way.
    main = threading.current_thread() is threading.main_thread()
    handled = (signal.SIGTERM, signal.SIGINT) if main else ()
    previous = {sig: signal.signal(sig, request_exit) for sig in handled}
    subscriber.start()
    try:
        announce(address(sock, tls is not None))
        server.run(sockets=[sock])
    finally:
        log.info("stopping the subscriber")
        subscriber.stop()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
