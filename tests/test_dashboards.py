"""Static checks of the generated Grafana dashboards (dashboards/grafana/dashboards/*.json).

The live proof that every query returns data is in test_dashboards_live.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import yaml

from dashboards_support import DASHBOARDS_DIR, PROMETHEUS_BUILTINS, exported_names, queries, recording_rules

BOARDS = queries.dashboards()
EXPECTED = {"gpu-fleet-overview.json", "gpu-node-detail.json", "training-run.json"}
MODERN_PANEL_TYPES = {
    "timeseries",
    "stat",
    "gauge",
    "bargauge",
    "table",
    "state-timeline",
    "status-history",
    "text",
    "heatmap",
    "row",
}
REQUIRED_VARIABLES = {
    "gpu-fleet-overview.json": {"datasource", "job", "hostname", "gpu"},
    "gpu-node-detail.json": {"datasource", "job", "hostname", "gpu"},
    "training-run.json": {"datasource", "job", "hostname", "gpu", "run_id", "workload", "rank"},
}
IDENTITY_LABELS = ("job", "instance", "hostname", "gpu", "uuid", "run_id", "workload", "rank")


def all_targets():
    return [target for name, board in BOARDS.items() for target in queries.targets(name, board)]


def test_the_three_dashboards_exist_and_parse_as_json():
    assert set(BOARDS) == EXPECTED
    for path in (DASHBOARDS_DIR / "grafana" / "dashboards").glob("*.json"):
        json.loads(path.read_text())


def test_regenerating_from_code_changes_nothing():
    result = subprocess.run(
        [sys.executable, str(DASHBOARDS_DIR / "generate.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_current_schema_and_modern_panels_only():
    for name, board in BOARDS.items():
        assert board["schemaVersion"] >= 39, name
        assert board["uid"] and board["title"], name
        for panel in queries.panels(board):
            assert panel["type"] in MODERN_PANEL_TYPES, f"{name}: panel {panel.get('title')} is {panel['type']}"
    assert len({board["uid"] for board in BOARDS.values()}) == len(BOARDS)


def test_panel_ids_are_unique_and_panels_fit_the_grid_without_overlap():
    for name, board in BOARDS.items():
        ids = [panel["id"] for panel in queries.panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        cells = set()
        for panel in queries.panels(board):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{name}: {panel['title']} is wider than the grid"
            mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & mine, f"{name}: {panel['title']} overlaps another panel"
            cells |= mine


def test_every_panel_and_query_uses_the_datasource_variable():
    for name, board in BOARDS.items():
        for panel in queries.panels(board):
            if panel["type"] == "row":
                continue
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, f"{name}: {panel['title']}"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", f"{name}: {panel['title']} {target['refId']}"
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == "${datasource}", f"{name}: ${variable['name']}"


def test_template_variables():
    for name, board in BOARDS.items():
        variables = {v.name: v for v in queries.variables(board)}
        assert REQUIRED_VARIABLES[name] <= set(variables), name
        assert variables["datasource"].type == "datasource" and variables["datasource"].query == "prometheus"
        for variable in variables.values():
            if variable.type == "query":
                queries.parse_label_values(variable.query)  # raises on anything else


def test_no_hard_coded_hosts_jobs_or_gpus():
    ip_or_host = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b|localhost|:\d{2,5}\b")
    for name, board in BOARDS.items():
        texts = [t.expr for t in queries.targets(name, board)] + [v.query for v in queries.variables(board)]
        for text in texts:
            assert not ip_or_host.search(text), f"{name}: {text}"
            for label, value in re.findall(rf'\b({"|".join(IDENTITY_LABELS)})\s*!?[=~]+\s*"([^"]*)"', text):
                assert value.startswith("$"), f"{name}: {label} fixed to {value!r} in {text}"


def test_every_query_parses_as_promql(tmp_path):
    """promtool parses each expression (template variables filled in) as the expression of a recording rule."""
    values = {name: ".*" for board in BOARDS.values() for name in (v.name for v in queries.variables(board))}
    exprs = [queries.substitute(t.expr, values) for t in all_targets()]
    exprs += [queries.substitute(e, values) for board in BOARDS.values() for e in queries.annotations(board)]
    for board in BOARDS.values():
        for variable in queries.variables(board):
            if variable.type == "query":
                selector, _ = queries.parse_label_values(variable.query)
                exprs.append(queries.substitute(selector or "up", values))
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [{"record": f"dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(exprs)} rules found" in result.stdout


def test_metric_name_extraction():
    expr = (
        'histogram_quantile(0.9, sum by (le, run_id) (rate(dlbench_train_step_seconds_bucket{run_id=~"$run_id"}'
        "[$__rate_interval]))) or vector(0) * on (job) group_left (name) dlbench:gpu_memory_used:ratio offset 5m"
    )
    assert queries.metric_names(expr) == {"dlbench_train_step_seconds_bucket", "dlbench:gpu_memory_used:ratio"}
    assert queries.metric_names('count(up{job=~"$job"} == 0) or vector(0)') == {"up"}


def test_every_metric_a_panel_uses_is_one_we_emit():
    emitted = exported_names()
    recorded = recording_rules()
    for record, expr in recorded.items():
        assert queries.metric_names(expr) <= emitted, f"recording rule {record} reads unknown metrics"
    known = emitted | set(recorded) | PROMETHEUS_BUILTINS
    for target in all_targets():
        unknown = queries.metric_names(target.expr) - known
        assert not unknown, f"{target.dashboard}: panel {target.panel_title!r} uses {unknown}"
    for board in BOARDS.values():
        for expr in queries.annotations(board):
            assert queries.metric_names(expr) <= known, expr
        for variable in queries.variables(board):
            if variable.type == "query":
                selector, _ = queries.parse_label_values(variable.query)
                assert queries.metric_names(selector or "") <= known, variable.query


def test_every_panel_has_a_title_and_description():
    for name, board in BOARDS.items():
        for panel in queries.panels(board):
            assert panel.get("title"), f"{name}: panel {panel['id']} has no title"
            if panel["type"] != "row":
                assert panel.get("description"), f"{name}: {panel['title']} has no description"


def test_every_metric_the_alert_rules_use_is_one_we_emit():
    from dashboards_support import PROMETHEUS_DIR

    known = exported_names() | set(recording_rules()) | PROMETHEUS_BUILTINS
    for group in yaml.safe_load((PROMETHEUS_DIR / "rules" / "dlbench-alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            assert queries.metric_names(rule["expr"]) <= known, rule["alert"]


def test_renderer_cli_reports_bad_input_in_one_line(tmp_path):
    from prometheus_server import free_port

    script = str(DASHBOARDS_DIR / "render.py")
    unreachable = subprocess.run(
        [sys.executable, script, "--prometheus", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 1
    assert (
        unreachable.stderr.startswith("render.py: error: cannot reach Prometheus")
        and "Traceback" not in unreachable.stderr
    )
    unknown = subprocess.run(
        [sys.executable, script, "--out", str(tmp_path), "--dashboard", "nope.json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "unknown dashboard" in unknown.stderr
    bad_since = subprocess.run(
        [sys.executable, script, "--out", str(tmp_path), "--since", "soon"], capture_output=True, text=True, timeout=60
    )
    assert bad_since.returncode == 2 and "Traceback" not in bad_since.stderr


def test_fleet_overview_plots_one_series_per_host_and_links_each_to_its_node_dashboard():
    # 100 hosts x 8 GPUs must stay readable: per-GPU series belong on the node dashboard
    board = BOARDS["gpu-fleet-overview.json"]
    series_panels = [p for p in queries.panels(board) if p["type"] == "timeseries"]
    assert len(series_panels) >= 5
    for panel in series_panels:
        for target in panel["targets"]:
            assert "by (job, hostname)" in target["expr"], f"{panel['title']}: {target['expr']}"
            assert target["legendFormat"] == "{{hostname}}", panel["title"]
        links = panel["fieldConfig"]["defaults"]["links"]
        assert any(
            "/d/dlbench-gpu-node?" in link["url"] and "${__field.labels.hostname}" in link["url"] for link in links
        ), panel["title"]
    hosts = next(p for p in queries.panels(board) if p["title"] == "Hosts")
    assert "${__data.fields.hostname}" in hosts["fieldConfig"]["defaults"]["links"][0]["url"]
    node_uid = BOARDS["gpu-node-detail.json"]["uid"]
    assert all(
        f"/d/{node_uid}?" in link["url"]
        for p in queries.panels(board)
        for link in p.get("fieldConfig", {}).get("defaults", {}).get("links", [])
    )


def test_the_power_cap_is_not_counted_as_slowed_clocks_but_shown_on_its_own():
    recorded = recording_rules()
    assert "sw_power_cap" not in recorded["dlbench:gpu_clocks_limited:max"]
    assert 'reason="sw_power_cap"' in recorded["dlbench:gpu_power_capped:max"]
    for name in ("gpu-fleet-overview.json", "gpu-node-detail.json"):
        exprs = [t.expr for t in queries.targets(name, BOARDS[name])]
        assert any("dlbench:gpu_power_capped:max" in e for e in exprs), name
        assert not any("sw_power_cap" in e for e in exprs), name


def test_a_time_axis_never_carries_a_rate_of_counts():
    for name, board in BOARDS.items():
        for panel in queries.panels(board):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            if panel["type"] != "timeseries" or unit not in ("s", "ms"):
                continue
            for target in panel["targets"]:
                assert not re.search(r"rate\((?![^)]*_seconds_(?:sum|total|bucket))", target["expr"]), (
                    f"{name}: {panel['title']} plots {target['expr']} on a {unit} axis"
                )


def test_xid_events_and_exporter_restarts_are_annotated():
    for name in ("gpu-fleet-overview.json", "gpu-node-detail.json"):
        exprs = queries.annotations(BOARDS[name])
        assert any("dlbench_gpu_last_xid_timestamp_seconds" in e for e in exprs), name
        assert any("process_start_time_seconds" in e for e in exprs), name


def _two_ranks_of_one_run() -> list[dict]:
    """promtool input: what two ranks of one torchrun job across two hosts serve (--metrics-port on each), every
    live series of the catalogue with its labels (run_id, workload, hostname, rank), 15 s apart for 5 minutes. The
    ranks share rank 0's run id, as dlbench run gives it to every rank of a job."""
    series = []
    for rank, host in (("0", "n1"), ("1", "n2")):
        labels = f'job="dlbench-train", run_id="r1", workload="gpt2", hostname="{host}", rank="{rank}"'
        series += [
            {
                "series": f'dlbench_train_info{{{labels}, device="cuda:{rank}", precision="bf16", batch_size="8"}}',
                "values": "1x20",
            },
            {"series": f"dlbench_train_samples_per_second{{{labels}}}", "values": "100x20"},
            {"series": f"dlbench_train_mfu_ratio{{{labels}}}", "values": "0.4x20"},
            {"series": f"dlbench_train_loss{{{labels}}}", "values": "3x20"},
            {"series": f"dlbench_train_steps_total{{{labels}}}", "values": "0+10x20"},
            {"series": f'dlbench_train_step_seconds_bucket{{{labels}, le="0.1"}}', "values": "0+10x20"},
            {"series": f'dlbench_train_step_seconds_bucket{{{labels}, le="+Inf"}}', "values": "0+10x20"},
        ]
    return series


