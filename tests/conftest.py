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
