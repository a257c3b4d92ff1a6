"""docs/architecture.md stays a true map: every path it names exists, and it names every folder of the repository and
every package of dlbench/, so that a moved or added folder fails here until the map says where it went."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"

# a path in backticks: no spaces, at least one slash or a file extension (`dlbench/nvml/`, `stack.yml`)
PATH = re.compile(r"`([\w.-]+(?:/[\w.-]+)*/?)`")


def named_paths(text: str) -> set[str]:
    return {m for m in PATH.findall(text) if "/" in m or re.search(r"\.(py|md|yml|yaml|json|txt|sh|ini|toml)$", m)}


def tracked_top_level_folders() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {f.split("/")[0] for f in files if "/" in f}


def test_every_path_the_map_names_exists():
    text = PAGE.read_text()
    paths = named_paths(text)
    assert len(paths) > 20, "the path pattern no longer finds the map's paths"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == [], f"docs/architecture.md names paths that do not exist: {missing}"


def test_the_map_names_every_folder_and_every_dlbench_package():
    text = PAGE.read_text()
    folders = {f"`{name}/`" for name in tracked_top_level_folders()}
    packages = {f"`dlbench/{p.parent.name}/`" for p in (ROOT / "dlbench").glob("*/__init__.py")}
    packages.add("`dlbench/data/`")
    unnamed = sorted(name for name in folders | packages if name not in text)
    assert unnamed == [], f"docs/architecture.md does not name: {unnamed}"


def test_the_path_pattern_reads_paths_and_skips_commands():
    assert named_paths("`dlbench/nvml/` and `stack.yml`, not `dlbench exporter` nor `make test`") == {
        "dlbench/nvml/",
        "stack.yml",
    }
