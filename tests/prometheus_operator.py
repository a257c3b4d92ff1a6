"""The scrape config the Prometheus Operator generates from a ServiceMonitor, and Kubernetes endpoints as file_sd
targets, so that a real Prometheus scrapes through the ServiceMonitor's relabelling without a cluster.

Stand-in for the Operator only (it cannot run here): `scrape_config` follows generateServiceMonitorConfig in
prometheus-operator pkg/prometheus/promcfg.go (commit 6adcebc, role "endpoints"), for the fields
deploy/kubernetes/servicemonitor.yaml uses: selector.matchLabels, endpoint port, path, interval, scrapeTimeout
and relabelings. Anything else in a ServiceMonitor makes it raise, so a new field cannot be silently ignored.
`endpoint_target` carries the meta labels Prometheus's Kubernetes discovery (role endpoints) puts on a pod-backed
endpoint; file_sd passes __meta_* labels through to relabelling as Kubernetes discovery does.
"""

from __future__ import annotations

import re

SUPPORTED_ENDPOINT_KEYS = {"port", "path", "interval", "scrapeTimeout", "relabelings"}


def _sanitize(name: str) -> str:
    """Label name as the Operator writes it (sanitizeLabelName: every invalid character becomes _)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _relabel(rule: dict) -> dict:
    """A ServiceMonitor RelabelConfig (camelCase) as a Prometheus relabel_config (snake_case)."""
    keys = {
        "sourceLabels": "source_labels",
        "targetLabel": "target_label",
        "separator": "separator",
        "regex": "regex",
        "replacement": "replacement",
        "action": "action",
        "modulus": "modulus",
    }
    unknown = set(rule) - set(keys)
    if unknown:
        raise ValueError(f"relabeling keys this stand-in does not model: {sorted(unknown)}")
    converted = {keys[key]: value for key, value in rule.items()}
    if "action" in converted:
        converted["action"] = converted["action"].lower()
    return converted


def scrape_config(monitor: dict, endpoint_index: int, file_sd_path: str) -> dict:
    """The scrape_config for endpoint `endpoint_index` of `monitor`, its Kubernetes discovery swapped for file_sd."""
    spec = monitor["spec"]
    unknown = set(spec) - {"selector", "namespaceSelector", "endpoints"}
    if unknown or set(spec["selector"]) - {"matchLabels"}:
        raise ValueError(f"ServiceMonitor fields this stand-in does not model: {sorted(unknown)}")
    endpoint = spec["endpoints"][endpoint_index]
    if set(endpoint) - SUPPORTED_ENDPOINT_KEYS:
        raise ValueError(
            f"endpoint fields this stand-in does not model: {sorted(set(endpoint) - SUPPORTED_ENDPOINT_KEYS)}"
        )
    meta = monitor["metadata"]
    relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    for key in sorted(spec["selector"]["matchLabels"]):
        relabel.append(
            {
                "action": "keep",
                "source_labels": [
                    f"__meta_kubernetes_service_label_{_sanitize(key)}",
                    f"__meta_kubernetes_service_labelpresent_{_sanitize(key)}",
                ],
                "regex": f"({spec['selector']['matchLabels'][key]});true",
            }
        )
    relabel.append(
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": endpoint["port"]}
    )
    target = ["__meta_kubernetes_endpoint_address_target_kind", "__meta_kubernetes_endpoint_address_target_name"]
    relabel += [
        {
            "source_labels": target,
            "separator": ";",
            "regex": "Node;(.*)",
            "replacement": "${1}",
            "target_label": "node",
        },
        {"source_labels": target, "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        # generateRunningFilter: pods that have finished are not scraped
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"},
        {"target_label": "endpoint", "replacement": endpoint["port"]},
    ]
    relabel += [_relabel(rule) for rule in endpoint.get("relabelings", [])]
    config = {
        "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{endpoint_index}",
        "honor_labels": False,
        "file_sd_configs": [{"files": [file_sd_path], "refresh_interval": "1s"}],
        "relabel_configs": relabel,
    }
    for key, name in (("interval", "scrape_interval"), ("scrapeTimeout", "scrape_timeout"), ("path", "metrics_path")):
        if key in endpoint:
            config[name] = endpoint[key]
    return config


def endpoint_target(address: str, service: dict, pod_name: str, node_name: str, port_name: str, container: str) -> dict:
    """One file_sd entry for a Service endpoint backed by a running, ready pod, with discovery's meta labels."""
    labels = {
        "__meta_kubernetes_namespace": service["metadata"]["namespace"],
        "__meta_kubernetes_service_name": service["metadata"]["name"],
        "__meta_kubernetes_endpoint_port_name": port_name,
        "__meta_kubernetes_endpoint_port_protocol": "TCP",
        "__meta_kubernetes_endpoint_ready": "true",
        "__meta_kubernetes_endpoint_address_target_kind": "Pod",
        "__meta_kubernetes_endpoint_address_target_name": pod_name,
        "__meta_kubernetes_endpoint_node_name": node_name,
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_node_name": node_name,
        "__meta_kubernetes_pod_ip": address.rsplit(":", 1)[0],
        "__meta_kubernetes_pod_container_name": container,
        "__meta_kubernetes_pod_container_port_name": port_name,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_ready": "true",
    }
    for key, value in service["metadata"].get("labels", {}).items():
        labels[f"__meta_kubernetes_service_label_{_sanitize(key)}"] = value
        labels[f"__meta_kubernetes_service_labelpresent_{_sanitize(key)}"] = "true"
    return {"targets": [address], "labels": labels}
