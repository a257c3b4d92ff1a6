"""playbooks/benchmark_multinode.yml, run for real: two inventory hosts, one torchrun each, one two-node job.

Both hosts are this machine (ansible_connection=local): the debootstrapped test host is a chroot with no network
between hosts and no torch, so two local "hosts" are what can form a real two-node torchrun job here. Each host runs
its own torchrun with its own node rank, joined through the static rendezvous on 127.0.0.1, on the CPU (gloo).
"""

import json
import os
import subprocess
import sys

from prometheus_server import free_port
from run_support import validate

from .conftest import ANSIBLE_BIN, REPO


def test_two_hosts_run_one_job_and_rank_zeros_result_is_fetched(tmp_path):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[bench]\n"
        f"node-a ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        f"node-b ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    variables = {
        "benchmark_multinode_hosts": "bench",
        "workload": "mnist-mlp",
        "benchmark_multinode_python": sys.executable,
        "benchmark_multinode_nproc_per_node": 1,
        "benchmark_multinode_rdzv_address": "127.0.0.1",
        "benchmark_multinode_rdzv_port": free_port(),
        "benchmark_multinode_run_args": [
            "--device",
            "cpu",
            "--steps",
            "3",
            "--warmup",
            "1",
            "--batch-size",
            "8",
            "--no-telemetry",
            "--dist-timeout",
            "60",
        ],
        "benchmark_multinode_remote_dir": str(tmp_path / "remote"),
        "benchmark_multinode_fetch_dir": str(tmp_path / "fetched"),
        "benchmark_multinode_timeout": 300,
    }
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), NO_COLOR="1", ANSIBLE_NOCOLOR="1", OMP_NUM_THREADS="1"
    )
    done = subprocess.run(
        [
            str(ANSIBLE_BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            json.dumps(variables),
            "playbooks/benchmark_multinode.yml",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    fetched = tmp_path / "fetched" / "mnist-mlp-2nodes.json"
    result = json.loads(fetched.read_text())
    validate(result)
    assert result["status"] == "completed", result["error"]
    job = result["distributed"]
    assert (job["world_size"], job["nodes"], job["processes_per_node"]) == (2, 2, 1)
    assert [(rank["rank"], rank["node_rank"]) for rank in job["ranks"]] == [(0, 0), (1, 1)]
    assert job["parameters_in_sync"] is True
