"""playbooks/validate.yml run for real by ansible-playbook, over two inventory hosts that are this machine
(connection local, each with its own report folder), with NVML simulated and no GPU for torch.

Two hosts are what this file adds: the fleet summary over more than one report, a failing host failing the play
after every report is fetched, and the two-host all-reduce the hosts run in pairs over gloo on 127.0.0.1 (each
host's validate_pair_address), judged on the control node. The run against a provisioned host (the Debian 12 host of tests/ansible after
setup_gpu.yml, with the conda environment's dlbench the role calls by default) is
tests/ansible/test_validate_and_benchmark_on_provisioned_host.py. Real GPUs are covered by neither.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_env import ansible_environment
from validate_support import PCI_INTEL_VTD, pci_bus

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


def _play(ansible_playbook, tmp_path, nvml_scenario: dict, hosts=(1, 2), variables=()):
    scenario = tmp_path / "nvml.json"
    scenario.write_text(json.dumps(nvml_scenario))
    dlbench = Path(sys.executable).parent / "dlbench"
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[gpu_hosts]\n"
        + "".join(
            f"node{n} ansible_connection=local ansible_python_interpreter={sys.executable} "
            f"validate_remote_dir={tmp_path}/remote{n}\n"
            for n in hosts
        )
        + f"[all:vars]\nvalidate_dlbench={dlbench}\nvalidate_controller_dlbench={dlbench}\n"
        f"ansible_python_interpreter={sys.executable}\nvalidate_pair_address=127.0.0.1\n"
        + "".join(f"{line}\n" for line in variables)
    )
    # the hosts' PCI bus: a CPU-only one, so that a machine with NVIDIA GPUs runs the same test
    env = ansible_environment(
        DLBENCH_FAKE_NVML=str(scenario),
        CUDA_VISIBLE_DEVICES="",
        DLBENCH_RECORDED_HOST=pci_bus(tmp_path / "pci", PCI_INTEL_VTD),
        ANSIBLE_LOCALHOST_WARNING="false",
    )
    return subprocess.run(
        [str(ansible_playbook), "-i", str(inventory), "playbooks/validate.yml"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_every_host_is_validated_and_its_reports_fetched_and_summarized(ansible_playbook, tmp_path, nonblocking_stdin):
    # hosts without a driver: host checks pass
    done = _play(ansible_playbook, tmp_path, {"init_error": "LIBRARY_NOT_FOUND"})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    reports = tmp_path / "reports"
    for host in ("node1", "node2"):
        report = json.loads((reports / f"{host}.json").read_text())
        assert report["verdict"] in ("PASS", "WARN") and report["options"]["stack"].endswith("stack.yml")
        assert (reports / f"{host}.xml").read_text().startswith("<?xml")
    summary = json.loads((reports / "summary.json").read_text())
    assert len(summary["hosts"]) == 2 and summary["outliers"] == []
    assert "Every host passed" in done.stdout
    # the pair ran too, with the role's defaults: no spec, so measured and not judged
    [pair] = json.loads((reports / "pairs.json").read_text())["pairs"]
    assert pair["pair"] == "node1--node2" and pair["verdict"] == "INFO" and pair["backend"] == "gloo"
    assert {p.name for p in (reports / "pairs").iterdir()} == {"node1--node2.node1.json", "node1--node2.node2.json"}


def test_three_hosts_run_two_rounds_of_pairs_and_slow_pairs_are_named(ansible_playbook, tmp_path, nonblocking_stdin):
    network = tmp_path / "spec.yml"
    network.write_text("hardware:\n  network: 10Mb/s\n")  # far below what gloo carries over loopback
    done = _play(
        ansible_playbook,
        tmp_path,
        {"init_error": "LIBRARY_NOT_FOUND"},
        hosts=(1, 2, 3),
        variables=("validate_node_checks=false", f"validate_pair_spec_file={network}"),
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    reports = tmp_path / "reports"
    assert not (reports / "summary.json").exists()  # the node checks were off
    verdicts = json.loads((reports / "pairs.json").read_text())["pairs"]
    # node1 with node2, then node3 left over with node1 in a second round
    assert [(v["pair"], v["verdict"]) for v in verdicts] == [("node1--node2", "PASS"), ("node3--node1", "PASS")]
    assert "Every pair reached its share of line rate" in done.stdout
    # the same fetched results held to a 400 Gb/s RoCE fabric: both pairs named as slow
    fast = tmp_path / "fast.yml"
    fast.write_text("hardware:\n  network: 400GbE RoCE\n")
    judged = subprocess.run(
        [sys.executable, "-m", "dlbench", "validate", "pairs", str(reports / "pairs"), "--spec", str(fast)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert judged.returncode == 1 and "slow or failed pairs: node1--node2, node3--node1" in judged.stdout


def test_a_failing_host_fails_the_play_after_every_report_is_fetched(ansible_playbook, tmp_path):
    # NVML lists two H100s but torch sees none: stack.gpus_visible fails on both hosts
    done = _play(ansible_playbook, tmp_path, {"gpus": [{"preset": "h100-sxm"}, {"preset": "h100-sxm"}]})
    assert done.returncode != 0
    assert "A host failed validation or a GPU is an outlier" in done.stdout
    # the pair test still ran, and its verdicts were written, after the hosts' own checks failed
    assert {p.name for p in (tmp_path / "reports").glob("*.json")} == {
        "node1.json",
        "node2.json",
        "summary.json",
        "pairs.json",
    }
