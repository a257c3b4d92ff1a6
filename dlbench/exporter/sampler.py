"""A background thread that reads NVML and the host at a fixed interval.

The exporter serves the latest snapshot (a scrape never waits on NVML); a run opens a window and gets a summary of
the samples inside it. Windows aggregate as samples arrive, so a long run costs no memory.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from dlbench.exporter.host import HostReader
from dlbench.nvml.reader import NvmlReader
from dlbench.nvml.xid import dcgm_xid_message, xid_class


@dataclass
class Snapshot:
    timestamp: float  # unix time the sample finished
    monotonic: float
    gpus: dict[int, dict]  # NVML index -> reading (see NvmlReader); "up" always present
    host: dict
    collect_duration_seconds: float


class _Stat:
    """Count, sum, min and max of one quantity."""

    __slots__ = ("count", "total", "low", "high")

    def __init__(self):
        self.count, self.total, self.low, self.high = 0, 0.0, float("inf"), float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def min(self) -> float | None:
        return self.low if self.count else None

    @property
    def max(self) -> float | None:
        return self.high if self.count else None


@dataclass
class Window:
    """Aggregates of the samples taken while the window was open."""

    samples: int = 0
    gpu: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(_Stat)))  # index -> key -> stat
    gpu_down_samples: Counter = field(default_factory=Counter)
    clocks_event_samples: dict = field(default_factory=lambda: defaultdict(Counter))  # index -> reason -> active
    clocks_event_readings: Counter = field(default_factory=Counter)  # index -> samples with a reasons reading
    host: dict = field(default_factory=lambda: defaultdict(_Stat))

    _GPU_KEYS = (
        "utilization_ratio",
        "memory_copy_utilization_ratio",
        "memory_used_bytes",
        "power_watts",
        "temperature_celsius",
        "memory_temperature_celsius",
        "sm_clock_hertz",
        "memory_clock_hertz",
    )
    _HOST_KEYS = ("cpu_utilization_ratio", "memory_used_bytes")

    def add(self, snapshot: Snapshot) -> None:
        self.samples += 1
        for index, reading in snapshot.gpus.items():
            if not reading.get("up"):
                self.gpu_down_samples[index] += 1
                continue
            stats = self.gpu[index]
            for key in self._GPU_KEYS:
                if key in reading:
                    stats[key].add(reading[key])
            reasons = reading.get("clocks_event_active")
            if reasons is not None:
                self.clocks_event_readings[index] += 1
                self.clocks_event_samples[index].update({r: active for r, active in reasons.items()})
        for key in self._HOST_KEYS:
            if key in snapshot.host:
                self.host[key].add(snapshot.host[key])
        load = snapshot.host.get("load_average", {}).get("1m")
        if load is not None:
            self.host["load_average_1m"].add(load)

    def clocks_event_fraction(self, index: int) -> dict[str, float]:
        readings = self.clocks_event_readings[index]
        return (
            {reason: active / readings for reason, active in sorted(self.clocks_event_samples[index].items())}
            if readings
            else {}
        )


def read_deadline(interval: float) -> float:
    """How long one sample waits for a GPU before marking it late: within the interval, so a hung GPU shows in the
    next sample, but never less than 0.5 s (a healthy read of every metric takes a few milliseconds) or more than
    10 s (Prometheus's default scrape timeout)."""
    return min(max(0.8 * interval, 0.5), 10.0)


class Sampler:
    def __init__(self, nvml: NvmlReader, host: HostReader | None = None, interval: float = 1.0):
        if interval <= 0:
            raise ValueError("sampling interval must be positive")
        self.nvml = nvml
        self.host = host
        self.interval = interval
        self.read_deadline = read_deadline(interval)
        self.latest: Snapshot | None = None
        self.xid_counts: dict[int, Counter] = defaultdict(Counter)
        self.xid_last_seen: dict[int, dict[int, float]] = defaultdict(dict)
        self.xid_last_code: dict[int, int] = {}
        self._windows: list[Window] = []
        self.listeners: list = []  # called with each snapshot, in the sampler's thread, after the sample
        self._sample_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loop_errors = 0

    # --- life cycle ---------------------------------------------------------------------------------------------
    def start(self) -> "Sampler":
        self.sample_now()  # so that the first scrape already has data
        self._thread = threading.Thread(target=self._loop, name="dlbench-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.interval))

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        next_due = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_due - time.monotonic())):
            try:
                self.sample_now()
            except Exception:  # a sampler that dies silently would freeze every metric; keep going, count it
                self.loop_errors += 1
            # a slow sample (a hung GPU) delays the next one instead of queueing a burst
            next_due = max(next_due + self.interval, time.monotonic())

    # --- sampling -----------------------------------------------------------------------------------------------
    def sample_now(self) -> Snapshot:
        with self._sample_lock:
            started = time.perf_counter()
            self.nvml.retry_start()  # NVML down (driver not loaded yet, or unloaded): try again, with backoff
            gpus = self.nvml.read_all(self.read_deadline)
            for index, code, seen_at in self.nvml.poll_xid_events():
                self.xid_counts[index][code] += 1
                self.xid_last_seen[index][code] = seen_at
                self.xid_last_code[index] = code
            for index, reading in gpus.items():
                if index in self.nvml.xid_supported:
                    # kept while the GPU is down: XID 79 is exactly the event that takes it down
                    # keyed (xid, xid_class): both labels of the series (the catalogue class: dlbench/nvml/xid.py)
                    reading["xid_errors"] = {(str(c), xid_class(c)): n for c, n in self.xid_counts[index].items()}
                    reading["last_xid_timestamp_seconds"] = {
                        (str(c), xid_class(c)): t for c, t in self.xid_last_seen[index].items()
                    }
                    code = reading["last_xid_code"] = self.xid_last_code.get(index, 0)
                    # --dcgm-compat's DCGM_FI_DEV_XID_ERRORS: the code as value and as its err_code label, with
                    # dcgm-exporter's err_msg text
                    reading["last_xid"] = {(str(code), dcgm_xid_message(code)): code}
            host = self.host.read() if self.host is not None else {}
            duration = time.perf_counter() - started
            snapshot = Snapshot(time.time(), time.monotonic(), gpus, host, duration)
            self.latest = snapshot
            for window in self._windows:
                window.add(snapshot)
        for listener in self.listeners:
            listener(snapshot)
        return snapshot

    # --- windows ------------------------------------------------------------------------------------------------
    def open_window(self) -> Window:
        window = Window()
        with self._sample_lock:
            self._windows.append(window)
        return window

    def close_window(self, window: Window) -> Window:
        with self._sample_lock:
            if window in self._windows:
                self._windows.remove(window)
        return window
