"""`make chaos`: the full fault plan (CHAOS_PLAN=small for the short one CI runs as a test).

Prints faults injected, events, lost, doubled; writes chaos-results/chaos.json; exits 1 on
any loss or double effect.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.chaos.suite import run


def main() -> int:
    plan = os.environ.get("CHAOS_PLAN", "full")
    outcome = asyncio.run(run(plan))
    summary = outcome.summary()
    out = Path(os.environ.get("CHAOS_OUT", "chaos-results/chaos.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    for name, value in summary.items():
        if name not in {"faults", "examples"}:
            print(f"{name:<42} {value}")
    for example in summary["examples"]:
        print(f"  {example}")
    print(f"written to {out}")
    return 1 if outcome.lost or outcome.doubled or outcome.stray else 0


if __name__ == "__main__":
    sys.exit(main())
