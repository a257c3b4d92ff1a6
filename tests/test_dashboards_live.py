"""The proof that matters: every panel of every dashboard shows data from a real exporter and a real run.

Debian's real Prometheus, on 127.0.0.1, loads our example prometheus.yml (file_sd targets, recording and alert
rules) and scrapes a real `dlbench exporter` and a live `dlbench run --metrics-port`. Each panel query, with the
template variables filled in the way Grafana fills them, goes through Prometheus's HTTP API and must return at least
one real number. FAKED: NVML only (no GPU here), through the exporter's DLBENCH_FAKE_NVML test hook; see live_stack.py.

Set DLBENCH_DASHBOARD_PNG_DIR=docs/dashboards to also refresh the committed panel images from this run.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from dashboards_support import queries
from dlbench_dashboards import prom
from live_stack import SCRAPE_INTERVAL_S, LiveStack

pytestmark = pytest.mark.integration

GPUS_IN_SCENARIO = 4
# Panels allowed to be empty, and only under the stated condition. MFU is undefined on CPU (the catalogue:
# "absent on CPU or when the GPU's peak is unknown"), and CI has no GPU; the panel shows its noValue text there.
EMPTY_ALLOWED = {("training-run.json", "MFU"): lambda stack: stack.run_device == "cpu"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    live = LiveStack(tmp_path_factory.mktemp("live-stack")).start()
    try:
        # every GPU of the scenario, the recording rules, and an XID event, all in Prometheus
        live.wait_until(
            'count(dlbench_gpu_up{job="dlbench"})', 60, lambda r: r and float(r[0]["value"][1]) == GPUS_IN_SCENARIO
        )
        live.wait_until('dlbench_gpu_utilization_ratio{job="dcgm"}', 30)
        live.wait_until("dlbench:gpu_clocks_limited:max", 30)
        live.wait_until("dlbench_gpu_last_xid_timestamp_seconds", 30)
        live.run_device = None
        if live.with_run:
            info = live.wait_until("dlbench_train_info", 240)
            live.run_device = info[0]["metric"]["device"]
            # enough timed steps for rates and step-time quantiles over $__rate_interval
            live.wait_until(
                "count_over_time(dlbench_train_samples_per_second[1m])",
                240,
                lambda r: r and float(r[0]["value"][1]) >= 8,
            )
        # the idle card falls off the bus at tick 12: let Prometheus see it down
        live.wait_until('dlbench_gpu_up{job="dlbench"} == 0', 60)
        time.sleep(2 * SCRAPE_INTERVAL_S)
        if os.environ.get("DLBENCH_DASHBOARD_PNG_DIR"):
            time.sleep(90)  # images for people: a longer history than the assertions need
        live.evaluated_at = time.time()
        yield live
    finally:
        live.close()


def _has_a_number(result: list[dict]) -> bool:
    for series in result:
        points = series.get("values") or [series.get("value")]
        if any(point and math.isfinite(float(point[1])) for point in points):
            return True
    return False


def _evaluate_board(stack, name: str, board: dict):
    """Variables as a user of the dlbench exporter sets them: `All` where offered, job "dlbench" where one job must
    be picked (Grafana would preselect the first, "dcgm", the stand-in tested on its own below)."""
    start, end = stack.started_at, stack.evaluated_at
    single_job = any(v.name == "job" and not v.multi for v in queries.variables(board))
    values, options = prom.resolve_variables(
        board, stack.prometheus, start, end, chosen={"job": "dlbench"} if single_job else None
    )
    values.update(
        __rate_interval=prom.rate_interval(SCRAPE_INTERVAL_S, 1),
        __range=f"{int(end - start)}s",
        __range_s=str(int(end - start)),
    )
    results = {}
    for target in queries.targets(name, board):
        results[target] = prom.evaluate(target, values, stack.prometheus, start, end, 1)
    return values, options, results


def test_prometheus_scrapes_the_exporter_and_run_through_the_example_file_sd_config(stack):
    health = {t["labels"]["job"]: t["health"] for t in stack.prometheus.get("/api/v1/targets")["activeTargets"]}
    assert health["dlbench"] == "up"
    if stack.with_run:
        assert health["dlbench-train"] == "up"


def test_rules_load_and_evaluate_without_errors(stack):
    groups = stack.prometheus.get("/api/v1/rules")["groups"]
    names = {group["name"] for group in groups}
    assert {"dlbench-gpu-recording", "dlbench-gpu-health", "dlbench-gpu-errors", "dlbench-availability"} <= names
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"


def test_alerts_fire_on_the_real_exporters_events(stack):
    """New XIDs reach the alerts end to end (the first event of a code included); the old ECC count does not."""
    alerts = stack.prometheus.get("/api/v1/alerts")["alerts"]
    by_name = {}
    for alert in alerts:
        by_name.setdefault(alert["labels"]["alertname"], []).append(alert)
    assert [(a["labels"]["gpu"], a["labels"]["xid"], a["state"]) for a in by_name["DlbenchGPUXidCritical"]] == [
        ("1", "79", "firing")
    ]
    # 61 is a warning; 94 (contained ECC error) is RESTART_APP in NVIDIA's XID catalogue: the application's, no page
    assert [(a["labels"]["gpu"], a["labels"]["xid"], a["state"]) for a in by_name["DlbenchGPUXidWarning"]] == [
        ("2", "61", "firing")
    ]
    assert all(a["labels"].get("xid") != "94" for a in alerts)
    assert "DlbenchGPUUncorrectableECCErrors" not in by_name  # a lifetime count of 2 that does not grow
    assert {a["labels"]["gpu"] for a in by_name["DlbenchGPUTemperatureHigh"]} == {"1"}  # pending: `for: 5m`
    assert {a["labels"]["gpu"] for a in by_name["DlbenchGPUDown"]} == {"3"}


@pytest.mark.parametrize("name", sorted(queries.dashboards()))
def test_every_variable_offers_values(stack, name):
    board = queries.dashboards()[name]
    if name == "training-run.json" and not stack.with_run:
        pytest.skip("this checkout's `dlbench run` has no --metrics-port yet")
    _, options = prom.resolve_variables(board, stack.prometheus, stack.started_at, stack.evaluated_at)
    assert options and all(options.values()), f"variables without values: {[k for k, v in options.items() if not v]}"


@pytest.mark.parametrize("name", sorted(queries.dashboards()))
def test_every_panel_query_returns_data(stack, name):
    board = queries.dashboards()[name]
    if name == "training-run.json" and not stack.with_run:
        pytest.skip("this checkout's `dlbench run` has no --metrics-port yet")
    values, _, results = _evaluate_board(stack, name, board)
    empty = []
    for target, result in results.items():
        if _has_a_number(result):
            continue
        allowed = EMPTY_ALLOWED.get((name, target.panel_title))
        if allowed and allowed(stack):
            continue
        empty.append(f"{target.panel_title!r} {target.ref_id}: {queries.substitute(target.expr, values)}")
    assert not empty, "panels that would show No data:\n" + "\n".join(empty)
    assert len(results) >= 10


def test_renderer_draws_every_panel(stack, tmp_path):
    from dlbench_dashboards import render

    out = Path(os.environ.get("DLBENCH_DASHBOARD_PNG_DIR") or tmp_path)
    boards = queries.dashboards()
    if not stack.with_run:
        boards.pop("training-run.json")
    for name, board in boards.items():
        # job="dlbench", as in _evaluate_board: the dcgm stand-in reports the same simulated GPUs again under
        # job="dcgm" and lacks the fields DCGM has no default for (clock maxima, clock-event reasons)
        chosen = {"job": "dlbench"}
        png, drawn = render.render_dashboard(
            board,
            name,
            stack.prometheus,
            stack.started_at,
            stack.evaluated_at,
            out,
            scrape_interval_s=SCRAPE_INTERVAL_S,
            chosen=chosen,
        )
        panels = [p for p in queries.panels(board) if p["type"] != "row"]
        assert drawn == len(panels)
        assert png.stat().st_size > 50_000, f"{png} looks empty"


def _dcgm_mapped_names() -> set[str]:
    """Series the optional DCGM mapping provides, and our recording rules computed only from those."""
    import yaml

    from dashboards_support import PROMETHEUS_DIR, recording_rules

    groups = yaml.safe_load((PROMETHEUS_DIR / "optional" / "dcgm-compat.yml").read_text())["groups"]
    mapped = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    mapped |= {name for name, expr in recording_rules().items() if queries.metric_names(expr) <= mapped}
    return mapped | {"up"}


def test_dcgm_exporter_series_fill_every_fleet_panel_they_can(stack):
    """With optional/dcgm-compat.yml, a host that only runs dcgm-exporter shows up in the fleet dashboard: every
    panel whose metrics the mapping provides returns data for job="dcgm"."""
    name = "gpu-fleet-overview.json"
    board = queries.dashboards()[name]
    start, end = stack.started_at, stack.evaluated_at
    values, options = prom.resolve_variables(board, stack.prometheus, start, end, chosen={"job": "dcgm"})
    assert "dcgm" in options["job"]
    values.update(__rate_interval="5s", __range=f"{int(end - start)}s", __range_s=str(int(end - start)))
    mapped = _dcgm_mapped_names()
    covered = [t for t in queries.targets(name, board) if queries.metric_names(t.expr) <= mapped]
    assert len(covered) >= 8
    empty = [
        t.panel_title for t in covered if not _has_a_number(prom.evaluate(t, values, stack.prometheus, start, end, 1))
    ]
    assert not empty, f"panels without data for dcgm-exporter hosts: {empty}"


def test_training_panels_agree_with_each_other(stack):
    """The throughput panel, the steps-per-second panel and the step-time panel describe the same run: samples/s
    must match steps/s x batch size, and the median step time must match 1 / steps/s, within a factor of 2.
    Windows are 5 s so they lie inside the run's short life (a rate over a window the series only half covers
    reads low)."""
    if not stack.with_run:
        pytest.skip("this checkout's `dlbench run` has no --metrics-port yet")
    at = stack.evaluated_at
    info = stack.prometheus.instant("dlbench_train_info", at)[0]["metric"]
    batch_size = int(info["batch_size"])
    steps_per_second = float(stack.prometheus.instant("rate(dlbench_train_steps_total[5s])", at)[0]["value"][1])
    samples_per_second = float(stack.prometheus.instant("dlbench_train_samples_per_second", at)[0]["value"][1])
    median_step = float(
        stack.prometheus.instant(
            "histogram_quantile(0.5, sum by (le) (rate(dlbench_train_step_seconds_bucket[5s])))", at
        )[0]["value"][1]
    )
    assert steps_per_second > 0
    assert 0.5 < samples_per_second / (steps_per_second * batch_size) < 2, (
        f"throughput {samples_per_second:.3g} samples/s, but {steps_per_second:.3g} steps/s x batch {batch_size}"
    )
    assert 0.5 < median_step * steps_per_second < 2, (
        f"median step {median_step:.3g} s, but {steps_per_second:.3g} steps/s"
    )
