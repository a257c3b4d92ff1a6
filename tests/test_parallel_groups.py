"""The parallel processes keep what must be shared in one process (tests/conftest.py, docs/testing.md).

`make test` and `make test-all` run pytest-xdist with `--dist loadgroup`; tests/conftest.py marks the tests that
share an expensive session fixture, or any module-scoped fixture, with one xdist group each. If the groups were lost
(pytest-xdist#1386: on pytest 9.2 the marks are silently ignored), every process would provision its own Ansible host
and repeat each module's shared torchrun jobs, and nothing would fail. This runs a small project through the same
pytest, plugin, options and hook, and checks where its tests ran and how often the shared fixtures were set up.
"""

import ast
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
pytest_configure = repository.pytest_configure


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

# A process's count of blocks that glibc's malloc gave their own mmap, after a 64 MiB malloc: 1 or more with glibc's
# defaults, 0 where it applies tests/conftest.py's MALLOC_TUNABLES (it ignores a tunable it does not know, silently).
MMAPPED_BLOCKS = """
import ctypes

class Mallinfo2(ctypes.Structure):  # glibc's struct mallinfo2 (malloc.h, glibc 2.33 and later)
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
    )]

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.mallinfo2.restype = Mallinfo2
block = libc.malloc(64 << 20)
print(libc.mallinfo2().hblks)
"""

INDEPENDENT = """
import subprocess
import sys

import pytest
from conftest import record


@pytest.mark.parametrize("n", range(12))
def test_independent(n):
    record("test", "independent")
    # what a process this test starts is told: the compute threads it may use
    threads = subprocess.run(["sh", "-c", "echo ${OMP_NUM_THREADS:-unset}"], capture_output=True, text=True)
    record("threads", threads.stdout.strip())
    # ... and where torch.compile compiles: in that process, without a pool of compile workers
    compile = subprocess.run(["sh", "-c", "echo ${TORCHINDUCTOR_COMPILE_THREADS:-unset}"], capture_output=True, text=True)
    record("compile", compile.stdout.strip())
    # ... and that its malloc keeps what it frees: glibc serves even a 64 MiB block from the heap
    mmapped = subprocess.run([sys.executable, "-c", MMAPPED_BLOCKS], capture_output=True, text=True)
    record("mmapped", mmapped.stdout.strip() or mmapped.stderr.strip().replace(" ", "_"))
""".replace("MMAPPED_BLOCKS", repr(MMAPPED_BLOCKS))

# last by name, so last in collection order
SLOW_BY_MARK = """
import pytest
from conftest import record


@pytest.mark.slow
def test_slow():
    record("test", "slow")
"""


def small_project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_run.py").write_text(MODULE_WITH_A_SHARED_RUN)
    (project / "test_host_a.py").write_text(MODULE_USING_THE_HOST)
    (project / "test_host_b.py").write_text(MODULE_USING_THE_HOST)
    (project / "test_independent.py").write_text(INDEPENDENT)
    (project / "test_zz_slow.py").write_text(SLOW_BY_MARK)
    return project


def run_project(project, record, processes, **env):
    """The project's tests as make test runs them; the lines they recorded, split."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(processes), "--dist", "loadgroup"],
        cwd=project,
        env={"RECORD": str(record), "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [line.split() for line in record.read_text().splitlines()]


def test_tests_sharing_a_fixture_run_in_one_process_and_set_it_up_once(tmp_path):
    lines = run_project(small_project(tmp_path), tmp_path / "record.txt", 3)
    for name in ("shared_run", "provisioned"):
        setups = [worker for kind, what, worker in lines if kind == "setup" and what == name]
        tests = {worker for kind, what, worker in lines if kind == "test" and what == name}
        assert len(setups) == 1, f"{name} set up in {setups}: its tests were spread over processes"
        assert tests == set(setups), f"{name}'s tests ran in {tests}"
    # and the rest is spread: parallel processes, not one
    assert len({worker for *_, worker in lines}) > 1
    # each process a test starts computes on one thread, as torchrun's ranks do, and compiles in itself
    assert {what for kind, what, _ in lines if kind == "threads"} == {"1"}
    assert {what for kind, what, _ in lines if kind == "compile"} == {"1"}
    assert {what for kind, what, _ in lines if kind == "mmapped"} == {"0"}


def test_the_slow_tier_is_handed_out_before_the_fast_one(tmp_path):
    lines = run_project(small_project(tmp_path), tmp_path / "record.txt", 2)
    (worker,) = [worker for kind, what, worker in lines if what == "slow"]
    ran_there = [what for kind, what, where in lines if kind == "test" and where == worker]
    assert "independent" not in ran_there[: ran_there.index("slow")], ran_there


def test_a_thread_count_the_user_set_is_kept(tmp_path):
    lines = run_project(small_project(tmp_path), tmp_path / "record.txt", 2, OMP_NUM_THREADS="3")
    assert {what for kind, what, _ in lines if kind == "threads"} == {"3"}


def test_no_test_asks_for_a_module_scoped_fixture_by_name():
    """request.getfixturevalue("name") hides the fixture from the test's fixturenames, which tests/conftest.py routes
    by: a test asking that way for a module-, class- or package-scoped fixture lands in any process, and the fixture
    (a torchrun job, say) is made again there. Session fixtures are exempt: SHARED_FIXTURE_GROUPS names the ones
    that must not be made twice, and the Ansible host's first run is shared across processes by a lock."""
    scoped, asked = set(), []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in node.decorator_list:
                    keywords = {k.arg: k.value for k in getattr(decorator, "keywords", [])}
                    scope = keywords.get("scope")
                    if isinstance(scope, ast.Constant) and scope.value in ("class", "module", "package"):
                        name = keywords.get("name")
                        scoped.add(name.value if isinstance(name, ast.Constant) else node.name)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getfixturevalue"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                asked.append((node.args[0].value, f"{path.relative_to(ROOT)}:{node.lineno}"))
    assert "scaling_with_default_settings" in scoped and asked, "the scan no longer finds fixtures or requests"
    hidden = [f"{where}: {name}" for name, where in asked if name in scoped]
    assert not hidden, "ask for these in the test's arguments instead:\n" + "\n".join(hidden)
