"""The Python that runs Ansible's modules on the test hosts: without the machine's PYTHONUNBUFFERED or the test
session's malloc settings, and with the test host's cache of zipimport's compiled code (ansible_env.py,
zipimport_code_cache.py: each says why)."""

import subprocess
import sys
import zipfile

import pytest

from ansible_env import ansible_environment
from conftest import MALLOC_TUNABLES

from .conftest import Playbook
from .testhost import ZIPIMPORT_CODE_CACHE

PLAY = """
- name: Run two modules, the second twice
  hosts: all
  gather_facts: false
  tasks:
    - name: Keep the environment the module's Python was given, which its commands inherit
      ansible.builtin.shell: env > /tmp/module-environment
      changed_when: false
    - name: Stat a file
      ansible.builtin.stat:
        path: /etc/hostname
      loop: [1, 2]
"""


def test_ansible_commands_do_not_hand_the_machines_unbuffered_python_to_the_hosts(monkeypatch):
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    monkeypatch.setenv("GLIBC_TUNABLES", MALLOC_TUNABLES)
    monkeypatch.setenv("DLBENCH_SOME_SETTING", "kept")
    environment = ansible_environment(OMP_NUM_THREADS="1")
    assert "PYTHONUNBUFFERED" not in environment and "GLIBC_TUNABLES" not in environment
    assert environment["DLBENCH_SOME_SETTING"] == "kept" and environment["OMP_NUM_THREADS"] == "1"
    assert environment["ANSIBLE_CONFIG"].endswith("/ansible.cfg")


def _import_from_zip(cache, archive, *flags, show="zipped.where.__code__.co_filename"):
    """In a fresh Python (with FLAGS) with the cache loaded (its folder CACHE), import a module from ARCHIVE; return
    what SHOW evaluates to there."""
    program = (
        f"import sys; sys.path.insert(0, {str(ZIPIMPORT_CODE_CACHE.parent)!r}); import zipimport_code_cache as z; "
        f"z.FOLDER = {str(cache)!r}; sys.path.insert(0, {str(archive)!r}); import zipped; print({show})"
    )
    done = subprocess.run([sys.executable, *flags, "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.strip()


ZIPPED = """
def where():
    return 1


def asserts():
    try:
        assert False
    except AssertionError:
        return "kept"
    return "left out"
"""


def _zips(tmp_path):
    archives = [tmp_path / "first.zip", tmp_path / "second.zip"]  # as two tasks' AnsiballZ zips
    for archive in archives:
        with zipfile.ZipFile(archive, "w") as out:
            out.writestr("zipped.py", ZIPPED)
    return archives


def test_the_cache_compiles_a_zipped_module_once_and_names_the_zip_it_came_from(tmp_path):
    cache = tmp_path / "cache"
    archives = _zips(tmp_path)
    assert _import_from_zip(cache, archives[0]) == str(archives[0] / "zipped.py")
    (entry,) = cache.iterdir()
    compiled = entry.stat().st_mtime_ns
    assert _import_from_zip(cache, archives[1]) == str(archives[1] / "zipped.py")
    assert list(cache.iterdir()) == [entry] and entry.stat().st_mtime_ns == compiled  # read, not written again


def test_the_cache_keeps_code_compiled_with_and_without_optimization_apart(tmp_path):
    cache = tmp_path / "cache"
    archives = _zips(tmp_path)
    assert _import_from_zip(cache, archives[0], "-O", show="zipped.asserts()") == "left out"
    assert _import_from_zip(cache, archives[1], show="zipped.asserts()") == "kept"
    assert len(list(cache.iterdir())) == 2


@pytest.mark.integration
def test_modules_on_the_test_host_run_without_pythonunbuffered_and_reuse_their_compiled_code(
    fresh_host, tmp_path, monkeypatch
):
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")  # as CI machines set it
    monkeypatch.setenv("GLIBC_TUNABLES", MALLOC_TUNABLES)  # as tests/conftest.py sets it
    play = tmp_path / "modules.yml"
    play.write_text(PLAY)
    playbook = Playbook(fresh_host, tmp_path / "ansible", {})
    first = playbook.run(playbook=str(play))
    assert first.rc == 0, first.tail()
    given = {line.split("=", 1)[0] for line in fresh_host.path("/tmp/module-environment").read_text().splitlines()}
    assert "PATH" in given and "PYTHONUNBUFFERED" not in given and "GLIBC_TUNABLES" not in given
    cache = fresh_host.path("/var/cache/zipimport-code")
    compiled = {entry.name: entry.stat().st_mtime_ns for entry in cache.iterdir()}
    assert len(compiled) > 10  # Ansible's module_utils, compiled by the first task
    second = playbook.run(playbook=str(play))
    assert second.rc == 0, second.tail()
    assert {entry.name: entry.stat().st_mtime_ns for entry in cache.iterdir()} == compiled
