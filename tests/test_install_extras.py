"""An exporter host installs dlbench without PyTorch; `dlbench run` then says how to get it.

The fresh-venv test installs this checkout for real with pip (base dependencies only, from the package index) and
runs the installed `dlbench` console script; nothing is faked.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from cache_dir import checkout_build

REPO = Path(__file__).resolve().parent.parent

HIDE_TORCH = "import sys; sys.modules['torch'] = None; from dlbench.cli import main; sys.exit(main(sys.argv[1:]))"


def test_base_dependencies_leave_training_to_the_train_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    assert "torch" not in base and "numpy" not in base and "pillow" not in base
    train = " ".join(project["optional-dependencies"]["train"])
    assert "torch" in train and "numpy" in train and "pillow" in train


def test_run_without_torch_is_one_line_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-c", HIDE_TORCH, "run", "resnet18"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "pip install 'dlbench[train]'" in result.stderr


def test_other_commands_work_without_torch():
    for args in (["list"], ["env", "--json"], ["exporter", "--help"]):
        result = subprocess.run(
            [sys.executable, "-c", HIDE_TORCH, *args], capture_output=True, text=True, timeout=60, cwd=REPO
        )
        assert result.returncode == 0, (args, result.stderr)


@pytest.mark.integration
def test_a_fresh_exporter_install_has_no_torch_and_runs_the_exporter(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    with checkout_build(REPO):  # pip builds the checkout in place: one build of it at a time across processes
        pip = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", str(REPO)], capture_output=True, text=True, timeout=600
        )
    assert pip.returncode == 0, pip.stderr[-2000:]
    dlbench = str(venv / "bin" / "dlbench")
    assert subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True).returncode != 0
    assert subprocess.run([dlbench, "exporter", "--help"], capture_output=True, timeout=60).returncode == 0
    run = subprocess.run([dlbench, "run", "resnet18"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "dlbench[train]" in run.stderr and "Traceback" not in run.stderr
