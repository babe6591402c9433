"""Files generated from the code (schemas, AsyncAPI, deploy manifests, dashboards): one way
to write them and one way to report drift, so a test can fail on a stale file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Generated:
    root: Path
    files: dict[str, str]  # path relative to root -> content
    trees: tuple[tuple[str, str], ...]  # (folder, glob): any other file there is stale

    def drift(self) -> list[str]:
        """`missing: x`, `drifted: x`, `extra: x`; empty means the files are current."""
        problems = []
        for relative, content in self.files.items():
            path = self.root / relative
            if not path.exists():
                problems.append(f"missing: {relative}")
            elif path.read_text(encoding="utf-8") != content:
                problems.append(f"drifted: {relative}")
        for tree, pattern in self.trees:
            for path in sorted((self.root / tree).rglob(pattern)):
                relative = path.relative_to(self.root).as_posix()
                if relative not in self.files:
                    problems.append(f"extra: {relative}")
        return problems

    def write(self) -> list[str]:
        """Write every file and delete stale ones; returns what changed."""
        changed = self.drift()
        for relative, content in self.files.items():
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        for problem in changed:
            kind, relative = problem.split(": ", 1)
            if kind == "extra":
                (self.root / relative).unlink()
        return changed


def main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str | None,
    default_root: Path,
    generate: Callable[[Path], Generated],
    fix: str,
) -> int:
    """The command line of a generator: write the files, or with --check report drift."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    parser.add_argument("--root", type=Path, default=default_root, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    generated = generate(args.root)
    if args.check:
        problems = generated.drift()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"run: {fix}", file=sys.stderr)
            return 1
        return 0
    for problem in generated.write():
        print(f"updated ({problem})")
    return 0
