"""Step timing: CUDA events on GPUs (no per-step synchronization), perf_counter on the CPU."""

from __future__ import annotations

import math
import statistics
import time

import torch


class StepClock:
    """Marks step boundaries; step durations are read once, at the end, so the timed loop never waits on them."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        self._marks: list = []
        self.wall_start = 0.0
        self.wall_end = 0.0

    def _mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self.device))  # the run's GPU, whichever is current
            return event
        return time.perf_counter()

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self.synchronize()
        self.wall_start = time.perf_counter()
        self._marks = [self._mark()]

    def step_done(self) -> None:
        self._marks.append(self._mark())

    def stop(self) -> float:
        """Synchronize and return the timed wall-clock seconds."""
        self.synchronize()
        self.wall_end = time.perf_counter()
        return self.wall_end - self.wall_start

    def elapsed(self) -> float:
        """Host seconds since start (what --duration is measured in while the loop runs)."""
        return time.perf_counter() - self.wall_start

    def step_seconds(self) -> list[float]:
        marks = self._marks
        if self.cuda:
            return [a.elapsed_time(b) / 1000.0 for a, b in zip(marks, marks[1:])]
        return [b - a for a, b in zip(marks, marks[1:])]


# A result lists every timed step's time (metrics.step_times_seconds) up to this many; a longer window (a small model
# timed for minutes: mnist-mlp at ~0.3 ms a step on a GPU makes 100,000 steps in 30 s) lists the means of equal runs
# of consecutive steps instead, so the series still covers the whole window in order (a slowdown from throttling
# late in the run stays visible) and the JSON stays about 200 KB. metrics.step_times_group_size says how many.
MAX_STEP_TIMES = 10_000


def step_time_series(seconds: list[float], limit: int = MAX_STEP_TIMES) -> tuple[list[float], int]:
    """(the step times in the order measured, steps per entry): each step's own time while there are at most
    `limit`; otherwise the mean of each run of `group` consecutive steps (the last run may be shorter)."""
    group = max(1, math.ceil(len(seconds) / limit))
    if group == 1:
        return list(seconds), 1
    return [statistics.fmean(seconds[i : i + group]) for i in range(0, len(seconds), group)], group


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = (len(sorted_values) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def step_statistics(seconds: list[float]) -> dict | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return {
        "mean": statistics.fmean(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "min": ordered[0],
        "max": ordered[-1],
        "stdev": statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
    }
