"""Draw a dashboard's panels to one PNG from the same Prometheus queries Grafana would run (no Grafana needed).

Panels sit where their gridPos puts them; time series, stats, state timelines and tables are drawn with matplotlib.
It is a faithful-enough look at what each query returns, not a pixel copy of Grafana.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from . import prom, queries  # noqa: E402

# Grafana unit -> (multiplier, suffix) for axis labels and stat values
UNITS = {
    "percentunit": (100, "%"),
    "bytes": (1 / 2**30, " GiB"),
    "hertz": (1e-6, " MHz"),
    "watt": (1, " W"),
    "celsius": (1, " °C"),
    "s": (1, " s"),
    "Bps": (1 / 2**20, " MiB/s"),
    "joule": (1e-3, " kJ"),
    "ops": (1, "/s"),
    "none": (1, ""),
    "dateTimeAsIso": (None, ""),
}
COLORS = {"green": "#37872d", "red": "#c4162a", "orange": "#fa6400", "yellow": "#e0b400", "text": "#444444"}
GRID_UNIT_WIDTH_IN = 0.8
GRID_UNIT_HEIGHT_IN = 0.42
_LEGEND_FIELD = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def legend(template: str, labels: dict) -> str:
    text = _LEGEND_FIELD.sub(lambda m: labels.get(m.group(1), ""), template) if template else ""
    return text or ", ".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"


def format_value(value: float, unit: str) -> str:
    if unit == "dateTimeAsIso":
        return datetime.fromtimestamp(value / 1000).strftime("%Y-%m-%d %H:%M:%S")
    scale, suffix = UNITS.get(unit, (1, ""))
    scaled = value * scale
    digits = 0 if abs(scaled) >= 100 or scaled == int(scaled) else 2
    return f"{scaled:.{digits}f}{suffix}"


def _unit(panel: dict) -> str:
    return panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")


def _draw_timeseries(ax, panel, results):
    unit = _unit(panel)
    scale, suffix = UNITS.get(unit, (1, ""))
    for target, result in results:
        for series in result:
            points = [(datetime.fromtimestamp(t), float(v) * scale) for t, v in series["values"]]
            points = [(t, v) for t, v in points if math.isfinite(v)]
            if points:
                ax.plot(
                    [t for t, _ in points],
                    [v for _, v in points],
                    linewidth=1.2,
                    label=legend(target.legend, series["metric"]),
                )
    if not ax.lines:
        ax.axis("off")
        ax.text(
            0.5, 0.5, _no_value(panel), ha="center", va="center", fontsize=9, color="#888888", transform=ax.transAxes
        )
        return
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.tick_params(labelsize=6)
    ax.set_ylabel(suffix.strip(), fontsize=6)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=5, loc="upper left", ncol=2 if len(ax.lines) > 6 else 1, framealpha=0.6)


def _no_value(panel: dict) -> str:
    return panel.get("fieldConfig", {}).get("defaults", {}).get("noValue", "No data")


def _draw_stat(ax, panel, results):
    unit = _unit(panel)
    entries = []  # (name, value text)
    for target, result in results:
        for series in result:
            points = series.get("values") or [series["value"]]
            value = float(points[-1][1])
            name = legend(target.legend, series["metric"]) if target.legend else ""
            entries.append((name, format_value(value, unit) if math.isfinite(value) else "NaN"))
    ax.axis("off")
    text_mode = panel.get("options", {}).get("textMode")
    if not entries:
        ax.text(
            0.5, 0.5, _no_value(panel), ha="center", va="center", fontsize=9, color="#888888", transform=ax.transAxes
        )
    elif len(entries) == 1 and text_mode != "name":
        name, value = entries[0]
        ax.text(0.5, 0.55, value, ha="center", va="center", fontsize=16, color="#1f60c4", transform=ax.transAxes)
        ax.text(0.5, 0.1, name, ha="center", va="center", fontsize=6, color="#444444", transform=ax.transAxes)
    else:
        lines = [name if text_mode == "name" else f"{name}  {value}".strip() for name, value in entries[:5]]
        ax.text(
            0.5, 0.5, "\n".join(lines), ha="center", va="center", fontsize=8, color="#1f60c4", transform=ax.transAxes
        )


def _draw_state_timeline(ax, panel, results):
    mapping = {}
    for entry in panel.get("fieldConfig", {}).get("defaults", {}).get("mappings", []):
        mapping.update(entry.get("options", {}))
    rows = []
    for target, result in results:
        for series in result:
            rows.append((legend(target.legend, series["metric"]), series["values"]))
    for index, (name, points) in enumerate(rows):
        for (t, v), nxt in zip(points, points[1:] + [None]):
            end = nxt[0] if nxt else t + 1
            state = mapping.get(str(int(float(v))), {"color": "text"}) if math.isfinite(float(v)) else {"color": "text"}
            ax.broken_barh(
                [
                    (
                        mdates.date2num(datetime.fromtimestamp(t)),
                        mdates.date2num(datetime.fromtimestamp(end)) - mdates.date2num(datetime.fromtimestamp(t)),
                    )
                ],
                (index - 0.4, 0.8),
                color=COLORS.get(state.get("color"), state.get("color")),
            )
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=5)
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.tick_params(axis="x", labelsize=6)
    legend_text = "   ".join(f"{v['text']}={k}" for k, v in mapping.items())
    ax.set_xlabel(legend_text, fontsize=6)


def _draw_table(ax, panel, results):
    organize = next((t["options"] for t in panel.get("transformations", []) if t["id"] == "organize"), {})
    hidden = set(organize.get("excludeByName", {}))
    units = {
        o["matcher"]["options"]: o["properties"][0]["value"]
        for o in panel.get("fieldConfig", {}).get("overrides", [])
        if o["properties"]
    }
    rows: dict[tuple, dict] = {}
    label_columns: list[str] = []
    value_columns: list[str] = []
    for target, result in results:
        column = target.legend or f"Value #{target.ref_id}"
        if f"Value #{target.ref_id}" not in hidden and column not in value_columns and "Value" not in hidden:
            value_columns.append(column)
        for series in result:
            labels = {k: v for k, v in series["metric"].items() if k not in hidden}
            for k in labels:
                if k not in label_columns:
                    label_columns.append(k)
            key_labels = {k: v for k, v in labels.items() if k in ("hostname", "gpu", "uuid", "xid", "run_id")}
            row = rows.setdefault(tuple(sorted(key_labels.items())), {})
            row.update(labels)
            row[column] = format_value(float(series["value"][1]), units.get(column, "none"))
    columns = label_columns + [c for c in value_columns if c not in label_columns]
    cells = [[row.get(c, "") for c in columns] for row in rows.values()] or [["No data"] + [""] * (len(columns) - 1)]
    ax.axis("off")
    if columns:
        table = ax.table(cellText=cells[:12], colLabels=columns, loc="upper center", cellLoc="left")
        table.auto_set_font_size(False)
        table.set_fontsize(5.5)
        table.scale(1, 1.1)


DRAWERS = {
    "timeseries": _draw_timeseries,
    "stat": _draw_stat,
    "gauge": _draw_stat,
    "state-timeline": _draw_state_timeline,
    "table": _draw_table,
}


def render_dashboard(
    board: dict,
    name: str,
    prometheus: prom.Prometheus,
    start: float,
    end: float,
    out_dir: Path,
    scrape_interval_s: float = 15,
    chosen: dict[str, str] | None = None,
) -> tuple[Path, int]:
    """Write `<out_dir>/<name>.png`; returns the path and how many panels were drawn."""
    step = max(1.0, (end - start) / 300)
    values, _ = prom.resolve_variables(board, prometheus, start, end, chosen)
    values.update(
        __rate_interval=prom.rate_interval(scrape_interval_s, step),
        __range=f"{int(end - start)}s",
        __range_s=str(int(end - start)),
        __interval=f"{int(step)}s",
    )
    by_panel: dict[int, list] = {}
    for target in queries.targets(name, board):
        by_panel.setdefault(target.panel_id, []).append(
            (target, prom.evaluate(target, values, prometheus, start, end, step))
        )
    panels = queries.panels(board)
    height_units = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) + 2
    fig = plt.figure(figsize=(24 * GRID_UNIT_WIDTH_IN, height_units * GRID_UNIT_HEIGHT_IN), dpi=90)
    fig.suptitle(
        f"{board['title']}   ({datetime.fromtimestamp(start):%H:%M:%S} to {datetime.fromtimestamp(end):%H:%M:%S})",
        fontsize=13,
        x=0.01,
        ha="left",
        y=1 - 0.6 / height_units,
    )
    drawn = 0
    for panel in panels:
        pos = panel["gridPos"]
        top = 1 - (pos["y"] + 2) / height_units
        if panel["type"] == "row":
            fig.text(0.01, top - 0.5 / height_units, panel["title"], fontsize=11, weight="bold")
            continue
        ax = fig.add_axes(
            [
                pos["x"] / 24 + 0.025 / 1,
                top - (pos["h"] - 0.9) / height_units,
                pos["w"] / 24 - 0.035,
                (pos["h"] - 1.6) / height_units,
            ]
        )
        ax.set_title(panel["title"], fontsize=8, loc="left")
        DRAWERS[panel["type"]](ax, panel, by_panel.get(panel["id"], []))
        drawn += 1
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{Path(name).stem}.png"
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path, drawn
