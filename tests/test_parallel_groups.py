"""The parallel processes keep what must be shared in one process (tests/conftest.py, docs/testing.md).

`make test` and `make test-all` run pytest-xdist with `--dist loadgroup`; tests/conftest.py marks the tests that
share an expensive session fixture, or any module-scoped fixture, with one xdist group each. If the groups were lost
(pytest-xdist#1386: on pytest 9.2 the marks are silently ignored), every process would provision its own Ansible host
and repeat each module's shared torchrun jobs, and nothing would fail. This runs a small project through the same
pytest, plugin, options and hook, and checks where its tests ran and how often the shared fixtures were set up.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = f"""
import importlib.util
import os

import pytest

# the repository's own hook, as make test loads it
spec = importlib.util.spec_from_file_location("repository_conftest", {str(ROOT / "tests" / "conftest.py")!r})
repository = importlib.util.module_from_spec(spec)
spec.loader.exec_module(repository)
pytest_collection_modifyitems = repository.pytest_collection_modifyitems


def record(kind, name):
    with open(os.environ["RECORD"], "a") as out:
        out.write(f"{{kind}} {{name}} {{os.environ.get('PYTEST_XDIST_WORKER', 'main')}}\\n")


@pytest.fixture(scope="session")
def provisioned():  # stands for the Ansible host: one of SHARED_FIXTURE_GROUPS
    record("setup", "provisioned")
"""

MODULE_WITH_A_SHARED_RUN = """
import pytest
from conftest import record


@pytest.fixture(scope="module")
def shared_run():
    record("setup", "shared_run")


@pytest.mark.parametrize("n", range(4))
def test_uses_the_run(shared_run, n):
    record("test", "shared_run")
"""

MODULE_USING_THE_HOST = """
import pytest
from conftest import record


@pytest.mark.parametrize("n", range(3))
def test_uses_the_host(provisioned, n):
    record("test", "provisioned")
"""

INDEPENDENT = """
import pytest
from conftest import record


@pytest.mark.parametrize("n", range(12))
def test_independent(n):
    record("test", "independent")
"""


def test_tests_sharing_a_fixture_run_in_one_process_and_set_it_up_once(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_run.py").write_text(MODULE_WITH_A_SHARED_RUN)
    (project / "test_host_a.py").write_text(MODULE_USING_THE_HOST)
    (project / "test_host_b.py").write_text(MODULE_USING_THE_HOST)
    (project / "test_independent.py").write_text(INDEPENDENT)
    record = tmp_path / "record.txt"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "3", "--dist", "loadgroup", "."],
        cwd=project,
        env={"RECORD": str(record), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [line.split() for line in record.read_text().splitlines()]
    for name in ("shared_run", "provisioned"):
        setups = [worker for kind, what, worker in lines if kind == "setup" and what == name]
        tests = {worker for kind, what, worker in lines if kind == "test" and what == name}
        assert len(setups) == 1, f"{name} set up in {setups}: its tests were spread over processes"
        assert tests == set(setups), f"{name}'s tests ran in {tests}"
    # and the rest is spread: parallel processes, not one
    assert len({worker for *_, worker in lines}) > 1
