"""The subscriber's check path on a replica of many blocked subjects: in-process checks,
HTTP checks at a fixed rate and flat out (beside the same server answering a fixed body),
and the replica's memory and cold start in a fresh process."""

from __future__ import annotations

import asyncio
import functools
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from connectors.subscriber.bench import MEASURE, SITE, build_replica, usccs
from connectors.subscriber.subjects import SubjectIds
from connectors.subscriber.view import BlocklistView
from events.privacy import SubjectHasher
from services.runtime.processes import free_port, spawn, stop_process, tcp_accepts, wait_until
from tests.bench.checkserver import BENCH_TOKEN

CONNECTIONS = 32
RATE = 5_000

_COLD_START = """
import json, sys, time
from pathlib import Path
def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
from connectors.subscriber.subjects import SubjectIds
from connectors.subscriber.view import BlocklistView
ids = SubjectIds.from_file(Path(sys.argv[2]))
before, began = rss(), time.perf_counter()
lists = {"refuse_power_supply": ids}
view = BlocklistView(Path(sys.argv[1]), lists, ("refuse_power_supply",), 86400.0)
assert view.check("refuse_power_supply", sys.argv[3], sys.argv[4]).status == "blocked"
print(json.dumps({"seconds": time.perf_counter() - began, "bytes": rss() - before}))
"""


def _in_process(
    replica: Path, ids: SubjectIds, blocked: list[str], others: list[str]
) -> dict[str, float]:
    view = BlocklistView(replica, {MEASURE: ids}, (MEASURE,), 86_400.0)
    check = view.check
    started = time.perf_counter()
    for raw in others:
        check(MEASURE, raw, SITE)
    clear = len(others) / (time.perf_counter() - started)
    sample = blocked[:20_000]
    started = time.perf_counter()
    for raw in sample:
        check(MEASURE, raw, SITE)
    found = len(sample) / (time.perf_counter() - started)
    view.close()
    return {"clear": clear, "blocked": found}


def _request(subject: str) -> bytes:
    query = f"measure={MEASURE}&subject={subject}&site={SITE}"
    return (
        f"GET /v1/checks?{query} HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {BENCH_TOKEN}\r\n\r\n"
    ).encode()


async def _connection(
    port: int,
    requests: list[bytes],
    schedule: list[float] | None,
    deadline: float,
    latencies: list[float],
) -> None:
    """Send `requests` in turn: each when due (open loop), or back to back until `deadline`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        number = 0
        while True:
            if schedule is not None:
                if number == len(schedule):
                    return
                due = schedule[number]
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                due = time.perf_counter()
                if due > deadline:
                    return
            writer.write(requests[number % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)  # from when it was due: no omission
            number += 1
    finally:
        writer.close()


async def _load(
    port: int, subjects: list[str], seconds: float, rate: float | None
) -> dict[str, float]:
    """Open loop at `rate` requests/s over CONNECTIONS connections (None: flat out)."""
    latencies: list[float] = []
    began = time.perf_counter() + 0.2
    per_connection = int(seconds * (rate or 0) / CONNECTIONS)
    tasks = []
    for c in range(CONNECTIONS):
        mine = subjects[c::CONNECTIONS][:2_000]
        schedule = (
            [began + (i * CONNECTIONS + c) / rate for i in range(per_connection)] if rate else None
        )
        requests = [_request(subject) for subject in mine]
        tasks.append(_connection(port, requests, schedule, began + seconds, latencies))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def _http(
    replica: Path, key: Path, subjects: list[str], seconds: float, home: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for label, extra in (("check", []), ("bare", ["bare"])):
        port = free_port()
        proc = spawn(
            [
                sys.executable,
                "-m",
                "tests.bench.checkserver",
                str(replica),
                str(key),
                str(port),
                *extra,
            ],
            log_path=home / f"checkserver-{label}.log",
        )
        try:
            wait_until(
                functools.partial(tcp_accepts, "127.0.0.1", port), timeout=300, what="check server"
            )
            results[label] = {
                "fixed": asyncio.run(_load(port, subjects, seconds, RATE)),
                "flat_out": asyncio.run(_load(port, subjects, seconds, None)),
            }
        finally:
            stop_process(proc)
    return results


async def run(kafka: str, database: str, count: int) -> list[dict[str, Any]]:
    del kafka, database  # the check path needs neither: that is the point of a replica
    return await asyncio.to_thread(_run, count)


def _run(count: int) -> list[dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix="redline-bench-subscriber-"))
    rng = random.Random(11)
    key = home / "subject.key"
    SubjectHasher.create_file(key)
    ids = SubjectIds.from_file(key)
    blocked, others = usccs(count, rng), usccs(min(count, 1_000_000), rng)
    replica = home / "replica.sqlite3"
    started = time.perf_counter()
    build_replica(replica, ids, blocked)
    written = time.perf_counter() - started
    cold = json.loads(
        subprocess.run(
            [sys.executable, "-c", _COLD_START, str(replica), str(key), blocked[0], SITE],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    local = _in_process(replica, ids, blocked, others)
    seconds = 10.0 if count >= 1_000_000 else 4.0
    http = _http(replica, key, others, seconds, home)
    check, bare = http["check"], http["bare"]
    return [
        {"figure": "replica subjects", "value": count, "unit": "subjects"},
        {"figure": "replica write (no signatures)", "value": count / written, "unit": "entries/s"},
        {"figure": "cold start (index load)", "value": cold["seconds"], "unit": "s"},
        {"figure": "replica memory (index)", "value": cold["bytes"] / 2**20, "unit": "MiB"},
        {
            "figure": "in-process check, clear",
            "value": local["clear"],
            "unit": "checks/s",
            "target": 1_000_000,
        },
        {"figure": "in-process check, blocked", "value": local["blocked"], "unit": "checks/s"},
        {
            "figure": "HTTP bare server, flat out",
            "value": bare["flat_out"]["rate"],
            "unit": "req/s",
        },
        {
            "figure": "HTTP check, flat out",
            "value": check["flat_out"]["rate"],
            "unit": "req/s",
            "baseline": "HTTP bare server, flat out",
            "ratio": check["flat_out"]["rate"] / bare["flat_out"]["rate"],
            "target": 5_000,
        },
        {
            "figure": f"HTTP check at {RATE}/s: rate",
            "value": check["fixed"]["rate"],
            "unit": "req/s",
        },
        {"figure": f"HTTP check at {RATE}/s: p50", "value": check["fixed"]["p50_ms"], "unit": "ms"},
        {
            "figure": f"HTTP check at {RATE}/s: p99",
            "value": check["fixed"]["p99_ms"],
            "unit": "ms",
            "target": 5,
        },
        {"figure": f"HTTP bare at {RATE}/s: p99", "value": bare["fixed"]["p99_ms"], "unit": "ms"},
    ]
