"""playbooks/benchmark_multinode.yml, run for real: two inventory hosts, one torchrun each, one two-node job.

Both hosts are this machine (ansible_connection=local): there is one provisioned test host, a chroot that shares
this machine's network, so two local "hosts" are what can form a real two-node torchrun job here. Each host runs its
own torchrun with its own node rank, joined through the static rendezvous on 127.0.0.1, on the CPU (gloo). The
one-node run against the provisioned Debian 12 host, with the conda environment's torchrun and dlbench, is
test_validate_and_benchmark_on_provisioned_host.py.
"""

import json
import subprocess
import sys

from ansible_env import ansible_environment
from run_support import validate

from .conftest import REPO, cpu_benchmark_variables


def test_two_hosts_run_one_job_and_rank_zeros_result_is_fetched(ansible_playbook, tmp_path):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[bench]\n"
        f"node-a ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        f"node-b ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    variables = cpu_benchmark_variables(tmp_path)
    variables.update(
        benchmark_multinode_hosts="bench",
        benchmark_multinode_python=sys.executable,
        benchmark_multinode_remote_dir=str(tmp_path / "remote"),
        # the playbook's own window: dlbench run's defaults, no --steps or --warmup, which the two nodes' ranks must
        # agree on (they ended on their own clocks and hung the job until --dist-timeout)
        benchmark_multinode_run_args=["--device", "cpu", "--batch-size", "8", "--no-telemetry", "--dist-timeout", "60"],
    )
    env = ansible_environment(OMP_NUM_THREADS="1")
    done = subprocess.run(
        [
            str(ansible_playbook),
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
    assert result["window"]["decided_by"] == "all ranks" and result["requested"]["steps"] is None
    assert len({rank["steps_timed"] for rank in job["ranks"]}) == 1
