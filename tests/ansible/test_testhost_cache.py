"""The test host's cache entry (tests/ansible/testhost.py): named by what builds it, and never left half-built, or with
a live /proc inside it, by a build that was cut off. Needs no test host: fast tier."""

import os
import subprocess
import types

import pytest

from . import testhost


def test_the_key_follows_the_base_the_packages_and_the_building_code(monkeypatch, tmp_path):
    base = tmp_path / "minbase"
    key = testhost.cache_key(base)
    assert key == testhost.cache_key(base) and key != testhost.cache_key(tmp_path / "another-minbase")
    monkeypatch.setattr(testhost, "PACKAGES", [*testhost.PACKAGES, "htop"])
    assert testhost.cache_key(base) != key
    monkeypatch.undo()

    def _build(base, entry, progress):  # another recipe: no apt-get clean
        pass

    monkeypatch.setattr(testhost, "_build", _build)
    assert testhost.cache_key(base) != key


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting /proc needs root, as the test host does")
def test_a_build_cut_off_with_proc_mounted_is_removed_before_the_next(tmp_path):
    entry = tmp_path / "ansible-testhost" / "0123456789abcdef"
    killed = entry.with_name(f"{entry.name}.building-deadbeef")  # what SIGKILL during apt-get leaves
    (killed / "root" / "proc").mkdir(parents=True)
    (killed / "root" / "etc").mkdir()
    subprocess.run(["mount", "-t", "proc", "proc", str(killed / "root" / "proc")], check=True)
    (entry / "root").mkdir(parents=True)  # an entry without `complete`, from before builds were renamed into place
    other = entry.with_name(f"{'f' * 16}.building-0000beef")  # another entry's build, under its own lock
    other.mkdir()
    try:
        assert testhost.mounts_under(killed)
        testhost._remove_unfinished(entry)
        assert not killed.exists() and not entry.exists() and other.exists()
        assert testhost.mounts_under(tmp_path) == []
        assert os.path.exists("/proc/self/status")  # the host's /proc untouched
    finally:
        for point in testhost.mounts_under(tmp_path):
            subprocess.run(["umount", "-l", point], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting an overlay and /proc needs root, as the test host does")
def test_a_copy_of_a_host_starts_from_what_the_host_left(tmp_path):
    """A provisioned host's layers (tests/ansible/conftest.py first_provisioning): a copy over them sees the files the
    host wrote and not those it removed (an overlay whiteout in a lower layer), and what the copy changes stays in it."""
    tree = tmp_path / "tree"  # the cached tree, in miniature
    for directory in ("etc", "proc", "srv"):
        (tree / directory).mkdir(parents=True)
    (tree / "srv" / "kept").write_text("from the tree\n")
    (tree / "srv" / "removed").write_text("from the tree\n")
    first = testhost.Host(None, tmp_path / "first", lower=[tree])
    with first.mounted():
        first.path("/srv/written").write_text("by the first host\n")
        first.path("/srv/removed").unlink()
    with testhost.Host(None, tmp_path / "copy", lower=first.layers()) as copy:
        assert sorted(p.name for p in copy.path("/srv").iterdir()) == ["kept", "written"]
        copy.path("/srv/written").write_text("by the copy\n")
        copy.path("/srv/kept").unlink()
    with testhost.Host(None, tmp_path / "another-copy", lower=first.layers()) as another:
        assert another.path("/srv/written").read_text() == "by the first host\n" and another.path("/srv/kept").exists()
    assert (tree / "srv" / "removed").exists()  # the tree itself untouched
    assert testhost.mounts_under(tmp_path) == []


def test_the_session_directory_is_the_parent_only_in_an_xdist_worker(monkeypatch, tmp_path):
    """tests/ansible/conftest.py session_shared_dir: an xdist worker's base temporary directory is popen-gwN inside
    the session's; a pytest that a test starts inherits PYTEST_XDIST_WORKER but is no worker, and must keep its own
    directory rather than share /tmp/pytest-of-USER with every other session."""
    from .conftest import session_shared_dir

    class Factory:
        def __init__(self, base):
            self.base = base

        def getbasetemp(self):
            return self.base

    session = tmp_path / "pytest-7"
    worker = types.SimpleNamespace(workerinput={"workerid": "gw1"})
    assert session_shared_dir(Factory(session / "popen-gw1"), worker) == session
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")  # what a nested pytest inherits
    assert session_shared_dir(Factory(session), types.SimpleNamespace()) == session


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting an overlay and /proc needs root, as the test host does")
def test_a_first_run_killed_with_its_host_mounted_is_made_again_by_the_next_process(tmp_path):
    """tests/ansible/conftest.py build_once: the process making the first provisioning run was killed (its xdist
    worker crashed), leaving the host's overlay and its /proc mounted and no `complete`; the next process to ask
    unmounts and removes that, and makes the run itself, once."""
    from .conftest import build_once

    directory = tmp_path / "first-provisioning"
    tree = tmp_path / "tree"
    (tree / "proc").mkdir(parents=True)
    (tree / "etc").mkdir()
    killed = testhost.Host(None, directory / "host", lower=[tree])
    killed.mount()  # and never unmounted: SIGKILL
    assert testhost.mounts_under(directory)
    made = []

    def build(out):
        made.append(out)
        (out / "result.json").write_text("{}")

    try:
        assert build_once(directory, build) == directory
        assert build_once(directory, build) == directory
        assert made == [directory]
        assert sorted(path.name for path in directory.iterdir()) == ["complete", "result.json"]
        assert testhost.mounts_under(tmp_path) == []
        assert os.path.exists("/proc/self/status")  # the host's /proc untouched
    finally:
        for point in testhost.mounts_under(tmp_path):
            subprocess.run(["umount", "-l", point], check=False)
