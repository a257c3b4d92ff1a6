"""The fleet section of `dlbench report`: `dlbench validate` reports of many hosts as table rows, one row per host
with the worst verdict of each check family, and one row per GPU figure against the fleet median of its model.
The figures and the outliers are `dlbench validate summarize`'s (dlbench/validate/summarize.py), not recomputed."""

from __future__ import annotations

from dlbench.validate import summarize

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
        row.update(summarize.family_verdicts(report))
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


def family_count_rows(reports: list[dict]) -> list[dict[str, str]]:
    """Hosts by their worst verdict in each check family: the lead of the fleet section."""
    return [
        {"family": family, **{verdict: str(n) for verdict, n in counts.items()}}
        for family, counts in summarize.family_counts(reports).items()
    ]


FAMILY_COUNT_COLUMNS = ["family", *summarize.VERDICT_ORDER]


def version_lines(reports: list[dict]) -> list[str]:
    """The versions on which hosts differ from the majority, worded as `dlbench validate summarize` prints them."""
    return summarize.version_drift({"versions": summarize.version_groups(reports)})
