"""A demo feed: realistic, seeded sample cases walked through their lifecycle.

The generator is pure (no I/O, one seeded RNG), so a seed always yields the same data and
the unit tests can check it without a database. `run_demo` paces it into a Registry with
idempotency keys derived from the seed, so a rerun on the same day writes nothing twice.

A development tool beside tests/, not part of the product: the wheel's package list and
the Dockerfile leave it out, so a production install has no demo. It runs from a source
checkout (`make run`, or `python -m services.entrypoints.cli demo` from its root).

By job: the sample data (samples), the generator (generator) and the paced feed (feed);
this package re-exports what its callers use (the CLI and the tests).
"""

from __future__ import annotations

from demo.feed import DemoStats, describe_facts, plan_steps, run_demo, sign_off_jointly
from demo.generator import DemoGenerator
from demo.samples import SCENARIOS

__all__ = [
    "SCENARIOS",
    "DemoGenerator",
    "DemoStats",
    "describe_facts",
    "plan_steps",
    "run_demo",
    "sign_off_jointly",
]
