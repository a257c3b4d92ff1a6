"""`dlbench report`'s two documents: one self-contained HTML page (inline CSS and SVG, no script, no network) and a
Markdown summary for an issue or a wiki."""

from __future__ import annotations

import datetime
import html

from dlbench import __version__
from dlbench.results import fleet, plots, tables

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 11px; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 3px 6px; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta, .empty { color: #666; } figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; } td.wrap { white-space: normal; min-width: 8em; word-break: break-word; }
"""
_NUMERIC = set(tables.NUMERIC_COLUMNS) | set(fleet.NUMERIC_COLUMNS)
_WRAPPED = ("workload", "settings", "device")
_CELL_CLASS = {**{c: " class=num" for c in _NUMERIC}, **{c: " class=wrap" for c in _WRAPPED}}


def _table(rows: list[dict[str, str]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td{_CELL_CLASS.get(c, '')}>{html.escape(row.get(c, ''))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _counts(results: list[dict], reports: list[dict]) -> str:
    counts = [f"{len(results)} result(s)"] if results or not reports else []
    if reports:
        counts.append(f"{len(reports)} validation report(s)")
    return ", ".join(counts)


def _fleet_html(reports: list[dict], tolerance: float) -> list[str]:
    figures = fleet.figure_rows(reports, tolerance)
    drift = fleet.version_lines(reports)
    parts = [
        '<h2 id="fleet">Fleet validation</h2>',
        "<h3>Hosts by their worst verdict in each check family</h3>",
        _table(fleet.family_count_rows(reports), fleet.FAMILY_COUNT_COLUMNS),
        "<h3>Versions that differ across the fleet (golden: the majority)</h3>",
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in drift) + "</ul>"
        if drift
        else '<p class="empty">Every host carries the same versions.</p>',
        "<h3>Every host</h3>",
        _table(fleet.host_rows(reports), fleet.HOST_COLUMNS + fleet.families(reports)),
        f"<h2>GPUs against the fleet median of their model (outlier: more than {tolerance:.0%} below)</h2>",
    ]
    if figures:
        parts.append(_table(figures, fleet.FIGURE_COLUMNS))
    else:
        parts.append('<p class="empty">No GPU model has three or more GPUs with a measured rate to compare.</p>')
    lines = fleet.outlier_lines(reports, tolerance)
    parts.append(
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"
        if lines
        else '<p class="empty">No outlier.</p>'
    )
    return parts


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def render_html(
    results: list[dict], title: str = "dlbench report", reports: list[dict] = (), tolerance: float = 0.05
) -> str:
    """The page: run results (environment, table, figures) where there are any, then the fleet of validation
    `reports` where there are any."""
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{_counts(results, reports)}, generated {_now()} by dlbench {__version__}</p>',
    ]
    if results or not reports:
        parts += _results_html(results)
    if reports:
        parts += _fleet_html(reports, tolerance)
    body = "\n".join(parts)
    # the Content-Security-Policy forbids every fetch: the page must stand alone, and a browser proves it does
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        f'img-src data:">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _results_html(results: list[dict]) -> list[str]:
    rows = tables.result_rows(results)
    env_rows = tables.environment_rows(results)
    parts = [
        "<h2>Environment</h2>",
        _table(env_rows, tables.used_columns(env_rows, tables.ENVIRONMENT_COLUMNS, drop_uniform=False)),
        "<h2>Results</h2>",
        _table(rows, tables.used_columns(rows, tables.RESULT_COLUMNS)),
    ]
    notes = tables.notes(results)
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    for figure_id, caption, draw in plots.FIGURES:
        svg = draw(results)
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        if svg is None:
            parts.append(f'<p class="empty" id="no-{figure_id}">No result carries the data for this figure.</p>')
        else:
            parts.append(f'<figure id="figure-{figure_id}">{svg}</figure>')
    return parts


def _markdown_table(rows: list[dict[str, str]], columns: list[str]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if c in _NUMERIC else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(
    results: list[dict], title: str = "dlbench report", reports: list[dict] = (), tolerance: float = 0.05
) -> str:
    out = [f"# {title}", "", f"{_counts(results, reports)}, generated {_now()} by dlbench {__version__}."]
    if results or not reports:
        out += _results_markdown(results)
    if reports:
        out += _fleet_markdown(reports, tolerance)
    return "\n".join(out) + "\n"


def _fleet_markdown(reports: list[dict], tolerance: float) -> list[str]:
    figures = fleet.figure_rows(reports, tolerance)
    out = [
        "",
        "## Fleet validation",
        "",
        _markdown_table(fleet.host_rows(reports), fleet.HOST_COLUMNS + fleet.families(reports)),
        "",
    ]
    out += [f"## GPUs against the fleet median of their model (outlier: more than {tolerance:.0%} below)", ""]
    out.append(
        _markdown_table(figures, fleet.FIGURE_COLUMNS)
        if figures
        else "No GPU model has three or more GPUs with a measured rate to compare."
    )
    lines = fleet.outlier_lines(reports, tolerance)
    out += [""] + ([f"- **{line}**" for line in lines] if lines else ["No outlier."])
    return out


def _results_markdown(results: list[dict]) -> list[str]:
    rows = tables.result_rows(results)
    env_rows = tables.environment_rows(results)
    out = [
        "",
        "## Results",
        "",
        _markdown_table(rows, tables.used_columns(rows, tables.RESULT_COLUMNS)),
        "",
        "## Environment",
        "",
        _markdown_table(env_rows, tables.used_columns(env_rows, tables.ENVIRONMENT_COLUMNS, drop_uniform=False)),
    ]
    notes = tables.notes(results)
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return out
