"""A weak-scaling study from its runs: one entry per size, read from the result its rank 0 wrote, and each size's
efficiency against the one-process run, throughput(n) / (n x throughput(1)) with the per-GPU batch fixed (as in
NVIDIA's DeepLearningExamples multi-GPU tables). `dlbench scaling` runs the sizes and prints this.
"""

from __future__ import annotations

import json
import os

from dlbench.results import superlinear


def size_entry(size: int, path: str, returncode: int) -> dict:
    """One size of the study, from the result its rank 0 wrote (if it wrote one)."""
    entry = {
        "processes": size,
        "exit_code": returncode,
        "result": os.path.abspath(path),
        "status": "failed",
        "error": None,
        "samples_per_second": None,
        "tokens_per_second": None,
        "slowest_rank": None,
        "communication_share": None,
        "efficiency": None,
    }
    try:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
    except (OSError, ValueError):
        entry["error"] = f"no result (exit code {returncode})"
        entry["result"] = None
        return entry
    job = result.get("distributed") or {}
    aggregate = job.get("aggregate") or {}
    entry.update(
        status=result["status"],
        error=result.get("error"),
        samples_per_second=aggregate.get("samples_per_second"),
        tokens_per_second=aggregate.get("tokens_per_second"),
        slowest_rank=job.get("slowest_rank"),
        communication_share=(job.get("communication") or {}).get("share"),
    )
    return entry


def study(entries: list[dict]) -> dict:
    """Efficiency of every size against the one-process run: throughput(n) / (n x throughput(1))."""
    baseline = next((entry for entry in entries if entry["processes"] == 1), None)
    base_rate = baseline["samples_per_second"] if baseline and baseline["status"] == "completed" else None
    for entry in entries:
        if base_rate and entry["status"] == "completed" and entry["samples_per_second"] is not None:
            entry["efficiency"] = entry["samples_per_second"] / (entry["processes"] * base_rate)
    return {"baseline_samples_per_second": base_rate, "sizes": entries, "warnings": superlinear.warnings(entries)}
