"""The Prometheus config and rules in dashboards/prometheus, checked by Debian's real promtool.

`promtool test rules` runs the hand-written unit tests in dashboards/prometheus/tests; the coverage test here makes
sure every alert has at least one case where it must fire and one where it must stay silent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "dashboards" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml")) + sorted((PROMETHEUS_DIR / "optional").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*_test.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert shutil.which("promtool"), "promtool missing: run scripts/install-test-deps.sh (Debian package prometheus)"
    return subprocess.run(["promtool", *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120)


def test_example_config_is_valid():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_files_are_valid():
    assert len(RULE_FILES) >= 3
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    result = promtool("test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def _alerts() -> dict[str, dict]:
    alerts = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    return alerts


def test_every_alert_has_severity_summary_and_description():
    """summary and description are the annotation names Alertmanager's default templates and kube-prometheus's
    rules use; a `runbook` annotation would show nowhere."""
    alerts = _alerts()
    assert len(alerts) >= 15
    for name, rule in alerts.items():
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{name} has no summary"
        assert annotations.get("description", "").strip(), f"{name} has no description (what to do first)"
        assert set(annotations) <= {"summary", "description", "runbook_url"}, name


def test_every_alert_is_unit_tested_firing_and_silent():
    firing, silent = set(), set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts - firing == set(), "alerts never expected to fire in a unit test"
    assert alerts - silent == set(), "alerts never expected to stay silent in a unit test"


def _unit_test_series(path: Path) -> list[tuple[str, dict[str, str]]]:
    """(metric name, labels) of every input series of a promtool unit-test file."""
    found = []
    for case in yaml.safe_load(path.read_text())["tests"]:
        for entry in case.get("input_series", []):
            name, _, rest = entry["series"].partition("{")
            found.append((name, dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))))
    return found


def test_nvlink_down_cases_use_the_label_set_the_exporter_serves():
    """The promtool cases for DlbenchGPUNVLinkDown must match what a real exposition serves for a GPU with a link down,
    or the rule could pass its tests and never match in production."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from dlbench.nvml import simulated
    from dlbench.exporter.collector import TelemetryCollector
    from dlbench.exporter.host import HostReader
    from dlbench.nvml.reader import NvmlReader
    from dlbench.exporter.sampler import Sampler

    fake = simulated.from_spec("h100-sxm")
    fake.gpus[0].values["nvlink"] = {
        "7": {"state": simulated._real.NVML_NVLINK_STATE_INACTIVE},
        "8": {"state": simulated._real.NVML_NVLINK_STATE_SLEEP},
    }
    sampler = Sampler(NvmlReader(fake).start(), HostReader(), interval=1)
    sampler.sample_now()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="n1"))
    served = {
        sample.name: sample
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    inactive = served["dlbench_gpu_nvlink_links_inactive"]
    assert inactive.value == 1, "a sleeping link is not a link down"
    assert served["dlbench_gpu_nvlink_links_active"].value == 16
    tested = [
        labels
        for name, labels in _unit_test_series(PROMETHEUS_DIR / "tests" / "alerts_fleet_test.yml")
        if name == "dlbench_gpu_nvlink_links_inactive"
    ]
    assert tested
    for labels in tested:
        assert set(labels) - {"job", "instance"} == set(inactive.labels), labels


def test_no_alert_reads_a_long_range_sample_by_sample():
    """A range of more than a few hours over per-GPU series, read at the scrape interval, loads every sample of it at every
    evaluation: [24h] at 15 s is 5,760 samples a series, 46 million for 1,000 eight-GPU nodes, past Prometheus's
    default --query.max-samples (50 million), where the rule fails to evaluate and its alert can never fire. Such
    ranges are read as subqueries at a coarse step ([24h:5m], 288 points a series) instead."""
    hours = {"h": 1, "d": 24, "w": 24 * 7, "y": 24 * 365}
    too_long = []
    for name, rule in _alerts().items():
        for value, unit in re.findall(r"\[(\d+)([hdwy])\]", rule["expr"]):  # [N<unit>] without a subquery step
            if int(value) * hours[unit] > 6:
                too_long.append(f"{name}: [{value}{unit}]")
    assert too_long == []


def test_xid_classes_are_the_same_for_dlbench_and_dcgm_exporter_and_follow_nvidias_catalogue():
    """One list of paging XIDs and one of silent ones, whichever exporter reports the code. Spot checks against
    NVIDIA's XID catalogue, Resolution Bucket (Immediate Action): RESET_GPU (46, 143, 158), RESTART_BM (79), the XID
    48 and NVLink workflows (48, 74, 144-150) page; RESTART_APP (13, 31, 94) and IGNORE (43, 157) or follow-another-XID
    (154) codes stay silent; UNEXPECTED_ERR_REPORT_ISSUE (61) warns."""
    alerts = _alerts()

    def codes(rule: str, matcher: str) -> set[str]:
        return set(re.search(matcher + r'"([\d|]+)"', alerts[rule]["expr"]).group(1).split("|"))

    critical = codes("DlbenchGPUXidCritical", "xid=~")
    assert critical == codes("DlbenchDCGMXidCritical", "err_code=~")
    assert {
        "46",
        "48",
        "74",
        "79",
        "136",
        "143",
        "144",
        "145",
        "146",
        "147",
        "148",
        "149",
        "150",
        "155",
        "158",
        "167",
        "171",
        "172",
    } <= critical
    silent = {"13", "31", "43", "45", "94", "154", "157"}
    assert not critical & silent and "61" not in critical
    not_warning = codes("DlbenchGPUXidWarning", "xid!~")
    assert critical | silent <= not_warning and "61" not in not_warning
    assert codes("DlbenchDCGMXidWarning", "err_code!~") == not_warning | {"0"}


def test_mixed_fleet_case_uses_the_label_sets_dcgm_compat_serves():
    """The --dcgm-compat host of kubernetes_test.yml's mixed fleet must carry the labels a real `dlbench exporter
    --dcgm-compat` exposition has (with an XID 48 delivered), or the scoping of optional/dcgm-compat.yml could pass
    its test and miss in production."""
    import time

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from dlbench.nvml import simulated
    from dlbench.exporter.collector import TelemetryCollector
    from dlbench.exporter.host import HostReader
    from dlbench.nvml.reader import NvmlReader
    from dlbench.exporter.sampler import Sampler

    fake = simulated.from_spec("h100-sxm")
    fake.inject_xid(0, 48)
    sampler = Sampler(NvmlReader(fake).start(), HostReader(), interval=1)
    served: dict[str, set[str]] = {}
    deadline = time.monotonic() + 10
    while "dlbench_gpu_last_xid_timestamp_seconds" not in served and time.monotonic() < deadline:
        sampler.sample_now()  # the XID arrives through NVML's event set, read beside the samples
        registry = CollectorRegistry(auto_describe=False)
        registry.register(TelemetryCollector(sampler, hostname="n1", dcgm_compat=True))
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            for sample in family.samples:
                served.setdefault(sample.name, set(sample.labels))
        time.sleep(0.2)
    tested = [
        (name, labels)
        for name, labels in _unit_test_series(PROMETHEUS_DIR / "tests" / "kubernetes_test.yml")
        if labels.get("instance") == "n1:19835"
    ]
    assert {name for name, _ in tested} >= {
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_GPU_TEMP",
        "dlbench_gpu_last_xid_timestamp_seconds",
        "dlbench_exporter_nvml_up",
    }
    for name, labels in tested:
        if name != "up":
            assert set(labels) - {"job", "instance"} == served[name], name
