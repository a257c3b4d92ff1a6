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
    return Expectation(
        peak.tflops[precision] * fraction,
        f"{peak.source}; {defaults['matmul_fraction_source']}",
        f"{fraction:.0%} of the dense {precision} peak {peak.tflops[precision]:g} TFLOP/s",
    )


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
    return spec, Expectation(
        spec * fraction,
        f"{entry['source']}; {defaults['memory_fraction_source']}",
        f"{fraction:.0%} of the datasheet {spec:g} GB/s",
    )


def _entry(device_name: str) -> dict:
    peak = peaks.lookup(device_name)
    return _table()["gpus"].get(peak.gpu, {}) if peak else {}


def model_name(device_name: str) -> str:
    """The table's name for this GPU (\"H100 SXM\"), or the name the driver gave when the table lacks it."""
    peak = peaks.lookup(device_name)
    return peak.gpu if peak else device_name


def no_reference(device_name: str, count: int, what: str) -> str:
    """The one wording for a GPU model and count the table has no figure for: measured, not judged."""
    return (
        f"no reference for {model_name(device_name)} x{count} ({what}) in dlbench/data/validate_baselines.json: "
        "measured, not judged"
    )


def allreduce_reference(device_name: str, ranks: int) -> Expectation | None:
    """Published all-reduce bus bandwidth for `ranks` GPUs of this model in one node, if any."""
    entry = _entry(device_name)
    figure = entry.get("allreduce_busbw_gbs", {}).get(str(ranks))
    if not figure:
        return None
    return Expectation(figure, entry["allreduce_source"], f"published all-reduce busbw, {ranks} GPUs")


def p2p_reference(device_name: str) -> Expectation | None:
    """Published GPU-to-GPU copy bandwidth for this model, if any."""
    entry = _entry(device_name)
    if not entry.get("p2p_gbs"):
        return None
    return Expectation(entry["p2p_gbs"], entry["p2p_source"], "published GPU-to-GPU copy bandwidth")


def nvlinks_reference(device_name: str) -> Expectation | None:
    """NVLink links each GPU of this model has (0: none), if the table knows it."""
    entry = _entry(device_name)
    if "nvlinks_per_gpu" not in entry:
        return None
    return Expectation(entry["nvlinks_per_gpu"], entry["nvlink_source"], "links per GPU, all active")


def tdp_reference(device_name: str) -> Expectation | None:
    """The model's maximum board power (TDP) from its datasheet, if the table knows it."""
    entry = _entry(device_name)
    if not entry.get("tdp_watts"):
        return None
    return Expectation(entry["tdp_watts"], entry["tdp_source"], "datasheet maximum board power")


def training_reference(device_name: str, workload: str) -> Expectation | None:
    """Published training throughput of `workload` on this GPU model, with its tolerance, if any."""
    entry = _entry(device_name).get("training", {}).get(workload)
    if not entry:
        return None
    return Expectation(
        entry["samples_per_second"], entry["source"], "published training throughput", entry["tolerance"]
    )
