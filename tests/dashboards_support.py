"""Shared by the dashboard tests: paths, the dashboards' queries, the names our exporter and rules provide."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS_DIR = ROOT / "dashboards"
PROMETHEUS_DIR = DASHBOARDS_DIR / "prometheus"
sys.path.insert(0, str(DASHBOARDS_DIR))

from dlbench_dashboards import queries  # noqa: E402, F401 (the tests import it from here)

# Series Prometheus itself adds to every target.
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# prometheus_client's ProcessCollector, registered by `dlbench exporter` beside the catalogue's names
PROCESS_METRICS = {"process_start_time_seconds", "process_resident_memory_bytes", "process_cpu_seconds_total"}


def recording_rules() -> dict[str, str]:
    """record name -> expression, from the rules Prometheus loads by default (not the optional DCGM mapping)."""
    rules = {}
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    rules[rule["record"]] = rule["expr"]
    return rules


def exported_names() -> set[str]:
    """Every series name `dlbench exporter` and `dlbench run --metrics-port` can emit, from the catalogue."""
    from dlbench.exporter.catalogue import CATALOGUE

    names = set()
    for spec in CATALOGUE:
        if spec.type == "histogram":
            names |= {f"{spec.name}_bucket", f"{spec.name}_sum", f"{spec.name}_count"}
        else:
            names.add(spec.name)
    return names | PROCESS_METRICS
