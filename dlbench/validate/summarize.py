"""`dlbench validate summarize DIR`: many hosts' reports side by side, and each GPU against the fleet median.

Hosts are grouped by GPU model (identical hardware only is compared). For every per-GPU figure of the compute and
memory checks, a GPU more than the outlier fraction below the median of all GPUs of its model in the fleet is named:
identical nodes vary by about 0.1% on a synthetic benchmark, so 5% below the peers is an outlier (facts.md, §2).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from dlbench import atomic
from dlbench.errors import UserError
from dlbench.validate.report import FAIL, SCHEMA_VERSION

COMPARED_FAMILIES = ("compute", "memory", "interconnect", "burnin", "training")


def is_report(data) -> bool:
    """Whether a JSON document says it is a `dlbench validate` report (other JSON files are left out)."""
    return isinstance(data, dict) and isinstance(data.get("tool"), dict) and data["tool"].get("name") == "dlbench validate"


def check_report(data: dict, path) -> dict:
    """`data`, a report by its own word, checked for what a summary needs; refused with one line naming `path`."""
    if data.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{path}: report schema_version {data.get('schema_version')}, this dlbench reads "
                        f"{SCHEMA_VERSION}")
    problem = _malformed(data)
    if problem:
        raise UserError(f"{path}: not a complete dlbench validate report ({problem})")
    data["_path"] = str(path)
    return data


def load_reports(folder: Path) -> list[dict]:
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of reports")
    reports = []
    for path in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{path}: not a readable JSON report ({error})") from None
        if is_report(data):  # other JSON files (a summary written earlier) are not reports
            reports.append(check_report(data, path))
    if not reports:
        raise UserError(f"{folder}: no dlbench validate reports (*.json) found")
    return reports


def _malformed(report: dict) -> str | None:
    """What a summary needs of a report and this one lacks (a truncated or hand-edited file), or None. The full
    JSON Schema (dlbench/data/validate-report.schema.json) needs `jsonschema`, which is a test dependency only."""
    if not isinstance(report.get("host"), (str, type(None))) or not isinstance(report.get("verdict"), str):
        return "no host or verdict"
    if not isinstance(report.get("environment", {}), dict) or not isinstance(report.get("checks"), list):
        return "no list of checks"
    gpus = report.get("environment", {}).get("gpus", [])
    if not isinstance(gpus, list) or not all(isinstance(gpu, dict) and isinstance(gpu.get("name"), str) for gpu in gpus):
        return "environment.gpus is not a list of named GPUs"
    for check in report["checks"]:
        if not isinstance(check, dict) or not all(isinstance(check.get(k), str) for k in ("id", "family", "verdict")):
            return "a check without id, family or verdict"
        if not isinstance(check.get("per_gpu", {}), dict):
            return f"check {check['id']}: per_gpu is not an object"
    return None


def gpu_model(report: dict) -> str:
    names = sorted({gpu["name"] for gpu in report.get("environment", {}).get("gpus", [])})
    return " + ".join(names) if names else "no GPU"


def against_median(reports: list[dict]) -> list[dict]:
    """Each (host, GPU, rate check) against the median of the same check on all GPUs of its model in the fleet,
    where the model has at least three such figures."""
    figures: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
    for report in reports:
        for check in report["checks"]:
            if check["family"] not in COMPARED_FAMILIES or check["verdict"] == "SKIP":
                continue
            if not check.get("unit", "").endswith("/s"):
                continue  # only rates (TFLOP/s, GB/s, images/s): higher is better and identical hardware agrees
            for gpu, value in check.get("per_gpu", {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    figures.setdefault((gpu_model(report), check["id"]), []).append((report["host"], gpu, value))
    found = []
    for (model, check_id), values in sorted(figures.items()):
        if len(values) < 3:
            continue  # a median of two says nothing about which one is off
        median = statistics.median(value for _, _, value in values)
        for host, gpu, value in values:
            below = round(1 - value / median, 4) if median > 0 else 0.0
            found.append({"host": host, "gpu": gpu, "model": model, "check": check_id, "value": value,
                          "median": median, "below_median": below})
    return found


def is_outlier(figure: dict, tolerance: float) -> bool:
    return figure["median"] > 0 and figure["value"] < (1 - tolerance) * figure["median"]


def outliers(reports: list[dict], tolerance: float) -> list[dict]:
    """Each (host, GPU, check) more than `tolerance` below the median of its model's GPUs in the fleet."""
    return [figure for figure in against_median(reports) if is_outlier(figure, tolerance)]


def describe_outlier(item: dict) -> str:
    """An outlier in one sentence, as the console and `dlbench report` show it."""
    return (f"outlier {item['host']} GPU {item['gpu']} ({item['model']}): {item['check']} {item['value']:.4g}, "
            f"{item['below_median']:.1%} below the fleet median {item['median']:.4g}")


def summary(reports: list[dict], tolerance: float) -> dict:
    check_ids = sorted({check["id"] for report in reports for check in report["checks"]})
    hosts = []
    for report in reports:
        verdicts = {check["id"]: {"verdict": check["verdict"], "measured": check.get("measured"),
                                  "unit": check.get("unit", "")} for check in report["checks"]}
        hosts.append({"host": report["host"], "model": gpu_model(report), "verdict": report["verdict"],
                      "report": report["_path"], "checks": verdicts})
    return {"schema_version": SCHEMA_VERSION, "hosts": hosts, "checks": check_ids,
            "outlier_tolerance": tolerance, "outliers": outliers(reports, tolerance)}


def _cell(entry: dict | None) -> str:
    if entry is None:
        return ""
    style = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim", "INFO": "cyan"}[entry["verdict"]]
    measured = entry["measured"]
    value = f" {measured:.4g}" if isinstance(measured, float) else f" {measured}" if isinstance(measured, int) else ""
    return f"[{style}]{entry['verdict']}[/]{value}"


def main(folder: Path, tolerance: float, output: Path | None) -> int:
    from rich.console import Console
    from rich.table import Table

    if output is not None:
        atomic.check_writable(output)
    result = summary(load_reports(folder), tolerance)
    console = Console()
    table = Table(title=f"dlbench validate: {len(result['hosts'])} hosts")
    table.add_column("check")
    for host in result["hosts"]:
        table.add_column(f"{host['host']}\n{host['model']}\n{host['verdict']}", overflow="fold")
    for check_id in result["checks"]:
        table.add_row(check_id, *(_cell(host["checks"].get(check_id)) for host in result["hosts"]))
    console.print(table)
    for item in result["outliers"]:
        console.print(f"[bold red]outlier[/]{describe_outlier(item).removeprefix('outlier')}", highlight=False)
    if output is not None:
        atomic.write_json(output, result)
    failed = any(host["verdict"] == FAIL for host in result["hosts"])
    return 1 if failed or result["outliers"] else 0
