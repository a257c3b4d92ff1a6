"""The report's figures, drawn with matplotlib and returned as inline SVG (no files, no network, text as paths).

Each function takes results and returns SVG markup, or None when no result carries what the figure needs.
"""

from __future__ import annotations

import io
import re
from collections import OrderedDict

from dlbench.errors import UserError
from dlbench.results import fields

INSTALL_HINT = "dlbench report draws its plots with matplotlib: pip install 'dlbench[report]' (or pass only --markdown)"
# the telemetry time series a run may keep (columnar, one list per quantity, `t_seconds` from the window's start)
SERIES_PANELS = (
    ("gpu_utilization_ratio", "GPU utilisation", "%", 100.0),
    ("power_watts", "power", "W", 1.0),
    ("sm_clock_hertz", "SM clock", "MHz", 1e-6),
    ("temperature_celsius", "temperature", "°C", 1.0),
)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    matplotlib.use("Agg")  # no display, and no font cache for a GUI toolkit
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "path",
            "svg.hashsalt": "dlbench",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    import matplotlib.pyplot as plt

    return plt


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    _pyplot().close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: the SVG sits inside HTML
    return re.sub(r"<metadata>.*?</metadata>", "", text, count=1, flags=re.S)  # RDF boilerplate


def label(result: dict) -> str:
    """Short name of a result in a legend: workload, precision, and the host when results come from several."""
    precision = fields.setting(result, "precision")
    host = (result.get("environment") or {}).get("hostname")
    name = fields.workload_name(result).split("::")[-1]  # a pytest id: the test's name and parameters suffice
    return " · ".join(str(part) for part in (name, precision, host) if part)


def throughput_chart(results: list[dict]) -> str | None:
    """Samples per second by workload, one bar per precision (and device)."""
    rows = [
        (
            fields.workload_name(r),
            f"{fields.setting(r, 'precision')} · {fields.device_model(r) or '?'}",
            fields.HEADLINE_METRICS[2].read(r),
            r,
        )
        for r in results
    ]
    rows = [row for row in rows if row[2] is not None]
    if not rows:
        return None
    plt = _pyplot()
    workloads = list(OrderedDict.fromkeys(row[0] for row in rows))
    series = list(OrderedDict.fromkeys(row[1] for row in rows))
    figure, axes = plt.subplots(figsize=(8, 0.6 + 0.45 * len(workloads) * max(1, len(series)) ** 0.5 + 0.6))
    height = 0.8 / len(series)
    for i, name in enumerate(series):
        values = {row[0]: row[2] for row in rows if row[1] == name}
        positions = [w + i * height for w, workload in enumerate(workloads) if workload in values]
        widths = [values[workload] for workload in workloads if workload in values]
        bars = axes.barh(positions, widths, height=height, label=name)
        axes.bar_label(bars, fmt="{:,.0f}", padding=2, fontsize=8)
    axes.set_yticks([w + height * (len(series) - 1) / 2 for w in range(len(workloads))], workloads)
    axes.invert_yaxis()
    axes.set_xlim(0, max(row[2] for row in rows) * 1.12)  # room for the value labels
    axes.set_xlabel("throughput (samples/s: images or sequences)")
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(workloads)), ncol=2)
    return _svg(figure)


def step_time_chart(results: list[dict]) -> str | None:
    """Step-time distribution per result: a box from the samples, or from the stored percentiles."""
    boxes = []
    for result in results:
        summary = fields.step_summary(result)
        stats = (result.get("metrics") or {}).get("step_time_seconds") or {}
        if summary is None:
            continue
        if summary.samples:
            ordered = summary.samples
            box = {
                "med": summary.median,
                "q1": summary.q1,
                "q3": summary.q3,
                "whislo": ordered[0],
                "whishi": ordered[-1],
                "fliers": [],
            }
        else:  # no samples: the box spans what the result kept (p50 to p90, whiskers min and max)
            box = {
                "med": summary.median,
                "q1": stats.get("q1", summary.median),
                "q3": stats.get("q3", stats.get("p90", summary.median)),
                "whislo": stats.get("min", summary.median),
                "whishi": stats.get("max", summary.median),
                "fliers": [],
            }
        box = {key: ([v * 1e3 for v in value] if key == "fliers" else value * 1e3) for key, value in box.items()}
        box["label"] = label(result)
        boxes.append(box)
    if not boxes:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 0.8 + 0.4 * len(boxes)))
    axes.bxp(boxes, orientation="horizontal", showfliers=False)
    axes.invert_yaxis()
    low, high = min(b["whislo"] for b in boxes), max(b["whishi"] for b in boxes)
    if high > 20 * low:  # workloads an order of magnitude apart: a log axis keeps every box readable
        from matplotlib.ticker import FuncFormatter

        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.1, 1, 10, not 10^-1
    axes.set_xlabel("step time (ms): box = quartiles and median, whiskers = fastest and slowest step")
    return _svg(figure)


