"""`make bench`: every workload beside its bare baseline, in one run, as JSON and a table.

Benchmarks, not tests: nothing here asserts a time. QUICK=1 runs a small version;
BENCH_ONLY=name[,name] runs only the named workloads.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from services.adapters.kafka import ensure_topics
from services.adapters.migrate import migrate
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from tests.bench import department, fanout, relay, subscriber, trickle

Workload = Callable[[str, str, int], Awaitable[list[dict[str, Any]]]]
WORKLOADS: dict[str, tuple[Workload, int, int]] = {
    # name: (function, events in a full run, events in a quick run)
    "department_drain": (department.run, 100_000, 10_000),
    "outbox_relay": (relay.run, 50_000, 5_000),
    "fanout_latency": (fanout.run, 3_000, 250),
    # At 10 cases/s no process is short of CPU, so every stage takes each case as a
    # batch of its own: what a case costs when nothing batches it (#19). At 50/s the
    # machine is full and batches grow until the work fits: the CPU per case there is
    # mostly ~1.85 cores divided by the rate.
    "fanout_unbatched": (functools.partial(fanout.run, rate=10.0), 600, 100),
    # Offered faster than the API answers (~55/s): every stage takes the largest batches
    # it ever gets, so the CPU per case here is the floor no pacing can go below. Its
    # latencies are those of a backlog.
    "fanout_flat_out": (functools.partial(fanout.run, rate=200.0), 4_000, 250),
    "department_trickle": (trickle.run, 400, 100),
    "subscriber_checks": (subscriber.run, 1_000_000, 100_000),
}


async def _measure(quick: bool, only: set[str]) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="redline-bench-"))
    # The services it starts are named the servers by address, as on external servers, and
    # sign with development keys under `home`: say so (they refuse otherwise).
    os.environ["REDLINE_DEV_KEYS"] = "1"
    external = os.environ.get("KAFKA_BOOTSTRAP") and os.environ.get("DATABASE_URL")
    broker = postgres = None
    if external:
        kafka, database = os.environ["KAFKA_BOOTSTRAP"], os.environ["DATABASE_URL"]
    else:
        broker, postgres = EmbeddedBroker(home / "broker"), EmbeddedPostgres(home / "postgres")
        broker.start()
        postgres.start()
        kafka, database = broker.bootstrap, postgres.url
    try:
        await ensure_topics(kafka)
        await migrate(database)
        results: list[dict[str, Any]] = []
        for name, (workload, full, small) in WORKLOADS.items():
            if only and name not in only:
                continue
            try:
                figures = await workload(kafka, database, small if quick else full)
            except Exception as exc:  # one broken workload must not lose the others' figures
                traceback.print_exc()
                figures = [{"figure": "failed", "value": 0, "unit": repr(exc)[:200]}]
            results.extend({"workload": name, **figure} for figure in figures)
    finally:
        if postgres:
            postgres.stop()
        if broker:
            broker.stop()
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "versions": {pkg: version(pkg) for pkg in ("aiokafka", "asyncpg", "faust-streaming")},
        "broker": "external" if external else "embedded tansu",
        "results": results,
    }
    return report


def _print_table(report: dict[str, Any], out: Path) -> None:
    results = report["results"]
    print(
        f"{'workload':<17} {'figure':<42} {'value':>12} {'unit':<10} {'vs baseline':>12} "
        f"{'target':>8}"
    )
    for row in results:
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        target = str(row.get("target", ""))
        print(
            f"{row['workload']:<17} {row['figure']:<42} {row['value']:>12,.1f} "
            f"{row['unit']:<10} {ratio:>12} {target:>8}"
        )
    print(f"written to {out}")


def main() -> None:
    quick = os.environ.get("QUICK", "") not in {"", "0"}
    only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
    if unknown := only - WORKLOADS.keys():
        raise SystemExit(f"BENCH_ONLY: no workload {sorted(unknown)}; there are {list(WORKLOADS)}")
    out = Path(os.environ.get("BENCH_OUT", "bench-results/bench.json"))
    started = time.monotonic()
    # Every workload's brokers, databases and logs go under one directory, removed when
    # all went well: a full run writes gigabytes (Postgres WAL), and runs add up.
    scratch = Path(tempfile.mkdtemp(prefix="redline-bench-run-"))
    tempfile.tempdir = str(scratch)
    try:
        report = asyncio.run(_measure(quick, only))
    except BaseException:
        print(f"the run's data and logs are kept in {scratch}", file=sys.stderr)
        raise
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    _print_table(report, out)
    print(f"took {time.monotonic() - started:.0f} s")
    if any(row["figure"] == "failed" for row in report["results"]):
        print(f"the run's data and logs are kept in {scratch}")
        raise SystemExit("some workloads failed; see above")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
