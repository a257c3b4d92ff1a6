"""The test cache (tests/cache_dir.py): where it is, and that a second builder waits for the first."""

import subprocess
import sys
import time
from pathlib import Path

from cache_dir import cache_root, locked

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
