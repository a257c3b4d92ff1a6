"""The test cache (tests/cache_dir.py): where it is, and that a second builder waits for the first."""

import subprocess
import sys
import time
from pathlib import Path

from cache_dir import cache_root, checkout_build, locked

TESTS = Path(__file__).resolve().parent


def test_the_cache_is_outside_the_clone_under_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv("DLBENCH_TEST_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "dlbench-test"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "dlbench-test"


def test_dlbench_test_cache_overrides_it(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DLBENCH_TEST_CACHE", str(tmp_path / "ci-cache"))
    assert cache_root() == tmp_path / "ci-cache"


def test_a_second_session_waits_for_the_entry_being_built(tmp_path):
    lock = tmp_path / "entry.lock"
    other = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from cache_dir import locked\n"
        "with locked(__import__('pathlib').Path(sys.argv[2])): print(time.monotonic(), flush=True)\n"
    )
    with locked(lock):
        waiting = subprocess.Popen(
            [sys.executable, "-c", other, str(TESTS), str(lock)], stdout=subprocess.PIPE, text=True
        )
        time.sleep(1.0)
        assert waiting.poll() is None  # still waiting for the lock this session holds
        released = time.monotonic()
    entered = float(waiting.communicate(timeout=60)[0])
    assert waiting.returncode == 0 and entered >= released


def test_builds_of_one_checkout_wait_for_one_another(tmp_path):
    """pip and `make dist` build the checkout in place (tests/cache_dir.py checkout_build): a build in another test
    process holds the checkout's lock, and a second one cannot take it until that build is done."""
    import fcntl

    holder = (
        "import sys; sys.path.insert(0, sys.argv[1]); from cache_dir import checkout_build\n"
        "with checkout_build(sys.argv[2]): print('held', flush=True); sys.stdin.readline()\n"
    )
    building = subprocess.Popen(
        [sys.executable, "-c", holder, str(TESTS), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert building.stdout.readline() == "held\n"
        with open(tmp_path / "build" / "checkout-build.lock") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                raise AssertionError("a second build of the checkout took the lock while the first held it")
            except BlockingIOError:
                pass
        building.stdin.write("\n")
        building.stdin.flush()
        assert building.wait(timeout=30) == 0
        with checkout_build(tmp_path):  # free again once the first build is done
            pass
    finally:
        building.kill()
        building.wait()
