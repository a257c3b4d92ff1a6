"""Synthetic `dlbench run` results with known step-time distributions, shaped like dlbench/train/runner.py writes."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

from dlbench.train.timing import step_statistics


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
    flops_per_sample = 2.4e10
    metrics = {
        "steps_timed": len(times),
        "samples_timed": len(times) * batch,
        "timed_seconds": timed,
        "throughput": {"samples_per_second": throughput, "tokens_per_second": None if image else throughput * seq_len},
        "step_time_seconds": step_statistics(times),
        "achieved_flops_per_second": throughput * flops_per_sample,
        "peak_flops_per_second": 989.4e12,
        "mfu": throughput * flops_per_sample / 989.4e12,
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
