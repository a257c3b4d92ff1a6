"""The run's GPU readings over its timed window, kept as a time series in the result (for `dlbench report`'s plots).

Recorded from the sampler's snapshots as they are taken (a sampler listener: no extra NVML calls). Stored columnar,
one list per quantity and `t_seconds` from the window's start, at most MAX_POINTS points: a long run keeps every
k-th sample, so an hour at 0.5 s costs the same few tens of kilobytes as a short one.
"""

from __future__ import annotations

import threading

MAX_POINTS = 2000
# reading key (dlbench.nvml.reader) -> series key; the same names, so a reader needs no table
KEYS = ("utilization_ratio", "power_watts", "sm_clock_hertz", "temperature_celsius", "memory_used_bytes")
SERIES_NAMES = {"utilization_ratio": "gpu_utilization_ratio"}


class SeriesRecorder:
    def __init__(self, gpu_index: int, start_monotonic: float):
        self.gpu_index = gpu_index
        self.start = start_monotonic
        self.rows: list[tuple] = []
        self._lock = threading.Lock()  # the sampler's thread and the training thread both take samples

    def __call__(self, snapshot) -> None:
        """A sampler listener: keep this GPU's reading if it answered."""
        reading = snapshot.gpus.get(self.gpu_index) or {}
        if not reading.get("up"):
            return
        # a sample taken just before the recorder was registered can land a hair before the start
        row = (round(max(0.0, snapshot.monotonic - self.start), 3),) + tuple(reading.get(key) for key in KEYS)
        with self._lock:
            self.rows.append(row)

    def series(self) -> dict:
        with self._lock:
            rows = sorted(self.rows)
        stride = max(1, -(-len(rows) // MAX_POINTS))  # ceiling division
        rows = rows[::stride]
        columns = {"t_seconds": [row[0] for row in rows]}
        for i, key in enumerate(KEYS, start=1):
            columns[SERIES_NAMES.get(key, key)] = [row[i] for row in rows]
        return columns
