"""Start, watch and end child processes: only our own, always by pid.

Every child is started with a parent-death signal, so a crashed supervisor or test
run cannot leave a broker or a database running behind it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from events.backoff import Backoff
from services.errors import StartupError

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


_random = random.SystemRandom()  # its own: tests seeding `random` must not make ports collide


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when its parent dies."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# Ports handed to servers come from below the kernel's ephemeral range (32768-60999 by
# default). A port the OS picks (bind to 0) is an ephemeral one, and between choosing it
# and the server binding it, any outgoing connection of the 30 processes may take it as
# its local port: a service then dies with "address already in use".
def _server_ports() -> range:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(10000, max(low, 20000))


_SERVER_PORTS = _server_ports()


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the range the
    kernel gives outgoing connections, and never one this process handed out before: a
    start-up picks dozens of ports before the first child binds its own, and two picks of
    one port made the second child fail with 'address already in use'."""
    for _ in range(200):
        port = _random.choice(_SERVER_PORTS)
        if port not in _HANDED_OUT and port_is_free(port):
            _HANDED_OUT.add(port)
            return port
    raise OSError(f"no free port in {_SERVER_PORTS.start}-{_SERVER_PORTS.stop - 1}")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child whose output goes to `log_path` and that dies with us."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = log_path.open("ab")
    try:
        return subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            cwd=cwd,
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl must run in the child
        )
    finally:
        log.close()


def is_running(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    for line in status.splitlines():
        if line.startswith("State:"):
            return "Z" not in line.split()[1]
    return True


def stop_process(
    proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> int:
    """Ask our child to stop with `sig`, then SIGKILL it after `timeout` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def stop_processes(
    procs: Sequence[subprocess.Popen[bytes]], *, sig: int = signal.SIGTERM, timeout: float = 15.0
) -> None:
    """Signal all at once, then wait for each, so n children take one timeout, not n."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
    deadline = time.monotonic() + timeout
    for proc in procs:
        stop_process(proc, sig=sig, timeout=max(0.1, deadline - time.monotonic()))


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll `check` until it holds, or raise naming `what` once the deadline passes."""
    deadline = time.monotonic() + timeout
    backoff = Backoff(0.02, 0.5)
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise StartupError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(backoff.next())


def tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
