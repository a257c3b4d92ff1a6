"""The Makefile: its installs ask pip only for what pyproject.toml declares; its test tiers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from cache_dir import checkout_build

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
    assert requested <= declared, (
        f"the Makefile installs extras pyproject.toml does not declare: {requested - declared}"
    )


# A plugin for the nested pytest: it writes each collected test's tier, after tests/conftest.py has marked the slow ones,
# so that one collection answers for both tiers (each collection imports torch and the test modules).
TIER_LISTING = """
import os

def pytest_collection_finish(session):
    with open(os.environ["TIER_LISTING"], "w", encoding="utf-8") as listing:
        for item in session.items:
            listing.write(("slow " if item.get_closest_marker("slow") else "fast ") + item.nodeid + "\\n")
"""


def _modules_by_tier(tmp_path: Path, *modules: str) -> dict[str, set[str]]:
    """tier ("slow", "fast") -> the modules with at least one test in it, as `pytest -m slow` and `-m "not slow"`
    select them."""
    (tmp_path / "tier_listing.py").write_text(TIER_LISTING)
    listing = tmp_path / "tiers.txt"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "tier_listing"]
        + list(modules),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
            "TIER_LISTING": str(listing),
        },
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tiers: dict[str, set[str]] = {"slow": set(), "fast": set()}
    for line in listing.read_text().splitlines():
        tier, nodeid = line.split(" ", 1)
        tiers[tier].add(nodeid.split("::")[0])
    return tiers


def _without_outer_make(environ) -> dict[str, str]:
    """An outer `make test VAR=...` passes its variables on in MAKEFLAGS: none of them reaches these makes."""
    return {key: value for key, value in environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


def test_the_slow_tier_is_what_uses_the_image_build_dockerd_or_ansible_playbook(tmp_path):
    # one module of each kind: by fixture (cpu_images, dockerd, ansible_playbook, the Ansible test host through
    # fresh_host), and three that stay fast although they start real processes (torchrun ranks, Prometheus) or live
    # beside the playbook tests (the roles' PCI id table, read without Ansible or a host)
    modules = [
        "tests/test_images_build.py",
        "tests/test_validate_container.py",
        "tests/test_validate_playbook.py",
        "tests/ansible/test_lint.py",
        "tests/ansible/test_toolkit_pin.py",
        "tests/test_distributed.py",
        "tests/test_dashboards_live.py",
        "tests/ansible/test_gpu_generations.py",
    ]
    # test_distributed.py's harness benchmark, a doc command that trains, carries the mark itself
    tiers = _modules_by_tier(tmp_path, *modules)
    assert tiers["slow"] == {*modules[:5], "tests/test_distributed.py"}
    # test_validate_container.py keeps its tests that need no engine in the fast tier, test_lint.py its argument specs,
    # test_distributed.py its torchrun jobs
    assert tiers["fast"] == {
        "tests/test_validate_container.py",
        "tests/ansible/test_lint.py",
        *modules[5:],
    }


def test_make_test_says_why_when_pytest_args_select_only_slow_tests():
    # pytest exits 5 when it runs no test; `make test` adds the reason and keeps the failure
    venv = Path(sys.prefix)
    done = subprocess.run(
        [
            "make",
            "-C",
            str(ROOT),
            "--no-print-directory",
            "-o",
            "torch",
            "-o",
            "test-deps",
            "-o",
            f"{venv}/.installed-test",
            "test",
            f"VENV={venv}",
            "PYTEST_ARGS=-p no:cacheprovider tests/ansible/test_setup_gpu.py",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_without_outer_make(os.environ),
    )
    assert done.returncode != 0
    assert "make test: no test of the fast tier matches PYTEST_ARGS; make test-all" in done.stderr


def test_make_dist_builds_the_wheel_and_sdist_the_playbooks_install(tmp_path):
    # conda_dlbench_wheel / monitoring_dlbench_wheel name this wheel; the roles install it with its `train` extra
    venv, dist = Path(sys.prefix), tmp_path / "dist"
    with checkout_build(ROOT):  # the sdist's egg_info writes dlbench.egg-info/ in the checkout: one build at a time
        done = subprocess.run(
            ["make", "-C", str(ROOT), "--no-print-directory", "dist", f"VENV={venv}", f"DIST={dist}"],
            capture_output=True,
            text=True,
            timeout=600,
            env={key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS")},
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert sorted(path.name for path in dist.iterdir()) == [
        f"dlbench-{version}-py3-none-any.whl",
        f"dlbench-{version}.tar.gz",
    ]
    with zipfile.ZipFile(dist / f"dlbench-{version}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        entry_points = wheel.read(f"dlbench-{version}.dist-info/entry_points.txt").decode()
        metadata = wheel.read(f"dlbench-{version}.dist-info/METADATA").decode()
    assert {"dlbench/cli.py", "dlbench/data/result.schema.json", "dlbench/data/gpu_peaks.json"} <= names
    assert "dlbench = dlbench.cli:main" in entry_points
    assert "Provides-Extra: train" in metadata
    with tarfile.open(dist / f"dlbench-{version}.tar.gz") as sdist:
        members = {Path(name).relative_to(f"dlbench-{version}").as_posix() for name in sdist.getnames()[1:]}
    assert {"pyproject.toml", "README.md", "dlbench/cli.py", "dlbench/data/result.schema.json"} <= members


@pytest.mark.parametrize("target, tier", [("test", "fast"), ("test-all", "all"), ("test-deps", "all")])
def test_each_target_installs_the_system_tools_of_its_tier(target, tier):
    done = subprocess.run(
        ["make", "-C", str(ROOT), "--no-print-directory", "-n", target],
        capture_output=True,
        text=True,
        timeout=120,
        env=_without_outer_make(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert f"./scripts/install-test-deps.sh {tier}\n" in done.stdout


def test_the_fast_tier_needs_no_image_build_ansible_or_docker_engine_tools(tmp_path):
    # a PATH with the fast tier's tools (the machine's own) and neither buildah, debootstrap, gpg, dockerd nor
    # apt-get: `fast` finds nothing to install; `all` wants the slow tier's packages and fails on the missing apt-get
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "id", "promtool", "prometheus-pushgateway", "openssl", "chromium", "systemd-analyze"):
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed here (scripts/install-test-deps.sh fast installs it)")
        (tools / tool).symlink_to(found)
    script = ROOT / "scripts" / "install-test-deps.sh"
    env = {"PATH": str(tools), "HOME": str(tmp_path)}
    fast = subprocess.run(
        [str(tools / "bash"), str(script), "fast"], capture_output=True, text=True, env=env, timeout=60
    )
    assert (fast.returncode, fast.stdout) == (0, ""), fast.stderr
    every = subprocess.run(
        [str(tools / "bash"), str(script), "all"], capture_output=True, text=True, env=env, timeout=60
    )
    assert every.returncode != 0
    assert "installing test dependencies: buildah debootstrap gnupg docker.io" in every.stdout
    wrong = subprocess.run(
        [str(tools / "bash"), str(script), "slow"], capture_output=True, text=True, env=env, timeout=60
    )
    assert (wrong.returncode, wrong.stderr) == (
        2,
        "install-test-deps: error: the tier must be fast or all, not 'slow'\n",
    )


# A make command the code names to its reader: in backticks or quotes (`make run`, "make -C images lock ..."), or on
# a Makefile's synopsis line ("#   make -C images build ..."); prose ("make sure") is neither.
NAMED_MAKE = re.compile(r"(?:[`\"']|^#\s+)make((?: -C \S+)?) ([a-z.][\w./-]*)", re.MULTILINE)


def _make_targets(directory: Path) -> set[str]:
    """The targets a Makefile defines, from make's own database (-p; -q runs nothing, -R -r: no built-in rules)."""
    done = subprocess.run(
        ["make", "-C", str(directory), "-pRrq", ":"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_without_outer_make(os.environ),
    )
    lines = done.stdout.split("\n# Files\n", 1)[-1].splitlines()
    return {
        match.group(1)
        for previous, line in zip([""] + lines, lines)
        if previous != "# Not a target:" and (match := re.match(r"([^\s#:=][^:=]*?):(?!=)", line))
    }


def _named_make_commands() -> list[tuple[str, str, str]]:
    sources = [
        ROOT / "Makefile",
        *(path for top in ("dlbench", "images", "scripts") for path in (ROOT / top).rglob("*")),
    ]
    found = []
    for path in sources:
        if not path.is_file() or path.suffix not in (".py", ".sh", "") or "__pycache__" in path.parts:
            continue
        for match in NAMED_MAKE.finditer(path.read_text(errors="replace")):
            directory = match.group(1).removeprefix(" -C ").strip()
            found.append((str(path.relative_to(ROOT)), directory, match.group(2).rstrip(".:")))
    return found


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_every_make_target_the_code_names_exists():
    commands = _named_make_commands()
    assert {("images/Makefile", "images", "build"), ("images/stack.py", "images", "lock")} <= set(commands), (
        "the scan no longer finds the make commands the code names"
    )
    targets = {directory: _make_targets(ROOT / directory) for directory in {d for _, d, _ in commands}}
    assert {"run", "test", "test-all", "dist", ".venv/.installed-run"} <= targets[""]
    unknown = [
        f"{where}: make {f'-C {d} ' if d else ''}{target}" for where, d, target in commands if target not in targets[d]
    ]
    assert not unknown, "messages name make targets that do not exist:\n" + "\n".join(unknown)
