"""deploy/kubernetes: the DaemonSet and its neighbours against the Kubernetes schema, its security settings, and its
command line starting a real exporter.

The validator is kubernetes-validate (PyPI), which ships the OpenAPI schemas of each Kubernetes release and checks
offline; --strict rejects unknown fields. The ServiceMonitor is a Prometheus Operator CRD with no schema there: it
is checked against the Service it must select. Faked: NVML only, in the exporter started from the manifest's args.
"""

import copy
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from prometheus_server import free_port, http_get, wait_for

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"  # the oldest release still maintained upstream when this was written


def documents(name):
    return [doc for doc in yaml.safe_load_all((DEPLOY / name).read_text()) if doc]


def by_kind(kind):
    return next(doc for doc in documents("dlbench-exporter.yaml") if doc["kind"] == kind)


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, "1.37.0"])
def test_every_resource_is_valid_against_the_kubernetes_schema(version):
    kinds = []
    for doc in documents("dlbench-exporter.yaml"):
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.append(doc["kind"])
    assert kinds == ["Namespace", "ServiceAccount", "DaemonSet", "Service", "NetworkPolicy"]


def test_the_validator_rejects_a_misspelled_field():
    daemonset = copy.deepcopy(by_kind("DaemonSet"))
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesytem"] = container["securityContext"].pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, KUBERNETES_VERSION, strict=True)


def test_daemonset_runs_non_root_read_only_and_takes_no_gpu():
    pod = by_kind("DaemonSet")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and "add" not in security["capabilities"]
    assert not security.get("privileged") and not pod.get("hostNetwork")
    assert "nvidia.com/gpu" not in str(container["resources"])  # watching GPUs must not take one
    host_paths = {volume["hostPath"]["path"] for volume in pod["volumes"] if "hostPath" in volume}
    assert host_paths == {"/var/log/pods"}
    assert all(mount["readOnly"] for mount in container["volumeMounts"] if mount["name"] == "pod-logs")


def test_servicemonitor_selects_the_service_and_its_port():
    (monitor,) = documents("servicemonitor.yaml")
    service = by_kind("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "ServiceMonitor"
    labels = service["metadata"]["labels"]
    assert all(labels.get(key) == value for key, value in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= ports
    assert service["spec"]["selector"] == by_kind("DaemonSet")["spec"]["template"]["metadata"]["labels"]


@pytest.mark.integration
def test_the_daemonsets_command_line_serves_metrics_named_by_node(tmp_path):
    (container,) = by_kind("DaemonSet")["spec"]["template"]["spec"]["containers"]
    port = free_port()
    env = {**os.environ, "POD_IP": "127.0.0.1", "NODE_NAME": "gpu-node-7", "DLBENCH_FAKE_NVML": "h100-sxm"}
    # Kubernetes expands $(VAR) in args from the container's env; the port is swapped for a free one here
    args = [arg.replace("$(POD_IP)", env["POD_IP"]).replace("19835", str(port)) for arg in container["args"]]
    assert args[:2] == ["dlbench", "exporter"]
    process = subprocess.Popen(
        [sys.executable, "-m", "dlbench", *args[1:]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(url + "/health")[0] == 200, 30, "the exporter's /health")
        _, body = http_get(url + "/metrics")
        assert b'dlbench_gpu_nvlink_links_active{gpu="0"' in body and b'hostname="gpu-node-7"' in body
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_servicemonitor_job_is_the_job_prometheus_yml_and_the_alerts_use():
    """DlbenchExporterDown selects up{job="dlbench"}: the ServiceMonitor must name its job as prometheus.yml does,
    not after the Service (the Operator's default)."""
    (monitor,) = documents("servicemonitor.yaml")
    config = yaml.safe_load((DEPLOY.parents[1] / "dashboards" / "prometheus" / "prometheus.yml").read_text())
    exporter_job = next(
        job["job_name"]
        for job in config["scrape_configs"]
        if any("dlbench-exporter" in f for sd in job.get("file_sd_configs", []) for f in sd["files"])
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    job_rules = [rule for rule in endpoint["relabelings"] if rule.get("targetLabel") == "job"]
    assert [rule["replacement"] for rule in job_rules] == [exporter_job]
    alerts = (DEPLOY.parents[1] / "dashboards" / "prometheus" / "rules" / "dlbench-alerts.yml").read_text()
    assert f'up{{job="{exporter_job}"' in alerts


def kubelet_probe(probe: dict, port: int) -> bool:
    """One probe as the kubelet runs it (kubernetes pkg/probe/http and pkg/probe/tcp): an httpGet succeeds on a
    status from 200 to 399 within timeoutSeconds (1 by default), a tcpSocket on an established connection."""
    timeout = probe.get("timeoutSeconds", 1)
    try:
        if "httpGet" in probe:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            try:
                connection.request("GET", probe["httpGet"].get("path", "/"))
                return 200 <= connection.getresponse().status < 400
            finally:
                connection.close()
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


@pytest.mark.integration
def test_probes_pass_while_nvml_is_down_and_fail_on_a_stopped_exporter(tmp_path):
    """/health answers 503 while NVML is down; readiness and liveness must not fail then, or one node with a broken
    driver would hold every rolling update of the DaemonSet (a NotReady pod counts against maxUnavailable) or restart
    in a loop. But an exporter that answers nothing (here: stopped with SIGSTOP; the kernel still completes TCP
    handshakes on its listening socket) must fail both."""
    (container,) = by_kind("DaemonSet")["spec"]["template"]["spec"]["containers"]
    probes = {"readiness": container["readinessProbe"], "liveness": container["livenessProbe"]}
    assert {probe["httpGet"]["port"] for probe in probes.values() if "httpGet" in probe} <= {"metrics"}
    scenario = tmp_path / "scenario.json"
    scenario.write_text('{"init_error": "DRIVER_NOT_LOADED"}')
    port = free_port()
    env = {**os.environ, "POD_IP": "127.0.0.1", "NODE_NAME": "gpu-node-7", "DLBENCH_FAKE_NVML": str(scenario)}
    args = [arg.replace("$(POD_IP)", env["POD_IP"]).replace("19835", str(port)) for arg in container["args"]]
    process = subprocess.Popen(
        [sys.executable, "-m", "dlbench", *args[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(url + "/health")[0] == 503, 30, "/health to report NVML down")
        wait_for(lambda: all(kubelet_probe(probe, port) for probe in probes.values()), 30, "the probes to pass")
        assert re.search(rb"^dlbench_exporter_nvml_up(\{[^}]*\})? 0", http_get(url + "/metrics")[1], re.M)
        process.send_signal(signal.SIGSTOP)
        assert {name: kubelet_probe(probe, port) for name, probe in probes.items()} == {
            "readiness": False,
            "liveness": False,
        }
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)
