"""Expectations for a GPU model: dense peaks (gpu_peaks.json, through `dlbench.train.peaks`) and the validation
baselines (validate_baselines.json): datasheet memory bandwidth and published achievable figures, each with source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from dlbench.train import peaks


@dataclass(frozen=True)
class Expectation:
    value: float  # the reference figure, in the unit of the measurement
    source: str
    basis: str  # how the reference was obtained, in words ("published achievable", "85% of the datasheet")
    tolerance: float | None = None  # how far below is still a PASS, where the figure sets its own


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(resources.files("dlbench").joinpath("data/validate_baselines.json").read_text())


def _by_memory(entry: dict, key: str, memory_gib: float | None) -> float | None:
    """A figure that depends on the memory fitted (A100 40 GB vs 80 GB): the last step at or below `memory_gib`."""
    value = entry.get(key)
    for from_gib, stepped in entry.get(f"{key}_from_gib", []):
        if memory_gib is not None and memory_gib >= from_gib:
            value = stepped
    return value


def matmul_reference(device_name: str, precision: str) -> Expectation | None:
    """Best achievable dense matmul TFLOP/s to expect: published (bf16) or a fraction of the datasheet peak."""
    peak = peaks.lookup(device_name)
    if peak is None or peak.tflops.get(precision) is None:
        return None
    entry = _table()["gpus"].get(peak.gpu, {})
    if precision == "bf16" and entry.get("mamf_bf16_tflops"):
        return Expectation(entry["mamf_bf16_tflops"], entry["source"], "published best achievable (mamf-finder)")
    defaults = _table()["defaults"]
    fraction = defaults["matmul_fraction_of_peak"]
    return Expectation(peak.tflops[precision] * fraction, f"{peak.source}; {defaults['matmul_fraction_source']}",
                       f"{fraction:.0%} of the dense {precision} peak {peak.tflops[precision]:g} TFLOP/s")


def memory_reference(device_name: str, memory_gib: float | None) -> tuple[float, Expectation] | None:
    """(datasheet GB/s, achievable GB/s to expect) for device memory bandwidth, or None for an unknown GPU."""
    peak = peaks.lookup(device_name)
    entry = _table()["gpus"].get(peak.gpu) if peak else None
    if not entry or not entry.get("memory_bandwidth_gbs"):
        return None
    spec = _by_memory(entry, "memory_bandwidth_gbs", memory_gib)
    achievable = _by_memory(entry, "memory_achievable_gbs", memory_gib)
    if achievable:
        return spec, Expectation(achievable, entry["source"], "published STREAM-like achievable")
    defaults = _table()["defaults"]
    fraction = defaults["memory_fraction_of_spec"]
    return spec, Expectation(spec * fraction, f"{entry['source']}; {defaults['memory_fraction_source']}",
                             f"{fraction:.0%} of the datasheet {spec:g} GB/s")


def allreduce_reference(device_name: str, ranks: int) -> Expectation | None:
    """Published nccl-tests all-reduce bus bandwidth for `ranks` GPUs of this model in one node, if any."""
    peak = peaks.lookup(device_name)
    entry = _table()["gpus"].get(peak.gpu, {}) if peak else {}
    figure = entry.get("allreduce_busbw_gbs", {}).get(str(ranks))
    if not figure:
        return None
    return Expectation(figure, entry["allreduce_source"], f"published nccl-tests all-reduce busbw, {ranks} GPUs")


def training_reference(device_name: str, workload: str) -> Expectation | None:
    """Published training throughput of `workload` on this GPU model, with its tolerance, if any."""
    peak = peaks.lookup(device_name)
    entry = (_table()["gpus"].get(peak.gpu, {}) if peak else {}).get("training", {}).get(workload)
    if not entry:
        return None
    return Expectation(entry["samples_per_second"], entry["source"], "published training throughput",
                       entry["tolerance"])
