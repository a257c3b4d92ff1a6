"""Timing a GPU operation the way the matmul and bandwidth micro-benchmarks need it.

On CUDA each timed iteration sits between two CUDA events on the device's current stream and the device is
synchronized once after all of them (stas00 mamf-finder: warm-up, then timed iterations; the caller picks the
statistic); an optional `before` (an L2 flush) runs outside the events. On the CPU, perf_counter around each call.
"""

from __future__ import annotations

import time
from typing import Callable


def iteration_seconds(
    torch, device, fn: Callable[[], object], warmup: int, iterations: int, before: Callable[[], object] | None = None
) -> list[float]:
    for _ in range(warmup):
        if before:
            before()
        fn()
    if device.type != "cuda":
        times = []
        for _ in range(iterations):
            if before:
                before()
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times
    with torch.cuda.device(device):
        torch.cuda.synchronize(device)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
        for start, end in zip(starts, ends):
            if before:
                before()
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) / 1000.0 for start, end in zip(starts, ends)]  # CUDA reports milliseconds


def l2_flush(torch, device) -> Callable[[], object] | None:
    """Overwrite a buffer twice the L2 size, so no iteration reads its operands from cache (mamf-finder does this)."""
    if device.type != "cuda":
        return None
    l2_bytes = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0) or 64 * 2**20
    buffer = torch.empty(2 * l2_bytes, dtype=torch.int8, device=device)
    return buffer.zero_
