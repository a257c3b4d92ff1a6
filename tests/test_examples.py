"""The multi-node examples: the Slurm batch script run for real (Slurm's two commands stood in), and the Kubeflow
PyTorchJob manifest checked against the training operator's API."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from dlbench.cli import build_parser
from dlbench.workloads import get_workload
from prometheus_server import free_port
from run_support import validate

ROOT = Path(__file__).resolve().parents[1]
SBATCH = ROOT / "examples" / "slurm" / "dlbench.sbatch"
PYTORCHJOB = ROOT / "examples" / "kubernetes" / "pytorchjob.yaml"

# Stand-ins for the two Slurm commands the script calls, on a machine without slurmctld:
# - `scontrol show hostnames NODELIST` prints one host name per line (slurm.schedmd.com/scontrol.html, "hostnames");
#   here the allocation is this machine.
# - `srun [options] COMMAND...` starts COMMAND once per task; with --ntasks-per-node=1 on one node, once
#   (slurm.schedmd.com/srun.html). Its own options are the leading --flags.
SCONTROL = """#!/bin/sh
[ "$1 $2" = "show hostnames" ] || { echo "scontrol stand-in: only 'show hostnames'" >&2; exit 1; }
echo localhost
"""
SRUN = """#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in --*) shift ;; *) break ;; esac; done
SLURM_PROCID=0 SLURM_NODEID=0 exec "$@"
"""


def test_the_sbatch_script_runs_torchrun_with_the_rendezvous_on_the_first_node(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("scontrol", SCONTROL), ("srun", SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    results = tmp_path / "results"
    env = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        SLURM_JOB_ID="4242",
        SLURM_JOB_NUM_NODES="1",
        SLURM_JOB_NODELIST="node[01]",
        DLBENCH_GPUS_PER_NODE="2",
        DLBENCH_PYTHON=sys.executable,
        DLBENCH_RESULTS=str(results),
        DLBENCH_RDZV_PORT=str(free_port()),
        OMP_NUM_THREADS="1",
        # the script's defaults: no --steps, no --warmup (the ranks must agree on both ends of the window)
        DLBENCH_RUN_ARGS="--device cpu --batch-size 8 --no-telemetry --dist-timeout 60",
    )
    done = subprocess.run(
        ["bash", str(SBATCH), "mnist-mlp"], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((results / "mnist-mlp-4242.json").read_text())
    validate(result)
    assert result["status"] == "completed"
    assert result["distributed"]["world_size"] == 2 and result["distributed"]["parameters_in_sync"] is True


def test_the_sbatch_script_passes_shell_checks():
    done = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    directives = re.findall(r"^#SBATCH (--[a-z-]+)", SBATCH.read_text(), re.MULTILINE)
    assert {"--nodes", "--ntasks-per-node", "--gpus-per-node"} <= set(directives)


# The PyTorchJob API, from the Kubeflow training operator (github.com/kubeflow/training-operator,
# pkg/apis/kubeflow.org/v1/pytorch_types.go, common_types.go and pytorch_validation.go):
SPEC_FIELDS = {"runPolicy", "elasticPolicy", "pytorchReplicaSpecs", "nprocPerNode"}
RUN_POLICY_FIELDS = {
    "cleanPodPolicy",
    "ttlSecondsAfterFinished",
    "activeDeadlineSeconds",
    "backoffLimit",
    "schedulingPolicy",
}
CLEAN_POD_POLICIES = {"All", "Running", "None"}
REPLICA_TYPES = {"Master", "Worker"}
REPLICA_FIELDS = {"replicas", "template", "restartPolicy"}
RESTART_POLICIES = {"Always", "OnFailure", "Never", "ExitCode"}
NPROC_PER_NODE = re.compile(r"^(auto|cpu|gpu|[1-9][0-9]*)$")  # "supported values: [auto, cpu, gpu, int]"
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # ValidateV1PyTorchJob: NameIsDNS1035Label
CONTAINER_NAME = "pytorch"  # PytorchJobDefaultContainerName: every replica needs a container of this name


def test_the_pytorchjob_manifest_satisfies_the_training_operators_api():
    job = yaml.safe_load(PYTORCHJOB.read_text())
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v1", "PyTorchJob")
    assert DNS_1035_LABEL.match(job["metadata"]["name"])
    spec = job["spec"]
    assert set(spec) <= SPEC_FIELDS and "pytorchReplicaSpecs" in spec
    assert isinstance(spec["nprocPerNode"], str) and NPROC_PER_NODE.match(spec["nprocPerNode"])
    assert set(spec["runPolicy"]) <= RUN_POLICY_FIELDS
    assert spec["runPolicy"]["cleanPodPolicy"] in CLEAN_POD_POLICIES
    replicas = spec["pytorchReplicaSpecs"]
    assert set(replicas) == REPLICA_TYPES
    assert replicas["Master"]["replicas"] == 1  # "There must be only 1 master replica"
    for replica in replicas.values():
        assert set(replica) <= REPLICA_FIELDS and replica["restartPolicy"] in RESTART_POLICIES
        pod = replica["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = [c for c in pod["containers"] if c["name"] == CONTAINER_NAME]
        assert container["image"]
        # one GPU per process: the pod's GPUs match the processes per node
        assert str(container["resources"]["limits"]["nvidia.com/gpu"]) == spec["nprocPerNode"]
        # torchrun takes its rendezvous from the operator's PET_* variables; the rest is an ordinary dlbench command
        command = container["command"]
        assert command[:3] == ["torchrun", "-m", "dlbench"]
        args = build_parser().parse_args(command[3:])
        get_workload(args.workload)
        mounts = {mount["name"] for mount in container["volumeMounts"]}
        assert mounts <= {volume["name"] for volume in pod["volumes"]}
        assert any(Path(args.output).is_relative_to(mount["mountPath"]) for mount in container["volumeMounts"])
