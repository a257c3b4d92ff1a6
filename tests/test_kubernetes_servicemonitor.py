"""deploy/kubernetes/servicemonitor.yaml through a real Prometheus: the scrape config the Prometheus Operator generates
from it (tests/prometheus_operator.py), Kubernetes endpoints as file_sd targets with discovery's meta labels, a real
`dlbench exporter` started from the DaemonSet's command line, and the repository's alert rules.

Checked: the relabelled target is named after its node (job dlbench, instance and node = the node's name, no pod
labels); when the exporter pod is deleted DlbenchExporterDown goes pending for that node; when the pod comes back
with a new address and one GPU fewer, the node keeps one `up` series and DlbenchGPUMissing goes pending for the lost
GPU's UUID. Faked: NVML only (DLBENCH_FAKE_NVML), and the Kubernetes API, whose discovery output file_sd stands in for.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prometheus_operator import endpoint_target, scrape_config
from prometheus_server import Prometheus, free_port, http_get, wait_for

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kubernetes"
RULES = sorted(str(path) for path in (ROOT / "dashboards" / "prometheus" / "rules").glob("*.yml"))
NODE = "gpu-node-7"


def _manifests():
    docs = [doc for doc in yaml.safe_load_all((DEPLOY / "dlbench-exporter.yaml").read_text()) if doc]
    kinds = {doc["kind"]: doc for doc in docs}
    (monitor,) = [doc for doc in yaml.safe_load_all((DEPLOY / "servicemonitor.yaml").read_text()) if doc]
    return kinds["DaemonSet"], kinds["Service"], monitor


def _start_exporter(daemonset, port: int, gpus: str) -> subprocess.Popen:
    """The DaemonSet's container command line, as Kubernetes runs it (args with $(VAR) expanded), on 127.0.0.1."""
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    env = {**os.environ, "POD_IP": "127.0.0.1", "NODE_NAME": NODE, "DLBENCH_FAKE_NVML": gpus}
    args = [arg.replace("$(POD_IP)", env["POD_IP"]).replace("19835", str(port)) for arg in container["args"]]
    process = subprocess.Popen(
        [sys.executable, "-m", "dlbench", *args[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: http_get(f"http://127.0.0.1:{port}/metrics")[0] == 200, 30, "the exporter's /metrics")
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.integration
def test_servicemonitor_names_targets_by_node_and_the_rules_follow_a_recreated_pod(tmp_path):
    daemonset, service, monitor = _manifests()
    targets_file = tmp_path / "endpoints.json"
    # Another Service's endpoint in the same namespace, and a second port of this one: the Operator's keep rules
    # must drop both (nothing listens there; a scraped one would show as a down target).
    other_service = {
        "metadata": {
            "name": "dcgm-exporter",
            "namespace": service["metadata"]["namespace"],
            "labels": {"app.kubernetes.io/name": "dcgm-exporter"},
        }
    }
    decoys = [
        endpoint_target(f"127.0.0.1:{free_port()}", other_service, "dcgm-exporter-abcde", NODE, "metrics", "exporter"),
        endpoint_target(f"127.0.0.1:{free_port()}", service, "dlbench-exporter-x7k2p", NODE, "profiling", "exporter"),
    ]

    def publish(*endpoints):  # what the endpoints controller and discovery would show Prometheus now
        scratch = targets_file.with_suffix(".tmp")
        scratch.write_text(json.dumps([*endpoints, *decoys]))
        scratch.replace(targets_file)  # file_sd must never read half a file

    config = scrape_config(monitor, 0, str(targets_file))
    # The manifest's 15 s interval, shortened so the test takes seconds; everything else as generated.
    config.update(scrape_interval="1s", scrape_timeout="1s")
    port_a, port_b = free_port(), free_port()
    exporter = _start_exporter(daemonset, port_a, "h100-sxm*2")
    publish(endpoint_target(f"127.0.0.1:{port_a}", service, "dlbench-exporter-x7k2p", NODE, "metrics", "exporter"))
    prometheus = Prometheus(tmp_path, {}, scrape_interval="1s", scrape_configs=[config], rule_files=RULES)
    try:
        (up,) = prometheus.wait_for_series("up", 30)
        assert up["metric"] == {
            "__name__": "up",
            "job": "dlbench",
            "instance": NODE,
            "node": NODE,
            "service": "dlbench-exporter",
            "endpoint": "metrics",
        }
        assert up["value"][1] == "1"
        gpus = prometheus.wait_for_series("dlbench_gpu_up", 30, lambda r: len(r) == 2)
        assert {(s["metric"]["instance"], s["metric"]["hostname"]) for s in gpus} == {(NODE, NODE)}
        lost_uuid = next(s["metric"]["uuid"] for s in gpus if s["metric"]["gpu"] == "1")
        # the exporter-down rule looks a day back at one point a minute: wait until a point has seen the target
        prometheus.wait_for_series('max_over_time(up{job="dlbench",node!=""}[1d:1m])', 75)

        # The pod is deleted and, for now, not replaced: its endpoint goes first (as Kubernetes removes a terminating
        # pod's endpoint), so no scrape ever fails: no target at all, and no `up` sample to be 0.
        publish()
        wait_for(lambda: not prometheus.query("up"), 30, "the target to go")
        _stop(exporter)
        down = prometheus.wait_for_series('ALERTS{alertname="DlbenchExporterDown"}', 30)
        assert not prometheus.query("up")
        assert [(a["metric"]["instance"], a["metric"]["node"]) for a in down] == [(NODE, NODE)]

        # The DaemonSet re-creates it after the node's reboot: a new pod, a new address, one GPU fewer.
        exporter = _start_exporter(daemonset, port_b, "h100-sxm*1")
        publish(endpoint_target(f"127.0.0.1:{port_b}", service, "dlbench-exporter-q9m4t", NODE, "metrics", "exporter"))
        prometheus.wait_for_series("up == 1", 30)
        missing = prometheus.wait_for_series('ALERTS{alertname="DlbenchGPUMissing"}', 30)
        assert [(a["metric"]["hostname"], a["metric"]["uuid"]) for a in missing] == [(NODE, lost_uuid)]
        wait_for(
            lambda: not prometheus.query('ALERTS{alertname="DlbenchExporterDown"}'), 30, "DlbenchExporterDown to clear"
        )
        (up,) = prometheus.query("up")  # the same series as before the re-creation
        assert up["metric"]["instance"] == NODE and up["value"][1] == "1"
        active = {
            t["labels"]["instance"]
            for t in json.loads(http_get(f"{prometheus.url}/api/v1/targets")[1])["data"]["activeTargets"]
        }
        assert active == {NODE}, "the decoy endpoints must be dropped by the ServiceMonitor's keep rules"
    finally:
        prometheus.close()
        _stop(exporter)
