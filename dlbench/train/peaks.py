"""Dense peak FLOP/s of known GPUs, for MFU.

Keyed on the detected device name, never assumed: a GPU not in the table has no MFU rather than one measured
against somebody else's peak (the classic "104% MFU on H100" bug of a hard-coded A100 figure).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class GpuPeak:
    gpu: str
    tflops: dict[str, float | None]  # precision -> dense TFLOP/s, None where the GPU lacks it
    source: str


@lru_cache(maxsize=1)
def _table() -> list[tuple[list[re.Pattern], GpuPeak]]:
    data = json.loads(resources.files("dlbench").joinpath("data/gpu_peaks.json").read_text())
    table = []
    for entry in data["gpus"]:
        peak = GpuPeak(entry["gpu"], {p: entry[p] for p in ("fp32", "tf32", "bf16", "fp16")}, entry["source"])
        table.append(([re.compile(pattern) for pattern in entry["match"]], peak))
    return table


def lookup(device_name: str) -> GpuPeak | None:
    for patterns, peak in _table():
        if any(pattern.fullmatch(device_name.strip()) for pattern in patterns):
            return peak
    return None


def peak_flops(device_name: str, precision: str) -> float | None:
    """Dense peak in FLOP/s for `precision` on the named GPU, or None when unknown."""
    peak = lookup(device_name)
    if peak is None or peak.tflops.get(precision) is None:
        return None
    return peak.tflops[precision] * 1e12


def applied(device_name: str, precision: str) -> dict | None:
    """The peak-table entry behind an MFU figure, for the result: which row matched, which column, and its source."""
    peak = lookup(device_name)
    if peak is None or peak.tflops.get(precision) is None:
        return None
    return {
        "gpu": peak.gpu,
        "device_name": device_name,
        "precision": precision,
        "tflops": peak.tflops[precision],
        "source": peak.source,
    }
