"""Synthetic `dlbench run` results with known step-time distributions, shaped like dlbench/train/runner.py writes."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

from dlbench.results.pytest_benchmark import stats_of_rounds
from dlbench.train.timing import step_statistics

# H100 SXM dense peaks by precision, as dlbench/data/gpu_peaks.json has them
H100_DENSE_PEAK = {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 67e12, "auto": 989.4e12}


def step_times(median_ms: float, spread: float, count: int = 60, seed: int = 0) -> list[float]:
    """`count` step times in seconds around `median_ms`, normally scattered with standard deviation `spread` (a
    fraction of the median), floored at a tenth of the median (a step never takes no time)."""
    rng = random.Random(seed)
    return [max(median_ms * 0.1, rng.gauss(median_ms, median_ms * spread)) / 1e3 for _ in range(count)]


def make_result(
    workload: str = "resnet50",
    times: list[float] | None = None,
    keep_samples: bool = True,
    started_at: str = "2026-11-30T01:00:00+00:00",
    status: str = "completed",
    telemetry: dict | None = None,
    flops_per_sample: float = 2.46e10,
    **config,
) -> dict:
    times = step_times(100.0, 0.01) if times is None else times
    batch = config.get("batch_size", 256)
    image = workload.startswith(("resnet", "vit", "cifar", "mnist"))
    seq_len = None if image else config.get("seq_len", 1024)
    settings = {
        "workload": workload,
        "device": "cuda:0",
        "batch_size": batch,
        "seq_len": seq_len,
        "steps": len(times),
        "warmup": 3,
        "duration": None,
        "precision": "bf16",
        "channels_last": False,
        "compile": False,
        "optimizer": "sgd",
        "seed": 0,
        "data": "synthetic",
        "workers": 4,
        "output": None,
    }
    settings.update(config)
    timed = sum(times)
    throughput = len(times) * batch / timed
    metrics = {
        "steps_timed": len(times),
        "samples_timed": len(times) * batch,
        "timed_seconds": timed,
        "throughput": {"samples_per_second": throughput, "tokens_per_second": None if image else throughput * seq_len},
        "step_time_seconds": step_statistics(times),
        "achieved_flops_per_second": throughput * flops_per_sample,
        "peak_flops_per_second": H100_DENSE_PEAK[settings["precision"]],
        "mfu": throughput * flops_per_sample / H100_DENSE_PEAK[settings["precision"]],
        "peak_device_memory_bytes": 40 * 2**30,
        "loss": {"first": 6.9, "last": 6.7},
    }
    if keep_samples:
        metrics["step_times_seconds"] = times
    return {
        "schema_version": 1,
        "run_id": f"{workload}-{started_at}",
        "status": status,
        "error": None,
        "started_at": started_at,
        "finished_at": started_at,
        "workload": {"name": workload, "batch_size": batch, "seq_len": seq_len},
        "config": settings,
        "metrics": metrics if status != "failed" else None,
        "telemetry": (
            telemetry
            if telemetry is not None
            else {
                "gpu": {
                    "name": "NVIDIA H100 80GB HBM3",
                    "uuid": "GPU-1",
                    "power_mean_watts": 650.0,
                    "utilization_mean_ratio": 0.97,
                }
            }
        ),
        "environment": {
            "hostname": "gpu-a",
            "device_name": "NVIDIA H100 80GB HBM3",
            "driver_version": "580.95.05",
            "torch": {"version": "2.13.0", "cuda": "13.0", "cudnn": 91300},
        },
    }


def write(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def median(values: list[float]) -> float:
    return statistics.median(values)


def telemetry_series(samples: int, power_watts: float, phase: float) -> dict:
    """A timed window's GPU series as a run would keep it (columnar, 0.5 s apart): busy GPU, power swinging around
    `power_watts`, a clock drop late in the run, temperature settling."""
    return {
        "t_seconds": [i * 0.5 for i in range(samples)],
        "gpu_utilization_ratio": [min(1.0, 0.9 + 0.08 * math.sin(i / 5 + phase)) for i in range(samples)],
        "power_watts": [power_watts + 30 * math.sin(i / 7 + phase) for i in range(samples)],
        "sm_clock_hertz": [1.98e9 - 1e8 * (i > samples * 0.7) for i in range(samples)],
        "temperature_celsius": [45 + 25 * (1 - math.exp(-i / 20)) for i in range(samples)],
    }


# workload, precision, median step ms, batch, training FLOPs per sample (ResNet-50 ~24.6 GFLOP per image; GPT-2 124M
# ~0.855 GFLOP per token x 1024 tokens), mean power
REPORT_RUNS = (
    ("resnet50", "bf16", 85.0, 256, 2.46e10, 640.0),
    ("resnet50", "tf32", 135.0, 256, 2.46e10, 600.0),
    ("gpt2", "bf16", 95.0, 16, 8.76e11, 670.0),
    ("bert-base", "bf16", 60.0, 32, 3.3e11, 610.0),
)


def write_report_runs(directory: Path) -> list[Path]:
    """Four H100-shaped run results with step-time samples and telemetry series, and a pytest-benchmark file of two
    micro-benchmarks: what a report is made from."""
    paths = []
    for i, (workload, precision, step_ms, batch, flops, power) in enumerate(REPORT_RUNS):
        result = make_result(
            workload,
            times=step_times(step_ms, 0.02, count=120, seed=i),
            precision=precision,
            batch_size=batch,
            flops_per_sample=flops,
        )
        gpu = result["telemetry"]["gpu"]
        gpu.update(power_mean_watts=power, energy_per_sample_joules=power * step_ms / 1e3 / batch)
        result["telemetry"]["series"] = telemetry_series(60, power, i)
        paths.append(write(directory / f"{workload}-{precision}.json", result))
    micro = pytest_benchmark_document(median_ms=1.4)  # an 8192^3 bf16 matmul at about 785 TFLOP/s
    micro["benchmarks"][0]["extra_info"]["flops"] = 2 * 8192**3
    micro["benchmarks"].append(
        pytest_benchmark_entry(
            "benchmarks/micro/test_memory.py::test_device_copy", step_times(0.8, 0.01, 40, 7), work={"bytes": 2 * 2**30}
        )
    )
    paths.append(write(directory / "micro" / "0001_micro.json", micro))
    return paths


def pytest_benchmark_entry(name: str, seconds: list[float], precision: str = "bf16", work: dict | None = None) -> dict:
    """One benchmark as pytest-benchmark saves it; `work` is what the micro suite records ({"flops": ...} or
    {"bytes": ...}; default a 1 TFLOP call)."""
    ordered = sorted(seconds)
    stats = stats_of_rounds(seconds)
    return {
        "group": "matmul",
        "name": name.split("::")[-1],
        "fullname": name,
        "params": {"precision": precision},
        "param": precision,
        "extra_info": {
            **(work or {"flops": 1e12}),
            "precision": precision,
            "device": "cuda:0",
            "device_name": "NVIDIA H100 80GB HBM3",
        },
        "options": {
            "disable_gc": False,
            "timer": "perf_counter",
            "min_rounds": len(ordered),
            "max_time": 1.0,
            "min_time": 5e-06,
            "precision": None,
            "confidence": None,
            "warmup": False,
        },
        "stats": stats,
    }


def pytest_benchmark_document(median_ms: float = 4.0, seed: int = 0, save_data: bool = True) -> dict:
    """A pytest-benchmark 5 document (`--benchmark-autosave --benchmark-save-data`) with one matmul benchmark whose
    rounds take about `median_ms`; its keys are those of a real file (tests/test_micro_suite.py checks that)."""
    bench = pytest_benchmark_entry(
        "benchmarks/micro/test_compute.py::test_matmul[bf16]", step_times(median_ms, 0.01, 40, seed)
    )
    if not save_data:
        del bench["stats"]["data"]
    return {
        "machine_info": {
            "node": "gpu-a",
            "processor": "x86_64",
            "machine": "x86_64",
            "python_version": "3.12.3",
            "system": "Linux",
            "release": "6.8.0",
            "cpu": {"brand_raw": "AMD EPYC 9654"},
        },
        "commit_info": {"id": "0" * 40, "dirty": False, "project": "dlbench", "branch": "main"},
        "benchmarks": [bench],
        "datetime": "2026-11-30T01:00:00.000000+00:00",
        "version": "5.3.1",
    }
