"""`make chaos` runs every attack the README's security section lists, by its proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.attacks import README, ROOT, attacks

MAKEFILE = ROOT / "Makefile"


def test_every_security_bullet_names_a_proof_that_exists() -> None:
    listed = attacks(README.read_text(encoding="utf-8"))
    assert len(listed) >= 11
    for attack in listed:
        files = [arg.split("::")[0] for arg in attack.pytest_args if arg.endswith(".py")]
        assert files, attack.title
        missing = [name for name in files if not (ROOT / name).is_file()]
        assert missing == [], attack.title


def test_a_bullet_without_a_proof_is_refused() -> None:
    readme = (
        "## Security: the attacks, and the tests that try them\n\n"
        "- **Proven.** Proof: `pytest tests/unit/test_models.py`.\n"
        "- **Unproven.** Trust us.\n\n## Next\n"
    )
    with pytest.raises(ValueError, match="Unproven"):
        attacks(readme)


def test_make_chaos_runs_the_attacks() -> None:
    target = MAKEFILE.read_text(encoding="utf-8").split("\nchaos:", 1)[1].split("\n\n", 1)[0]
    assert "-m tests.chaos.attacks" in target
    assert Path(ROOT / "tests" / "chaos" / "attacks.py").is_file()
