"""`make chaos`, second half: every attack of the README's security section, run as the
section says to prove it.

The README is the one list: each bullet of "Security: the attacks, and the tests that try
them" names its attack in bold and ends with "Proof: `pytest …`". This runs each proof
command on the real broker and Postgres (the fixtures start them), writes
chaos-results/attacks.json and exits 1 when any attack was not refused as expected.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTION = "## Security: the attacks, and the tests that try them"
_BULLET = re.compile(r"^- \*\*(?P<title>.+?)\*\*(?P<body>.*?)(?=^- \*\*|\Z)", re.M | re.S)
_PROOF = re.compile(r"Proof:\s*`(?P<command>[^`]+)`", re.S)


@dataclass(frozen=True)
class Attack:
    title: str
    pytest_args: tuple[str, ...]


def security_section(readme: str) -> str:
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    return readme[start : end if end >= 0 else len(readme)]


def attacks(readme: str) -> list[Attack]:
    """Each bullet's title and the pytest arguments of its proof command."""
    found = []
    for bullet in _BULLET.finditer(security_section(readme)):
        proof = _PROOF.search(bullet["body"])
        if proof is None:
            raise ValueError(f"README security bullet {bullet['title']!r} names no Proof command")
        words = shlex.split(" ".join(proof["command"].split()))
        while words and words[0] != "pytest":
            words.pop(0)  # ".venv/bin/python -m pytest" and "pytest" alike
        if not words:
            raise ValueError(f"{bullet['title']!r}: its proof is not a pytest command")
        found.append(Attack(" ".join(bullet["title"].split()), tuple(words[1:])))
    return found


def main() -> int:
    results = []
    for attack in attacks(README.read_text(encoding="utf-8")):
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *attack.pytest_args],
            cwd=ROOT,
            check=False,
        )
        results.append(
            {
                "attack": attack.title,
                "command": "pytest " + " ".join(attack.pytest_args),
                "refused_as_expected": run.returncode == 0,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
        print(f"{'ok ' if run.returncode == 0 else 'FAILED'} {attack.title}", flush=True)
    out = Path(os.environ.get("CHAOS_ATTACKS_OUT", "chaos-results/attacks.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written to {out}")
    return 0 if all(r["refused_as_expected"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
