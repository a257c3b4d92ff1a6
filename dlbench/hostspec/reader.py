"""The one way host facts are read: files under a root, directory listings and the output of version commands.

`HostReader()` reads this machine; `RecordedHost(folder)` reads a recorded copy of another machine's files (the
same paths under the folder) and the recorded output of its commands (`commands.json`: the command line, joined by
spaces, to its stdout, or to {"error": "..."} for a command that failed there). Everything above this module reads
through these methods, so a recording exercises exactly the code a real host does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path


class Unanswered(Exception):
    """The host cannot answer this (not installed, no permission): the reason becomes a SKIP."""


class HostReader:
    def __init__(self, root: str | os.PathLike = "/", python: str | None = None):
        self.root = Path(root)
        self.python = python  # the Python environment whose torch counts, when not the one dlbench runs in

    def _path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str:
        return self._read(path, lambda file: file.read_text(errors="replace"))

    def read_bytes(self, path: str) -> bytes:
        """A binary file (a PCI function's config space), as `read` reads text."""
        return self._read(path, Path.read_bytes)

    def _read(self, path: str, how):
        try:
            return how(self._path(path))
        except FileNotFoundError:
            raise Unanswered(f"{path} does not exist") from None
        except PermissionError:
            raise Unanswered(f"no permission to read {path}") from None
        except OSError as error:  # sysfs answers EINVAL for e.g. the speed of a link that is down
            raise Unanswered(f"{path}: {error.strerror}") from None

    def resolve(self, path: str) -> str:
        """Where a sysfs link leads, as the host names it: /sys/bus/pci/devices/0000:18:00.0 ->
        /sys/devices/pci0000:17/0000:17:01.0/0000:18:00.0 (the device's real parent chain)."""
        real = Path(os.path.realpath(self._path(path)))
        root = Path(os.path.realpath(self.root))
        try:
            return "/" + str(real.relative_to(root))
        except ValueError:
            raise Unanswered(f"{path} leads outside the host's root") from None

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self._path(path)))
        except OSError:
            return []

    def exists(self, path: str) -> bool:
        return os.path.lexists(self._path(path))

    def run(self, *argv: str) -> str:
        """stdout of a version command; Unanswered when it is not installed or fails."""
        if shutil.which(argv[0]) is None:
            raise Unanswered(f"{argv[0]} is not installed")
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise Unanswered(f"{' '.join(argv)}: {error}") from None
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            raise Unanswered(f"{' '.join(argv)} failed: {last[-1] if last else f'exit {done.returncode}'}")
        return done.stdout

    def torch_build(self) -> dict:
        """torch's version, CUDA build and cuDNN wheel, as `dlbench env` reads them (without importing torch), of
        this environment or of `python`'s."""
        from dlbench import installed_torch

        if self.python is None:
            return installed_torch.collect()
        try:
            return json.loads(self.run(self.python, installed_torch.__file__))
        except ValueError:
            raise Unanswered(f"{self.python} {installed_torch.__file__} printed no JSON") from None


class RecordedHost(HostReader):
    """A recorded machine: its files under `folder`, its commands' output in `folder/commands.json`, its Python
    packages in `folder/python.json`."""

    def __init__(self, folder: str | os.PathLike):
        super().__init__(folder)
        recorded = Path(folder) / "commands.json"
        self.commands = json.loads(recorded.read_text()) if recorded.is_file() else {}

    def run(self, *argv: str) -> str:
        answer = self.commands.get(" ".join(argv))
        if answer is None:
            raise Unanswered(f"{argv[0]} is not installed")
        if isinstance(answer, dict):
            raise Unanswered(f"{' '.join(argv)} failed: {answer['error']}")
        return answer

    def torch_build(self) -> dict:
        recorded = self.root / "python.json"
        return (
            json.loads(recorded.read_text()) if recorded.is_file() else {"version": None, "cuda": None, "cudnn": None}
        )


RECORDED_HOST_ENV = "DLBENCH_RECORDED_HOST"


def host_reader(python: str | None = None) -> HostReader:
    """This machine's reader.

    TEST-ONLY HOOK: when DLBENCH_RECORDED_HOST names a recorded machine's folder (tests/fixtures/hosts/...), that
    recording is read instead, so the tests can run `dlbench env --spec` as a process against a 512 GB EPYC host
    this machine is not. The only place that reads the variable; never set it in production.
    """
    recorded = os.environ.get(RECORDED_HOST_ENV)
    return RecordedHost(recorded) if recorded else HostReader(python=python)
