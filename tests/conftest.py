import json
import os
import subprocess
import sys

import pytest


def run_dlbench(*args, timeout=300, **kwargs):
    """`dlbench ...` as a user runs it: a separate process, so exit codes and stderr are the real ones."""
    return subprocess.run([sys.executable, "-m", "dlbench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


@pytest.fixture
def dlbench_cli():
    return run_dlbench


@pytest.fixture
def nonblocking_stdin():
    """Standard input left non-blocking, as CI's was after some child process set O_NONBLOCK on the shared
    /dev/null that pytest puts on fd 0. ansible-playbook refuses to start on an inherited non-blocking stdin
    ("Ansible requires blocking IO on stdin/stdout/stderr"), so every test that starts Ansible gives it its own
    stdin=subprocess.DEVNULL."""
    was_blocking = os.get_blocking(0)
    os.set_blocking(0, False)
    yield
    os.set_blocking(0, was_blocking)


@pytest.fixture(scope="session")
def cpu_images(tmp_path_factory):
    """Both images of the CPU variant, built once per session with buildah (tests/images_support.py): the image
    tests run inside them, the container check's test loads the pytorch image into a Docker Engine."""
    from images_support import build_cpu_images

    yield from build_cpu_images(tmp_path_factory)


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory):
    """One `dlbench run` on the CPU as a user starts it, writing its result (--output) with telemetry: the tests of
    the written document, its telemetry window and its schema each check their part of this one run rather than
    starting a run each (seconds apiece, most of it start-up)."""
    out_dir = tmp_path_factory.mktemp("cli-run")
    output = out_dir / "result.json"
    process = run_dlbench("run", "cifar-cnn", "--device", "cpu", "--steps", 3, "--warmup", 1, "--batch-size", 8,
                          "--telemetry-interval", "0.1", "--output", output)
    return CliRun(process, output)


class CliRun:
    def __init__(self, process, output):
        self.process, self.output = process, output

    def result(self):
        assert self.process.returncode == 0, self.process.stderr
        return json.loads(self.output.read_text())
