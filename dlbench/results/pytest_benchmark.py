"""pytest-benchmark's saved JSON (`--benchmark-autosave`, `--benchmark-json`) to dlbench results, and back.

The format (pytest-benchmark 4 and 5, `pytest_benchmark/session.py` and `stats.py`): a document with `machine_info`,
`commit_info`, `benchmarks`, `datetime` and `version`; each benchmark has `name`, `fullname`, `group`, `params`,
`param`, `extra_info`, `options` and `stats` (min, max, mean, stddev, rounds, median, iqr, q1, q3, iqr_outliers,
stddev_outliers, outliers, ld15iqr, hd15iqr, ops, total, iterations, and `data`, the per-round times, only with
`--benchmark-save-data`). Times are seconds per iteration of the timed function.

A benchmark becomes one dlbench result whose "steps" are pytest-benchmark's rounds; the original entry rides along
under `source`, so that converting back gives pytest-benchmark exactly what it wrote.
"""

from __future__ import annotations

from dlbench.errors import UserError
from dlbench.results.fields import device_model, step_times
from dlbench.results.tables import settings_text

FORMAT = "pytest-benchmark"
TASK = "micro-benchmark"
# what pytest-benchmark's own compare needs in a file it reads back (`pytest_benchmark/storage.py`, `compare.py`)
_DOCUMENT_KEYS = ("machine_info", "commit_info", "benchmarks", "datetime", "version")


def is_pytest_benchmark(document) -> bool:
    return isinstance(document, dict) and isinstance(document.get("benchmarks"), list) and "machine_info" in document


def _rate(extra: dict, key: str, seconds: float | None) -> float | None:
    amount = extra.get(key)
    return amount / seconds if isinstance(amount, (int, float)) and seconds else None


def to_results(document: dict, source: str = "") -> list[dict]:
    """One dlbench result per benchmark of a pytest-benchmark document."""
    machine = document.get("machine_info") or {}
    cpu = machine.get("cpu") or {}
    results = []
    for bench in document["benchmarks"]:
        stats, extra = bench.get("stats") or {}, bench.get("extra_info") or {}
        median = stats.get("median")
        step_time = {
            "mean": stats.get("mean"),
            "p50": median,
            "min": stats.get("min"),
            "max": stats.get("max"),
            "stdev": stats.get("stddev"),
            "q1": stats.get("q1"),
            "q3": stats.get("q3"),
        }
        metrics = {
            "steps_timed": stats.get("rounds"),
            "step_time_seconds": step_time,
            # achieved rates from the median round: the figure a person quotes, robust to a slow round
            "achieved_flops_per_second": _rate(extra, "flops", median),
            "bytes_per_second": _rate(extra, "bytes", median),
        }
        if isinstance(stats.get("data"), list):
            metrics["step_times_seconds"] = list(stats["data"])
        device_name = extra.get("device_name") or cpu.get("brand_raw")
        # a `dlbench run` converted to this format carries its workload and settings: it becomes that run again,
        # matched with the original and with other runs of the same workload
        from_run = isinstance(extra.get("workload"), dict) and isinstance(extra.get("config"), dict)
        results.append(
            {
                "schema_version": 1,
                "run_id": f"{bench.get('fullname') or bench.get('name')}@{document.get('datetime')}",
                "status": "completed",
                "error": None,
                "started_at": document.get("datetime"),
                "finished_at": document.get("datetime"),
                "workload": (
                    extra["workload"]
                    if from_run
                    else {
                        "name": bench.get("fullname") or bench.get("name"),
                        "task": TASK,
                        "group": bench.get("group"),
                        "params": bench.get("params"),
                    }
                ),
                "config": (
                    extra["config"]
                    if from_run
                    else {
                        "device": extra.get("device"),
                        "precision": extra.get("precision"),
                        "batch_size": None,
                        "seq_len": None,
                        "channels_last": False,
                        "compile": False,
                        "world_size": extra.get("world_size", 1),
                        "params": bench.get("params"),
                    }
                ),
                "metrics": metrics,
                "environment": {
                    "hostname": machine.get("node"),
                    "python": machine.get("python_version"),
                    "os": f"{machine.get('system', '')} {machine.get('release', '')}".strip() or None,
                    "cpu": {"model": cpu.get("brand_raw")},
                    "device_name": device_name,
                    "torch": {"version": extra.get("torch_version")},
                },
                "source": {
                    "format": FORMAT,
                    "file": source,
                    "version": document.get("version"),
                    "machine_info": machine,
                    "commit_info": document.get("commit_info"),
                    "benchmark": bench,
                },
            }
        )
    return results


