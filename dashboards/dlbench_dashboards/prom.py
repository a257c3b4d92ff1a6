"""Run the dashboards' queries against a Prometheus over its HTTP API, filling template variables as Grafana does.

Used by render.py (PNG panels without Grafana) and by the live test, so both see exactly what Grafana would ask.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from . import queries


class PrometheusError(RuntimeError):
    pass


@dataclass
class Prometheus:
    url: str  # e.g. http://127.0.0.1:9090
    timeout: float = 10.0

    def get(self, path: str, **params) -> object:
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url.rstrip('/')}{path}?{query}", timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
            raise PrometheusError(f"{path}: {body.get('error', error)}") from None
        except (urllib.error.URLError, OSError) as error:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {error}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body.get('error')}")
        return body["data"]

    def instant(self, expr: str, at: float) -> list[dict]:
        return self.get("/api/v1/query", query=expr, time=at)["result"]

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.get("/api/v1/query_range", query=expr, start=start, end=end, step=step)["result"]

    def label_values(self, label: str, selector: str | None, start: float, end: float) -> list[str]:
        params = {"start": start, "end": end}
        if selector:
            params["match[]"] = selector
        return self.get(f"/api/v1/label/{label}/values", **params)


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def resolve_variables(
    board: dict, prometheus: Prometheus, start: float, end: float, chosen: dict[str, str] | None = None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Fill the board's variables in order, like Grafana on load: `All` for multi-value variables, the first
    value for single-value ones, unless `chosen` names a value. Returns (values for substitution, options seen)."""
    chosen = chosen or {}
    values: dict[str, str] = {}
    options: dict[str, list[str]] = {}
    for variable in queries.variables(board):
        if variable.type != "query":
            continue
        selector, label = queries.parse_label_values(variable.query)
        if selector:
            selector = queries.substitute(selector, values)
        found = sorted(prometheus.label_values(label, selector, start, end), key=_natural_key)
        options[variable.name] = found
        if variable.name in chosen:
            values[variable.name] = queries.regex_value([chosen[variable.name]])
        elif variable.multi and variable.include_all:
            # Grafana's `All`: the custom all value, else every option offered
            values[variable.name] = variable.all_value or (queries.regex_value(found) if found else "")
        elif found:
            values[variable.name] = queries.regex_value([found[0]])
        else:
            values[variable.name] = ""
    return values, options


def rate_interval(scrape_interval_s: float, step_s: float) -> str:
    """Grafana's $__rate_interval: max(interval + scrape interval, 4 x scrape interval)."""
    return f"{int(max(step_s + scrape_interval_s, 4 * scrape_interval_s))}s"


def evaluate(
    target: queries.Target, values: dict[str, str], prometheus: Prometheus, start: float, end: float, step: float
) -> list[dict]:
    """The target's result: an instant vector at `end` for instant targets, else a range matrix."""
    expr = queries.substitute(target.expr, values)
    if target.instant:
        return prometheus.instant(expr, end)
    return prometheus.range(expr, start, end, step)
