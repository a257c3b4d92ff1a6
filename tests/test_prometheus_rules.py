"""The Prometheus config and rules in dashboards/prometheus, checked by Debian's real promtool.

`promtool test rules` runs the hand-written unit tests in dashboards/prometheus/tests; the coverage test here makes
sure every alert has at least one case where it must fire and one where it must stay silent.
"""

from __future__ import annotations

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


def test_every_alert_has_severity_summary_and_runbook():
    alerts = _alerts()
    assert len(alerts) >= 15
    for name, rule in alerts.items():
        assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary", "").strip(), f"{name} has no summary"
        assert annotations.get("runbook", "").strip(), f"{name} has no runbook hint"


def test_every_alert_is_unit_tested_firing_and_silent():
    firing, silent = set(), set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts - firing == set(), "alerts never expected to fire in a unit test"
    assert alerts - silent == set(), "alerts never expected to stay silent in a unit test"
