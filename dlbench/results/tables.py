"""The report's tables as rows of display strings, shared by the HTML page and the Markdown summary."""

from __future__ import annotations

import datetime
import os
from collections import OrderedDict

from dlbench.results import fields

NUMERIC_COLUMNS = (
    "samples/s",
    "tokens/s",
    "step p50 / p90 (ms)",
    "TFLOP/s",
    "GB/s",
    "MFU",
    "peak mem (GiB)",
    "power (W)",
    "J/sample",
)
# host, start time and file tell apart the results of one workload and settings (four runs are four rows)
RESULT_COLUMNS = ("workload", "settings", "device", "host", "started (UTC)", "file", "status") + NUMERIC_COLUMNS
ENVIRONMENT_COLUMNS = ("host", "device", "gpu_uuid", "driver", "torch", "cuda", "cudnn", "dlbench")


def _value(metric_name: str, unit: str, result: dict, spec: str) -> str:
    metric = next(m for m in fields.HEADLINE_METRICS if m.name == metric_name and m.unit == unit)
    value = metric.read(result)
    return "" if value is None else format(value * metric.scale, spec)


def settings_text(result: dict) -> str:
    parts = []
    precision = fields.MATCH_FIELDS["precision"](result)
    if precision:
        parts.append(str(precision))
    for name, word in (("batch_size", "batch"), ("seq_len", "seq"), ("world_size", "GPUs")):
        value = fields.MATCH_FIELDS[name](result)
        if value is not None and not (name == "world_size" and value == 1):
            parts.append(f"{word} {value}")
    flags = ("channels_last", "compile", "pad_vocab")
    parts += [name.replace("_", "-") for name in flags if fields.MATCH_FIELDS[name](result)]
    strategy = fields.MATCH_FIELDS["strategy"](result)
    if strategy:
        parts.append(strategy.upper())
    if fields.MATCH_FIELDS["data"](result) != "synthetic":
        parts.append("real data")
    return ", ".join(parts)


def started(result: dict) -> str:
    """The run's start as 'YYYY-MM-DD HH:MM:SS' in UTC, or the text as stored when it is not an ISO time."""
    text = str(result.get("started_at") or "")
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def host(result: dict) -> str:
    return str((result.get("environment") or {}).get("hostname") or "")


def file_name(result: dict) -> str:
    return os.path.basename(str((result.get("source") or {}).get("file") or ""))


def group_key(result: dict) -> tuple:
    """What makes results comparable, in the order a reader scans: workload, settings, device."""
    return (fields.workload_name(result), settings_text(result), fields.device_model(result) or "")


def in_groups(results: list[dict]) -> list[dict]:
    """The results with each group's together, groups in order of first appearance, a group's runs by start time."""
    first_seen: dict = {}
    for index, result in enumerate(results):
        first_seen.setdefault(group_key(result), index)
    return sorted(results, key=lambda r: (first_seen[group_key(r)], started(r), host(r), file_name(r)))


def result_rows(results: list[dict]) -> list[dict[str, str]]:
    rows = []
    for result in in_groups(results):
        p50, p90 = _value("step time p50", "ms", result, ".2f"), _value("step time p90", "ms", result, ".2f")
        rows.append(
            {
                "workload": fields.workload_name(result),
                "settings": settings_text(result),
                "device": fields.device_model(result) or "",
                "host": host(result),
                "started (UTC)": started(result),
                "file": file_name(result),
                "status": str(result.get("status")),
                "samples/s": _value("throughput", "samples/s", result, ",.1f"),
                "tokens/s": _value("throughput", "tokens/s", result, ",.0f"),
                "step p50 / p90 (ms)": " / ".join(v for v in (p50, p90) if v),
                "TFLOP/s": _value("achieved", "TFLOP/s", result, ".4g"),  # 0.01234 on a CPU, 795.3 on an H100
                "GB/s": _value("bandwidth", "GB/s", result, ".4g"),
                "MFU": _value("MFU", "%", result, ".1f") + ("%" if _value("MFU", "%", result, ".1f") else ""),
                "peak mem (GiB)": _value("peak device memory", "GiB", result, ".2f"),
                "power (W)": _value("mean power", "W", result, ".0f"),
                "J/sample": _value("energy per sample", "J", result, ".3f"),
            }
        )
    return rows


# columns that say nothing when every row has the same value: the device is in the environment table already
_DROPPED_WHEN_UNIFORM = {"device": None, "host": None, "status": "completed"}


def used_columns(rows: list[dict[str, str]], columns: tuple[str, ...], drop_uniform: bool = True) -> list[str]:
    """The columns worth showing: at least one row fills them (a CPU-only report has no power column full of
    blanks), and they are not the same device or 'completed' on every row."""

    def uniform(column: str) -> bool:
        values = {row.get(column) for row in rows}
        expected = _DROPPED_WHEN_UNIFORM[column]
        return len(rows) > 1 and len(values) == 1 and (expected is None or values == {expected})

    return [
        c
        for c in columns
        if any(row.get(c) for row in rows) and not (drop_uniform and c in _DROPPED_WHEN_UNIFORM and uniform(c))
    ]


def environment_rows(results: list[dict]) -> list[dict[str, str]]:
    """One row per distinct environment (host and software), in the order results name them.

    A result that records less of its environment is not a different one: pytest-benchmark's `machine_info` names
    the host but no driver, torch or CUDA, so the micro-benchmarks of host gpu-a would otherwise add a second, mostly
    empty gpu-a row. A row whose every known fact equals another row's is folded into that row."""
    seen: OrderedDict = OrderedDict()
    for result in results:
        facts = {k: "" if v is None else str(v) for k, v in fields.environment_facts(result).items()}
        seen.setdefault(tuple(facts.items()), facts)
    rows = list(seen.values())
    return [row for row in rows if not any(other is not row and _knows_more(other, row) for other in rows)]


def _knows_more(fuller: dict[str, str], partial: dict[str, str]) -> bool:
    """`fuller` agrees with every fact `partial` knows and knows at least one more."""
    known = {k: v for k, v in partial.items() if v}
    return all(fuller.get(k) == v for k, v in known.items()) and sum(map(bool, fuller.values())) > len(known)


def notes(results: list[dict]) -> list[str]:
    """Sentences a reader must see: failures, interruptions, and the telemetry's explanations of a slow run."""
    out = []
    for result in in_groups(results):
        where = " ".join(part for part in (host(result), started(result)) if part)
        name = f"{fields.workload_name(result)} ({where})" if where else fields.workload_name(result)  # which run
        if result.get("status") != "completed":
            out.append(f"{name}: {result.get('status')}: {result.get('error') or 'no reason recorded'}")
        for sentence in (result.get("telemetry") or {}).get("explanations") or []:
            out.append(f"{name}: {sentence}")
    return out
