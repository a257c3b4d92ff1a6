"""The Makefile's installs ask pip only for what pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_extra_the_makefile_installs_is_declared_in_pyproject():
    # pip installs `-e '.[name]'` for an undeclared extra anyway, with only a warning ("dlbench 0.1.0 does not
    # provide the extra 'name'"): a newcomer's first `make run` would show it, and what the extra was meant to
    # bring would be missing.
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    requested = {
        extra.strip()
        for extras in re.findall(r"-e '?\.\[([^\]]*)\]", (ROOT / "Makefile").read_text())
        for extra in extras.split(",")
    }
    assert requested, "the Makefile installs no extra: this test no longer reads it right"
    assert (
        requested <= declared
    ), f"the Makefile installs extras pyproject.toml does not declare: {requested - declared}"
