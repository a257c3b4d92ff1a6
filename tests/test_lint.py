"""ruff over the whole tree, with pyproject.toml's [tool.ruff] settings: what a contributor's editor and CI agree on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"  # the `test` extra's, at its pinned version


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_ruff_check_finds_nothing():
    done = _ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_check_still_catches_an_unused_import(tmp_path):
    # the configuration selects rules at all: a file with a finding fails
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    done = _ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad))
    assert done.returncode == 1 and "F401" in done.stdout


def test_the_tree_is_as_ruff_format_leaves_it():
    done = _ruff("format", "--check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr


def test_ruff_skips_the_sdist_tree_that_make_dist_builds_in_the_checkout(tmp_path):
    # python -m build makes dlbench-VERSION/, a copy of the sources, in the checkout and removes it when done: a test
    # process running ruff meanwhile must not read it (or lose its files mid-walk), nor one an interrupted build left
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for folder in ("dlbench-0.1.0/dlbench", "dlbench"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "dlbench-0.1.0" / "dlbench" / "bad.py").write_text("import os\n")
    assert _ruff("check", "--no-cache", ".", cwd=tmp_path).returncode == 0
    (tmp_path / "dlbench" / "bad.py").write_text("import os\n")  # the same file outside it is found
    assert _ruff("check", "--no-cache", ".", cwd=tmp_path).returncode == 1
