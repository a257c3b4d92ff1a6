"""The report's figures, drawn with matplotlib and returned as inline SVG (no files, no network, text as paths).

Each function takes results and returns SVG markup, or None when no result carries what the figure needs.
"""

from __future__ import annotations

import io
import re
from collections import OrderedDict

from dlbench.errors import UserError
from dlbench.results import fields, tables

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


def labels(results: list[dict]) -> list[str]:
    """A name for each result, unique among `results`: workload and precision, then the host where results come
    from several, then the start time and the file until no two are alike (four runs of one workload on one host
    are four labels, told apart by when they ran)."""
    names = [
        " · ".join(str(p) for p in (fields.workload_name(r).split("::")[-1], fields.setting(r, "precision")) if p)
        for r in results
    ]  # a pytest id: the test's name and parameters suffice
    hosts = {tables.host(r) for r in results}
    for extra in (
        (lambda r: tables.host(r)) if len(hosts) > 1 else None,
        lambda r: tables.started(r)[:16],
        lambda r: tables.started(r)[11:19],
        tables.file_name,
    ):
        if extra is None or len(set(names)) == len(names):
            continue
        repeated = {n for n in names if names.count(n) > 1}
        names = [
            f"{n} · {extra(r)}" if n in repeated and extra(r) and extra(r) not in n else n
            for n, r in zip(names, results)
        ]
    return names


def run_label(result: dict) -> str:
    """A run inside its group: where and when it ran."""
    return " · ".join(p for p in (tables.host(result), tables.started(result)[:16], tables.file_name(result)) if p)


# what a throughput counts, by the kind of sample: images and sequences are not drawn on one axis
_SAMPLE_AXES = (("image", "images/s"), ("sequence", "sequences/s (tokens/s = sequences/s x sequence length)"))


def _sample_kind(result: dict) -> str:
    kind = ((result.get("metrics") or {}).get("throughput") or {}).get("sample")
    if kind in ("image", "sequence"):
        return kind
    return "image" if fields.MATCH_FIELDS["seq_len"](result) is None else "sequence"


def throughput_chart(results: list[dict]) -> str | None:
    """Samples per second, one bar per run, the runs of one workload, settings and device grouped under its name
    (each labelled with its host and start time); images and sequences on separate axes."""
    measured = [r for r in tables.in_groups(results) if fields.HEADLINE_METRICS[2].read(r) is not None]
    panels = [(axis, [r for r in measured if _sample_kind(r) == kind]) for kind, axis in _SAMPLE_AXES]
    panels = [(axis, runs) for axis, runs in panels if runs]
    if not panels:
        return None
    plt = _pyplot()
    rows_per_panel = [len(runs) + len({tables.group_key(r) for r in runs}) for _, runs in panels]
    figure, axes = plt.subplots(
        len(panels),
        1,
        figsize=(9, 0.5 + 0.28 * sum(rows_per_panel) + 0.7 * len(panels)),
        gridspec_kw={"height_ratios": rows_per_panel},
        squeeze=False,
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    for ax, (axis_label, runs) in zip(axes[:, 0], panels):
        ticks, names, row = [], [], 0
        groups = list(OrderedDict.fromkeys(tables.group_key(r) for r in runs))
        for index, key in enumerate(groups):
            ticks.append(row)
            workload, settings, device = key
            names.append(" · ".join(p for p in (workload.split("::")[-1], settings, device) if p))
            row += 1
            members = [r for r in runs if tables.group_key(r) == key]
            positions = list(range(row, row + len(members)))
            values = [fields.HEADLINE_METRICS[2].read(r) for r in members]
            bars = ax.barh(positions, values, height=0.7, color=colours[index % len(colours)])
            for bar in bars:  # an id per run's bar in the SVG: what a browser test counts
                bar.set_gid(f"throughput-run-{drawn}")
                drawn += 1
            ax.bar_label(bars, fmt="{:,.0f}", padding=2, fontsize=8)
            ticks += positions
            names += [f"    {run_label(r)}" for r in members]
            row += len(members)
        ax.set_yticks(ticks, names, fontsize=8)
        for tick, name in zip(ax.get_yticklabels(), names):
            if not name.startswith(" "):
                tick.set_fontweight("bold")  # a group's heading row
        ax.invert_yaxis()
        ax.set_xlim(0, max(fields.HEADLINE_METRICS[2].read(r) for r in runs) * 1.15)  # room for the value labels
        ax.set_xlabel(f"throughput, {axis_label}: one bar per run")
    figure.tight_layout()
    return _svg(figure)


def step_time_chart(results: list[dict]) -> str | None:
    """Step-time distribution per result: a box from the samples, or from the stored percentiles."""
    boxes = []
    ordered = tables.in_groups(results)
    for result, name in zip(ordered, labels(ordered)):
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
        box["label"] = name
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
    ordered = tables.in_groups(results)
    runs = [(name, (r.get("telemetry") or {}).get("series")) for r, name in zip(ordered, labels(ordered))]
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
    ordered = tables.in_groups(results)
    rows = [
        (name, r["metrics"]["mfu"], (r.get("metrics") or {}).get("peak_flops_per_second"))
        for r, name in zip(ordered, labels(ordered))
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
    ordered = tables.in_groups(results)
    for metric in (m for m in fields.HEADLINE_METRICS if m.unit in ("TFLOP/s", "GB/s")):
        rows = [
            (name, metric.read(r) * metric.scale)
            for r, name in zip(ordered, labels(ordered))
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
    ("throughput", "Throughput of every run, grouped by workload, settings and device", throughput_chart),
    ("step-time", "Step-time distribution", step_time_chart),
    ("telemetry", "GPU utilisation, power, clocks and temperature over the run", telemetry_chart),
    ("mfu", "MFU against the GPU's peak", mfu_chart),
    ("rates", "Micro-benchmarks: achieved TFLOP/s and GB/s", rates_chart),
)