def test_training_run_panels_show_each_rank_and_filter_by_the_rank_variable(tmp_path):
    """Every per-run panel of the training-run dashboard, evaluated by promtool over two ranks' series: with the
    `rank` variable on All each rank is a series of its own (named in the legend), with rank 1 picked only rank 1's,
    and with the host n2 picked (rank still on All) only the rank that trains there. Before the variable existed,
    both ranks' step-time histograms were summed into one quantile; before the per-run panels read the host
    variable, picking a host left every host's ranks on them."""
    board = BOARDS["training-run.json"]
    rank = {v.name: v for v in queries.variables(board)}["rank"]
    assert rank.multi and rank.include_all and rank.all_value == ".*"
    assert queries.parse_label_values(rank.query)[1] == "rank"
    per_run = [
        t
        for t in queries.targets("training-run.json", board)
        if queries.metric_names(t.expr)
        and all(name.startswith("dlbench_train_") for name in queries.metric_names(t.expr))
    ]
    assert len(per_run) >= 10
    # the two headline stats add the selected ranks up (throughput) or average them (MFU): one value per run
    job_level = {"sum": 100.0, "avg": 0.4}  # each rank's series: 100 samples/s, MFU 0.4
    whole = {t.expr: t.expr.split(" by ")[0] for t in per_run if t.expr.startswith(("sum by", "avg by"))}
    assert {t.panel_title for t in per_run if t.expr in whole} == {"Job throughput", "MFU"}
    tests, everything = [], {v.name: ".*" for v in queries.variables(board)}
    for picked, expected in (({}, ("0", "1")), ({"rank": "1"}, ("1",)), ({"hostname": "n2"}, ("1",))):
        exprs = []
        for target in per_run:
            expr = queries.substitute(target.expr, everything | picked)
            if target.expr in whole:
                value = job_level[whole[target.expr]] * (len(expected) if whole[target.expr] == "sum" else 1)
                exprs.append(
                    {"expr": expr, "exp_samples": [{"labels": '{run_id="r1", workload="gpt2"}', "value": value}]}
                )
                continue
            exprs.append(
                {
                    "expr": f"count by (rank) ({expr})",
                    "exp_samples": [{"labels": f'{{rank="{r}"}}', "value": 1} for r in expected],
                }
            )
        tests.append(
            {
                "interval": "15s",
                "input_series": _two_ranks_of_one_run(),
                "promql_expr_test": [dict(e, eval_time="4m") for e in exprs],
            }
        )
    for target in per_run:
        assert target.instant or target.expr in whole or "{{rank}}" in target.legend, target.panel_title
    path = tmp_path / "ranks_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": tests}))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
