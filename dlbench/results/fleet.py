"""The fleet section of `dlbench report`: `dlbench validate` reports of many hosts as table rows, one row per host
with the worst verdict of each check family, and one row per GPU figure against the fleet median of its model.
The figures and the outliers are `dlbench validate summarize`'s (dlbench/validate/summarize.py), not recomputed."""

from __future__ import annotations

from dlbench.validate import summarize
from dlbench.validate.report import FAIL, INFO, PASS, SKIP, WARN

# the verdict a family shows is its worst check's: one FAIL rejects the host, as it does in the report itself
_SEVERITY = {SKIP: 0, INFO: 1, PASS: 2, WARN: 3, FAIL: 4}
HOST_COLUMNS = ["host", "GPU model", "verdict"]
FIGURE_COLUMNS = ["host", "GPU", "GPU model", "check", "value", "fleet median", "vs median", "outlier"]
NUMERIC_COLUMNS = ("value", "fleet median", "vs median")


def families(reports: list[dict]) -> list[str]:
    """The check families in the order the first report that has each one ran them."""
    seen: dict[str, None] = {}
    for report in reports:
        for check in report["checks"]:
            seen.setdefault(check["family"], None)
    return list(seen)


def host_rows(reports: list[dict]) -> list[dict[str, str]]:
    rows = []
    for report in reports:
        row = {
            "host": report["host"] or "(unnamed)",
            "GPU model": summarize.gpu_model(report),
            "verdict": report["verdict"],
        }
        for check in report["checks"]:
            current = row.get(check["family"])
            if current is None or _SEVERITY.get(check["verdict"], 0) > _SEVERITY.get(current, 0):
                row[check["family"]] = check["verdict"]
        rows.append(row)
    return rows


def figure_rows(reports: list[dict], tolerance: float) -> list[dict[str, str]]:
    rows = []
    for figure in summarize.against_median(reports):
        rows.append(
            {
                "host": figure["host"] or "(unnamed)",
                "GPU": figure["gpu"],
                "GPU model": figure["model"],
                "check": figure["check"],
                "value": f"{figure['value']:.4g}",
                "fleet median": f"{figure['median']:.4g}",
                "vs median": f"{-figure['below_median']:+.1%}",
                "outlier": "OUTLIER" if summarize.is_outlier(figure, tolerance) else "",
            }
        )
    return rows


def outlier_lines(reports: list[dict], tolerance: float) -> list[str]:
    """One sentence per outlier, worded as `dlbench validate summarize` prints it."""
    return [summarize.describe_outlier(item) for item in summarize.outliers(reports, tolerance)]