def telemetry_chart(results: list[dict]) -> str | None:
    """GPU utilisation, power, SM clock and temperature over the timed window, one line per result."""
    runs = [(label(r), (r.get("telemetry") or {}).get("series")) for r in results]
    runs = [(name, series) for name, series in runs if isinstance(series, dict) and series.get("t_seconds")]
    if not runs:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(9, 5.5), sharex=True)
    for ax, (key, title, unit, scale) in zip(axes.flat, SERIES_PANELS):
        for name, series in runs:
            values = series.get(key)
            if values:
                points = [(t, v * scale) for t, v in zip(series["t_seconds"], values) if v is not None]
                ax.plot([t for t, _ in points], [v for _, v in points], label=name, linewidth=1.2)
        ax.set_title(f"{title} ({unit})", fontsize=9)
    for ax in axes[1]:
        ax.set_xlabel("seconds into the timed window")
    handles, names = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=min(3, len(names)), fontsize=8, bbox_to_anchor=(0.5, -0.06))
    figure.tight_layout()
    return _svg(figure)


def mfu_chart(results: list[dict]) -> str | None:
    """Achieved FLOP/s as a share of the GPU's dense peak at the run's precision."""
    rows = [
        (label(r), r["metrics"]["mfu"], (r.get("metrics") or {}).get("peak_flops_per_second"))
        for r in results
        if (r.get("metrics") or {}).get("mfu") is not None
    ]
    if not rows:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 0.8 + 0.35 * len(rows)))
    bars = axes.barh(range(len(rows)), [mfu * 100 for _, mfu, _ in rows], color="#4c72b0")
    axes.bar_label(
        bars,
        labels=[f"{mfu:.1%} of {peak / 1e12:,.0f} TFLOP/s" if peak else f"{mfu:.1%}" for _, mfu, peak in rows],
        padding=2,
        fontsize=8,
    )
    axes.set_yticks(range(len(rows)), [name for name, _, _ in rows])
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.axvline(100, color="grey", linewidth=0.8)
    axes.set_xlabel("MFU: achieved FLOP/s over the GPU's dense peak at the run's precision (%)")
    return _svg(figure)


def rates_chart(results: list[dict]) -> str | None:
    """Micro-benchmarks: achieved TFLOP/s (compute) and GB/s (copies) from each one's median round."""
    panels = []
    for metric in (m for m in fields.HEADLINE_METRICS if m.unit in ("TFLOP/s", "GB/s")):
        rows = [
            (label(r), metric.read(r) * metric.scale)
            for r in results
            if (r.get("workload") or {}).get("task") == "micro-benchmark" and metric.read(r) is not None
        ]
        if rows:
            panels.append((metric, rows))
    if not panels:
        return None
    plt = _pyplot()
    heights = [len(rows) for _, rows in panels]
    figure, axes = plt.subplots(
        len(panels),
        1,
        figsize=(8, 0.9 + 0.32 * sum(heights) + 0.5 * len(panels)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, (metric, rows) in zip(axes[:, 0], panels):
        bars = ax.barh(range(len(rows)), [value for _, value in rows], color="#55a868")
        ax.bar_label(bars, fmt="{:,.4g}", padding=2, fontsize=8)
        ax.set_yticks(range(len(rows)), [name for name, _ in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, max(value for _, value in rows) * 1.15)
        ax.set_xlabel(f"achieved {metric.unit} (median round)")
    figure.tight_layout()
    return _svg(figure)


FIGURES = (
    ("throughput", "Throughput by workload and precision", throughput_chart),
    ("step-time", "Step-time distribution", step_time_chart),
    ("telemetry", "GPU utilisation, power, clocks and temperature over the run", telemetry_chart),
    ("mfu", "MFU against the GPU's peak", mfu_chart),
    ("rates", "Micro-benchmarks: achieved TFLOP/s and GB/s", rates_chart),
)
