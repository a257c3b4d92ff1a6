"""Where the expensive test artefacts are kept: the debootstrapped Debian trees, the image base, buildah's layer
storage and the Ansible tests' torch wheels.

Outside the clone, so that a fresh clone, a second worktree or a CI run on the same machine reuses them:
DLBENCH_TEST_CACHE if set, else ${XDG_CACHE_HOME:-~/.cache}/dlbench-test (the XDG Base Directory specification's
place for non-essential cached data). Every entry is keyed by what built it, so a stale one is never used, and
built under a lock, so that two test sessions can share the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


def cache_root() -> Path:
    configured = os.environ.get("DLBENCH_TEST_CACHE")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "dlbench-test"


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock on PATH (created if missing) for the block: a second session building the same
    entry waits here, then finds it complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def checkout_build(root: Path):
    """Hold the lock of the checkout at ROOT's in-tree builds for the block. pip builds a local directory in place
    (setuptools writes ROOT/build/ and ROOT/dlbench.egg-info/, and each wheel build removes build/bdist.*/wheel when
    done), so two builds of one checkout at once, in parallel test processes (`pip wheel`, `pip install`,
    `make dist`), can take each other's files away or pack half-written ones. The lock lives in build/, which only
    such builds write."""
    return locked(Path(root) / "build" / "checkout-build.lock")
