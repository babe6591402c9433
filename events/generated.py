"""Files generated from the code (schemas, AsyncAPI, deploy manifests, dashboards, the README's
table of measures): one way to write them, one way to report drift so a test can fail on a
stale file, and one command line for every generator."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Generated:
    root: Path
    files: dict[str, str]  # path relative to root -> content
    trees: tuple[tuple[str, str], ...] = ()  # (folder, glob): any other file there is stale

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


@dataclass(frozen=True)
class Generator:
    """A generator's command: `render` gives every file by path relative to `root`; it
    writes them, or with --check reports drift and says what to run (`fix`)."""

    prog: str
    description: str | None
    root: Path
    render: Callable[[], dict[str, str]]
    _: KW_ONLY
    fix: str
    trees: tuple[tuple[str, str], ...] = ()

    def generated(self, root: Path | None = None) -> Generated:
        return Generated(root or self.root, self.render(), self.trees)

    def check(self, root: Path | None = None) -> list[str]:
        """Problems between what is generated and what is on disk; empty means no drift."""
        return self.generated(root).drift()

    def write(self, root: Path | None = None) -> list[str]:
        """Write every file and delete stale ones; returns what changed."""
        return self.generated(root).write()

    def main(self, argv: list[str] | None = None) -> int:
        """Write the files, or with --check report drift; the exit status."""
        parser = argparse.ArgumentParser(prog=self.prog, description=self.description)
        parser.add_argument("--check", action="store_true", help="report drift, write nothing")
        parser.add_argument("--root", type=Path, default=self.root, help=argparse.SUPPRESS)
        args = parser.parse_args(argv)
        if args.check:
            problems = self.check(args.root)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print(f"run: {self.fix}", file=sys.stderr)
                return 1
            return 0
        for problem in self.write(args.root):
            print(f"updated ({problem})")
        return 0