def stats_of_rounds(seconds: list[float]) -> dict:
    """pytest-benchmark's own statistics of per-round times (one iteration per round), as it saves them."""
    try:
        from pytest_benchmark.stats import Stats
    except ImportError:
        raise UserError(
            "writing pytest-benchmark's format needs pytest-benchmark: pip install pytest-benchmark"
        ) from None
    stats = Stats()
    for value in seconds:
        stats.update(value)
    return {**stats.as_dict(), "data": list(seconds), "iterations": 1}


def _benchmark_from_run(result: dict) -> dict | None:
    seconds = step_times(result)  # in the order measured: pytest-benchmark's `data` is per round, in order
    if seconds is None:
        return None  # pytest-benchmark needs the rounds' times; a summary alone cannot be turned back into them
    name = result["workload"]["name"]
    metrics = result.get("metrics") or {}
    throughput = metrics.get("throughput") or {}
    settings = settings_text(result)
    return {
        "group": "dlbench run",
        "name": name,
        # pytest-benchmark's compare pairs benchmarks by fullname: the same workload at the same settings must have
        # the same one in every run (no run id), as a parametrised test has (`test_x.py::test_y[param]`)
        "fullname": f"dlbench run::{name}" + (f"[{settings}]" if settings else ""),
        "params": None,
        "param": settings or None,
        "extra_info": {
            "run_id": result.get("run_id"),
            "workload": result["workload"],
            "device_name": device_model(result),
            "samples_per_second": throughput.get("samples_per_second"),
            "mfu": metrics.get("mfu"),
            "config": result.get("config"),
        },
        "options": {
            "disable_gc": False,
            "timer": "dlbench.train.timing.StepClock",
            "min_rounds": len(seconds),
            "max_time": None,
            "min_time": None,
            "precision": None,
            "confidence": None,
            "warmup": False,
        },
        "stats": stats_of_rounds(seconds),
    }


def from_results(results: list[dict]) -> tuple[dict, list[str]]:
    """A pytest-benchmark document from dlbench results, and the run ids left out (no step-time samples)."""
    document: dict = {}
    benchmarks, left_out = [], []
    for result in results:
        source = result.get("source") or {}
        if source.get("format") == FORMAT:
            benchmarks.append(source["benchmark"])  # converted from pytest-benchmark: give back what it wrote
            document.setdefault("machine_info", source.get("machine_info"))
            document.setdefault("commit_info", source.get("commit_info"))
            document.setdefault("datetime", result.get("started_at"))
            document.setdefault("version", source.get("version"))
            continue
        bench = _benchmark_from_run(result)
        if bench is None:
            left_out.append(str(result.get("run_id")))
        else:
            benchmarks.append(bench)
            document.setdefault("datetime", result.get("started_at"))
    if "machine_info" not in document:
        env = (results[0].get("environment") or {}) if results else {}
        document["machine_info"] = {
            "node": env.get("hostname"),
            "python_version": env.get("python"),
            "cpu": {"brand_raw": (env.get("cpu") or {}).get("model")},
        }
    document.setdefault("commit_info", {})
    document.setdefault("version", "dlbench")
    document["benchmarks"] = benchmarks
    return {key: document.get(key) for key in _DOCUMENT_KEYS}, left_out
