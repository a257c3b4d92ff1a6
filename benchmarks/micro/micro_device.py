"""What every micro-benchmark shares: the device, the CUDA-synchronising timer and how much to measure.

(Kept out of conftest.py so that test modules import it by a name no other conftest shadows.)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

DEVICE = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
ON_GPU = DEVICE.type == "cuda"
#: run every case at full size even on the CPU (slow; the default runs small sizes so `make test` stays quick)
FULL = os.environ.get("DLBENCH_MICRO_FULL") == "1"


def synchronized_perf_counter() -> float:
    """The clock, read once every GPU has finished what was queued before: a CUDA-aware timer. Every visible GPU,
    not only the current one: the all-reduce runs on all of them (idle ones answer in microseconds)."""
    for index in range(torch.cuda.device_count()):
        torch.cuda.synchronize(index)
    return time.perf_counter()


DEVICE_TIMER = synchronized_perf_counter if ON_GPU else time.perf_counter


def device_name() -> str:
    if ON_GPU:
        return torch.cuda.get_device_name(DEVICE)
    from dlbench.environment import collect

    return collect()["cpu"]["model"]


@dataclass(frozen=True)
class Rounds:
    """How much to measure: GPUs are fast and steady, CPUs slow and shared."""

    rounds: int
    iterations: int
    warmup_rounds: int


GPU_ROUNDS = Rounds(rounds=20, iterations=10, warmup_rounds=3)
CPU_ROUNDS = Rounds(rounds=8, iterations=2, warmup_rounds=1)
