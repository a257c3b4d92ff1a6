"""Files and directories to results, each bad input refused with one line that names the file and the problem."""

from __future__ import annotations

import json
import math
from pathlib import Path

from dlbench.errors import UserError
from dlbench.results import pytest_benchmark
from dlbench.results.fields import STEP_TIMES_KEYS
from dlbench.train.results import SCHEMA_VERSION
from dlbench.validate import summarize


def _read_json(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a JSON file (not UTF-8 text)") from None
    if not text.strip():
        raise UserError(f"{path}: empty file, not a result")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        # the decoder stops at the end of the text, or inside a string that never closes (a raw newline in a
        # string is a different error): both mean a file cut short, such as a copy interrupted mid-way
        truncated = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string")
        what = (
            "truncated JSON (the file ends before the document does)"
            if truncated
            else f"not valid JSON ({error.msg}, line {error.lineno})"
        )
        raise UserError(f"{path}: {what}") from None


def _is_number(value) -> bool:
    # NaN and Infinity: Python's json reads and writes them, and every statistic they touch becomes NaN, which no
    # test rejects (a verdict of "same", or a traceback deep in the statistics)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_numbers(section, keys: tuple[str, ...], where: str) -> None:
    """Each of `keys` that `section` holds is a number (or null): what compare and report compute with."""
    if not isinstance(section, dict):
        raise UserError(f"{where} is not an object")
    for key in keys:
        if section.get(key) is not None and not _is_number(section[key]):
            raise UserError(f"{where}.{key} is not a number ({section[key]!r})")


# pytest-benchmark's per-benchmark `stats` (pytest_benchmark/stats.py, Stats.fields) that dlbench reads
_BENCHMARK_STATS = ("min", "max", "mean", "stddev", "rounds", "median", "q1", "q3")
_STEP_TIME_STATS = ("mean", "p50", "p90", "p99", "min", "max", "stdev", "q1", "q3")


def _check_pytest_benchmark(document: dict, path: Path) -> None:
    if not document["benchmarks"]:
        raise UserError(f"{path}: pytest-benchmark file with no benchmarks")
    for index, bench in enumerate(document["benchmarks"]):
        if not isinstance(bench, dict) or not isinstance(bench.get("name") or bench.get("fullname"), str):
            raise UserError(f"{path}: benchmarks[{index}] is not a pytest-benchmark entry (no name)")
        _check_numbers(bench.get("stats"), _BENCHMARK_STATS, f"{path}: benchmarks[{index}].stats")


def _check_run_result(document: dict, path: Path) -> dict:
    version = document.get("schema_version")
    # a reader knows every version up to the one this dlbench writes; a newer file needs a newer dlbench
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise UserError(
            f"{path}: unknown result schema_version {version!r} (this dlbench reads 1 to {SCHEMA_VERSION}; "
            "a newer dlbench wrote it?)"
        )
    if not isinstance(document.get("workload"), dict) or "name" not in document["workload"]:
        raise UserError(f"{path}: result has no workload name")
    metrics = document.get("metrics")
    if metrics is not None:
        _check_numbers(metrics, ("steps_timed",), f"{path}: metrics")
        if metrics.get("step_time_seconds") is not None:
            _check_numbers(metrics["step_time_seconds"], _STEP_TIME_STATS, f"{path}: metrics.step_time_seconds")
        _check_numbers(metrics, ("timed_seconds", "samples_timed"), f"{path}: metrics")
        if isinstance(metrics.get("throughput"), dict):
            _check_numbers(metrics["throughput"], ("samples_per_second",), f"{path}: metrics.throughput")
        for key in STEP_TIMES_KEYS:
            times = metrics.get(key)
            if times is None:
                continue
            bad = [t for t in times if not _is_number(t)] if isinstance(times, list) else [times]
            if bad:
                raise UserError(f"{path}: metrics.{key} holds {bad[0]!r}, not a step time in seconds")
    document.setdefault("source", {"format": "dlbench run", "file": str(path)})
    return document


def load_file(path: str | Path, validate_reports: list[dict] | None = None) -> list[dict]:
    """The results in one file: one for a `dlbench run` result, one per benchmark for pytest-benchmark. A
    `dlbench validate` report is checked and appended to `validate_reports` where the caller reads them (report
    does, compare does not), and adds no result."""
    path = Path(path)
    document = _read_json(path)
    if summarize.is_report(document):
        if validate_reports is None:
            raise UserError(f"{path}: a dlbench validate report, not a run result (dlbench report reads it)")
        validate_reports.append(summarize.check_report(document, path))
        return []
    if pytest_benchmark.is_pytest_benchmark(document):
        _check_pytest_benchmark(document, path)
        return pytest_benchmark.to_results(document, str(path))
    if isinstance(document, dict) and "schema_version" in document:
        return [_check_run_result(document, path)]
    raise UserError(f"{path}: neither a dlbench result (no schema_version) nor a pytest-benchmark file")


def load_path(path: str | Path, validate_reports: list[dict] | None = None) -> list[dict]:
    """A file, or every *.json under a directory (pytest-benchmark's .benchmarks/ tree included)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise UserError(f"{path}: directory holds no .json results")
        return [result for file in files for result in load_file(file, validate_reports)]
    return load_file(path, validate_reports)


def load_paths(paths: list[str], validate_reports: list[dict] | None = None) -> list[dict]:
    return [result for path in paths for result in load_path(path, validate_reports)]
