"""Hooks into a run, for telemetry, live metrics and end-of-run reporting.

The runner calls these in order: `on_start` once, `on_timed_start` after warm-up (devices synchronized),
`on_step` after every timed step, `on_timed_end` when timing stops (devices synchronized), then
`contribute` to add a section to the result, and `on_finish` with the finished result (any status).
Observers must be cheap in `on_step`: it runs inside the timed loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RunInfo:
    run_id: str
    workload: str
    device: str  # "cpu", "cuda:0", ...
    gpu_index: int | None  # the NVML index of the GPU in use (found through its UUID, not the CUDA index), if any
    batch_size: int
    sample_unit: str
    flops_per_sample: float | None
    peak_flops: float | None  # dense peak of the device at the run's precision, or None when unknown
    gpu_uuid: str | None = None  # the GPU in use, as CUDA and NVML both name it


class RunObserver:
    #: key under which `contribute()` output is stored in the result (None: contributes nothing)
    section: str | None = None

    def on_start(self, info: RunInfo) -> None:
        pass

    def on_timed_start(self) -> None:
        pass

    def on_step(self, step: int, step_seconds: float, samples: int, loss: Any) -> None:
        """`step_seconds` is the host wall time of this step (on a GPU, the time to enqueue it once the queue is
        full, which in steady state equals the device time); `loss` is the step's loss tensor: calling `.item()` on
        it synchronizes the device, so do it rarely."""

    def on_timed_end(self, timed_seconds: float, samples: int) -> None:
        pass

    def contribute(self) -> dict | None:
        return None

    def on_finish(self, result: dict) -> None:
        pass

    def close(self) -> None:
        """Release threads, ports and handles; called even when the run fails."""
