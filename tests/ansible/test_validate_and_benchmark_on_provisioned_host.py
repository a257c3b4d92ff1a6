"""playbooks/validate.yml and playbooks/benchmark_multinode.yml run for real against the Debian 12 test host that
setup_gpu.yml provisioned (a copy of the session's first_provisioning, conftest.py: no provisioning of their own), through
the same community.general.chroot connection, calling the dlbench and torch that the conda role installed into the
`dl` environment.

The host's GPU is what setup_gpu.yml's test gives it (conftest.py, standins.py): an HGX H100 on the PCI bus (lspci
reads a dump) and the stand-in driver packages' nvidia-smi. Those packages ship no NVML library (libnvidia-ml.so.1),
and the test does not add a simulated one, so `dlbench validate` meets what a host whose driver does not answer
shows: every GPU check SKIPs naming NVML, the host checks run for real on the CPU. torch is the real CPU wheel, so
the benchmark is one node with one process on gloo. The two-host torchrun job is test_benchmark_multinode.py's.
"""

import json

import junitparser
import jsonschema
import pytest
import yaml

from run_support import validate as validate_result

from .conftest import ANSIBLE_BIN, REPO, Playbook, cpu_benchmark_variables

pytestmark = pytest.mark.integration

STACK = yaml.safe_load((REPO / "stack.yml").read_text())
CONDA_ENV = "/opt/miniforge3/envs/dl"


@pytest.fixture
def host(provisioned_copy):
    return provisioned_copy


def test_validate_playbook_reports_are_fetched_and_summarized(host, tmp_path, nonblocking_stdin):
    # Only the controller's dlbench is set: the host's is the role's default, the conda environment's.
    playbook = Playbook(host, tmp_path, {"validate_controller_dlbench": str(ANSIBLE_BIN / "dlbench")})
    done = playbook.run(playbook="playbooks/validate.yml")
    assert done.rc == 0 and done.failed == 0, done.tail()
    assert "Every host passed" in done.output
    # Fetched next to the inventory (the role's default report folder), named after the inventory host.
    reports = tmp_path / "reports"
    assert sorted(p.name for p in reports.iterdir()) == ["summary.json", "testgpu.json", "testgpu.xml"]
    report = json.loads((reports / "testgpu.json").read_text())
    schema = json.loads((REPO / "dlbench/data/validate-report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    assert report["verdict"] == "PASS", report["verdict"]
    checks = {check["id"]: check for check in report["checks"]}
    # Held to the stack.yml the role copied over, and run on the conda environment's pinned torch (CPU wheel here).
    assert report["options"]["stack"] == "/var/tmp/dlbench-validate/stack.yml"
    assert checks["stack.torch_version"]["verdict"] == "PASS"
    assert report["environment"]["torch"]["version"].startswith(STACK["stack_torch_version"])
    # No NVML library on this host: the GPU checks say so instead of passing.
    assert checks["inventory.gpu_count"]["verdict"] == "SKIP" and "NVML" in checks["inventory.gpu_count"]["detail"]
    assert checks["stack.driver_branch"]["verdict"] == "SKIP"
    # The host checks ran for real, on the CPU at small sizes (measured, no GPU expectation applies: INFO).
    assert checks["compute.matmul_fp32"]["verdict"] == "INFO" and checks["compute.matmul_fp32"]["measured"] > 0
    assert checks["training.smoke"]["measured"] > 0
    assert checks["interconnect.allreduce_correct"]["verdict"] == "PASS"
    # The JUnit file: one test case per check, the SKIPs skipped.
    cases = [case for suite in junitparser.JUnitXml.fromfile(str(reports / "testgpu.xml")) for case in suite]
    assert len(cases) == len(report["checks"])
    skipped = [case for case in cases if case.result and isinstance(case.result[0], junitparser.Skipped)]
    assert len(skipped) == report["counts"]["SKIP"] > 0
    summary = json.loads((reports / "summary.json").read_text())
    [summarized] = summary["hosts"]
    assert summarized["report"].endswith("testgpu.json") and summarized["verdict"] == report["verdict"]
    assert summary["outliers"] == []


def test_benchmark_multinode_playbook_trains_with_the_conda_environments_torchrun(host, tmp_path, nonblocking_stdin):
    variables = cpu_benchmark_variables(tmp_path)  # the role's default Python: the conda environment's
    playbook = Playbook(host, tmp_path, variables)
    done = playbook.run(playbook="playbooks/benchmark_multinode.yml")
    assert done.rc == 0 and done.failed == 0, done.tail()
    result = json.loads((tmp_path / "fetched" / "mnist-mlp-1nodes.json").read_text())
    validate_result(result)
    assert result["status"] == "completed", result["error"]
    job = result["distributed"]
    assert (job["world_size"], job["nodes"], job["processes_per_node"], job["backend"]) == (1, 1, 1, "gloo")
    # Ran inside the host (its Python, not this machine's) on the pinned torch, which on this host only the conda
    # environment holds: the playbook's default Python is that environment's.
    host_python = host.run("/usr/bin/python3", "-c", "import platform; print(platform.python_version())")
    assert result["environment"]["python"] == host_python.stdout.strip()
    assert result["environment"]["torch"]["version"].startswith(STACK["stack_torch_version"])
    assert host.run("/usr/bin/python3", "-c", "import torch", check=False).returncode != 0
    # Rank 0's result stays on the host as well, where the playbook wrote it.
    assert host.path("/tmp/dlbench-multinode/mnist-mlp-1nodes.json").exists()
