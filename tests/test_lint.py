"""ruff over the whole tree, with pyproject.toml's [tool.ruff] settings: what a contributor's editor and CI agree on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cache_dir import checkout_build

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"  # the `test` extra's, at its pinned version


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _ruff_over_the_tree(*args: str) -> subprocess.CompletedProcess:
    # not while another test process builds the checkout: `make dist` makes its sdist's tree, dlbench-VERSION/ with a
    # copy of every source file, in the checkout and removes it after, and ruff would read it or lose files under it
    with checkout_build(ROOT):
        return _ruff(*args, ".")


def test_ruff_check_finds_nothing():
    done = _ruff_over_the_tree("check", "--no-cache", "--output-format", "concise")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_check_still_catches_an_unused_import(tmp_path):
    # the configuration selects rules at all: a file with a finding fails
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    done = _ruff("check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad))
    assert done.returncode == 1 and "F401" in done.stdout


def test_the_tree_is_as_ruff_format_leaves_it():
    done = _ruff_over_the_tree("format", "--check", "--no-cache")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
