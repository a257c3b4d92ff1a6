"""Read the dashboards' JSON back: every panel query and template variable, with Grafana's variables filled in.

No grafana-foundation-sdk here: the tests and the PNG renderer read what Grafana would read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"

# Grafana's built-in interval variables, as a 1-hour dashboard with a 15 s scrape interval would fill them.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.*),\s*)?(?P<label>\w+)\)$", re.S)


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel_id: int
    panel_title: str
    panel_type: str
    ref_id: str
    expr: str
    legend: str
    instant: bool


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    query: str
    multi: bool
    include_all: bool
    all_value: str | None = None


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def dashboards() -> dict[str, dict]:
    return {path.name: load(path) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def panels(board: dict) -> list[dict]:
    """Every panel, rows' nested panels included (collapsed rows keep theirs inside)."""
    found = []
    for panel in board.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def targets(name: str, board: dict) -> list[Target]:
    return [
        Target(
            name,
            panel["id"],
            panel.get("title", ""),
            panel["type"],
            target.get("refId", ""),
            target["expr"],
            target.get("legendFormat", ""),
            bool(target.get("instant")),
        )
        for panel in panels(board)
        if panel["type"] != "row"
        for target in panel.get("targets", [])
    ]


def annotations(board: dict) -> list[str]:
    """The PromQL of the dashboard's Prometheus annotations (Grafana's built-in one has none)."""
    return [a["expr"] for a in board.get("annotations", {}).get("list", []) if a.get("expr")]


def variables(board: dict) -> list[Variable]:
    return [
        Variable(
            v["name"],
            v["type"],
            v["query"] if isinstance(v.get("query"), str) else v.get("query", {}).get("query", ""),
            bool(v.get("multi")),
            bool(v.get("includeAll")),
            v.get("allValue") or None,
        )
        for v in board.get("templating", {}).get("list", [])
    ]


def parse_label_values(query: str) -> tuple[str | None, str]:
    """`label_values(selector, label)` -> (selector or None, label)."""
    match = _LABEL_VALUES.match(query.strip())
    if not match:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match.group("selector"), match.group("label")


def substitute(expr: str, values: dict[str, str]) -> str:
    """Fill in $var and ${var} the way Grafana does before sending a query to Prometheus. `values` holds the
    template variables (already regex-escaped/joined as Grafana would); unknown names are an error."""
    merged = {**BUILTINS, **values}

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in merged:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return merged[name]

    return _VARIABLE.sub(replace, expr)


def regex_value(selected: list[str]) -> str:
    """A multi-value selection as Grafana formats it for Prometheus: regex-escaped, joined with |."""
    escaped = [re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\\\1", value) for value in selected]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_BRACES = re.compile(r"\{[^}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "atan2",
}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads (functions, keywords, label names and durations left out)."""
    text = _STRING.sub('""', expr)
    text = _GROUPING.sub(" ", text)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
