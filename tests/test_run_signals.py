"""Stopping a run from outside, as Slurm's scancel and a terminal do: a real process group with real DataLoader
workers, real signals to the whole group, and the result file it must leave."""

import json
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest

from dlbench.train.observers import RunObserver
from prometheus_server import free_port, http_get, wait_for
from run_support import validate


@pytest.fixture
def cifar_dir(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "cifar"
    data.mkdir()
    batch = {b"data": rng.integers(0, 256, (64, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(64)]}
    (data / "data_batch_1").write_bytes(pickle.dumps(batch))
    return data


def start_run(data, out, port):
    # its own session: a process group of its own, like a Slurm job step, so killpg reaches it and its workers only
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlbench",
            "run",
            "cifar-cnn",
            "--device",
            "cpu",
            "--data",
            str(data),
            "--workers",
            "2",
            "--batch-size",
            "4",
            "--warmup",
            "1",
            "--duration",
            "300",
            "--output",
            str(out),
            "--metrics-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_timed_steps(proc, port):
    """The run's own /health counts timed steps: signal it once it is timing (a loaded machine takes a while)."""

    def timing():
        assert proc.poll() is None, proc.communicate()
        status, body = http_get(f"http://127.0.0.1:{port}/health")
        return status == 200 and json.loads(body)["steps"] >= 2

    wait_for(timing, 240, "the run's timed steps")


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_process_group_writes_an_interrupted_result(tmp_path, cifar_dir, signum, code):
    out, port = tmp_path / "r.json", free_port()
    proc = start_run(cifar_dir, out, port)
    try:
        wait_for_timed_steps(proc, port)
        workers = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) >= 3  # the run and its two DataLoader workers, all in the group the signal goes to
        os.killpg(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    name = signal.Signals(signum).name
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "exited unexpectedly" not in stderr
    assert f"interrupted by {name}" in stderr
    result = json.loads(out.read_text())
    validate(result)
    assert result["status"] == "interrupted" and result["interrupted_by"] == name
    assert name in result["error"]


class SecondSignalWhileEnding(RunObserver):
    """The first Ctrl-C at timed step 3; a second one (a user pressing it twice) while the run finishes up."""

    def on_step(self, step, step_seconds, samples, loss):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    def on_timed_end(self, timed_seconds, samples):
        os.kill(os.getpid(), signal.SIGINT)  # delivered at the next bytecode, as a real second Ctrl-C would be


def test_a_second_ctrl_c_while_the_run_ends_keeps_the_measured_steps(tmp_path):
    from dlbench.train import interrupt
    from dlbench.train.runner import Run, RunConfig

    saved = {signum: signal.getsignal(signum) for signum in interrupt.HANDLED}
    interrupt.install()
    out = tmp_path / "r.json"
    try:
        config = RunConfig("mnist-mlp", device="cpu", steps=1000, warmup=1, output=str(out))
        run = Run(config, [SecondSignalWhileEnding()])
        result = run.execute()
        run.close()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    written = json.loads(out.read_text())
    validate(written)
    assert written["status"] == "interrupted" and written["error"].endswith("after 3 timed steps")
    assert written["metrics"]["steps_timed"] == 3 and written["metrics"]["throughput"] is not None
    assert result["metrics"] == written["metrics"]


# A DataLoader worker's resource sharer (CPython's multiprocessing.resource_sharer) whose reader connects and leaves
# before the handshake: what the main process does when a signal to the process group interrupts it mid-batch.
READER_LEAVES = """
import os, socket, sys, time
from multiprocessing import resource_sharer
from dlbench.train.interrupt import quiet_in_worker

if sys.argv[1] == "worker":
    quiet_in_worker()
read_end, _ = os.pipe()
shared = resource_sharer.DupFd(read_end)  # starts the sharer's thread, as a worker handing over a batch does
reader = socket.socket(socket.AF_UNIX)
reader.connect(resource_sharer._resource_sharer._address)
reader.close()  # gone before the handshake
time.sleep(1)
print("done")
"""


@pytest.mark.parametrize("process", ["plain", "worker"])
def test_a_reader_gone_mid_batch_prints_no_traceback_from_a_worker(process):
    done = subprocess.run([sys.executable, "-c", READER_LEAVES, process], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "done", done.stderr
    if process == "plain":  # what a worker printed before quiet_in_worker silenced it: the case is real
        assert "Traceback" in done.stderr and "resource_sharer.py" in done.stderr  # EOFError or BrokenPipeError
    else:
        assert done.stderr == ""
