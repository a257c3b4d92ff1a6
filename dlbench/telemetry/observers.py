"""Run observers (see dlbench/train/observers.py): telemetry summary, live metrics and end-of-run push."""

from __future__ import annotations

import bisect
import socket
import sys
import time
from collections import deque
from typing import Any

from prometheus_client import push_to_gateway
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from dlbench.exporter.catalogue import BY_NAME, specs
from dlbench.exporter.collector import TelemetryCollector, families_from_rows
from dlbench.exporter.host import HostReader
from dlbench.exporter.http import MetricsServer, is_loopback
from dlbench.nvml.reader import NvmlReader
from dlbench.exporter.sampler import Sampler, Window
from dlbench.telemetry.series import SeriesRecorder
from dlbench.train.observers import RunInfo, RunObserver

# clock-event reasons that make a run slower than the hardware allows (gpu_idle and the rest are benign)
SLOWDOWN_REASONS = (
    "sw_power_cap",
    "hw_slowdown",
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
)


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


class TelemetryObserver(RunObserver):
    """Samples the run's GPU and the host in the background; summarises exactly the timed window."""

    section = "telemetry"

    def __init__(self, interval: float = 0.5, nvml: Any = None):
        self.interval = interval
        self._nvml_module = nvml
        self.reader: NvmlReader | None = None
        self.sampler: Sampler | None = None
        self.info: RunInfo | None = None
        self._window: Window | None = None
        self._energy_start: float | None = None
        self._summary: dict | None = None
        self._series: SeriesRecorder | None = None

    def on_start(self, info: RunInfo) -> None:
        self.info = info
        indices = [info.gpu_index] if info.gpu_index is not None else []
        self.reader = NvmlReader(self._nvml_module, indices=indices, watch_xid=False)
        if indices:
            self.reader.start()
        else:
            self.reader.problem = "no GPU in use"
        self.sampler = Sampler(self.reader, HostReader(), self.interval).start()

    def on_timed_start(self) -> None:
        if self.sampler is None:
            return
        self._window = self.sampler.open_window()
        self._energy_start, self._energy_start_at = self._energy(), time.monotonic()
        if self.info.gpu_index is not None:  # the GPU's readings over time, for the report's plots
            self._series = SeriesRecorder(self.info.gpu_index, time.monotonic())
            self.sampler.listeners.append(self._series)
        self.sampler.sample_now()  # the window's first sample is its start, however short it is

    def on_timed_end(self, timed_seconds: float, samples: int) -> None:
        if self.sampler is None or self._window is None:
            return
        energy_end, self._energy_end_at = self._energy(), time.monotonic()
        self.sampler.sample_now()
        window = self.sampler.close_window(self._window)
        if self._series is not None:
            self.sampler.listeners.remove(self._series)
        self._summary = self._summarise(window, timed_seconds, samples, energy_end)

    def _energy(self) -> float | None:
        index = self.info.gpu_index if self.info else None
        return None if index is None else self.reader.read_energy_joules(index)

    def _summarise(self, window: Window, timed_seconds: float, samples: int, energy_end: float | None) -> dict:
        summary: dict[str, Any] = {
            "device": self.info.device if self.info else None,
            "interval_seconds": self.interval,
            "samples": window.samples,
            "nvml": "ok" if self.reader.up else self.reader.problem,
            "gpu": None,
        }
        index = self.info.gpu_index
        if index is not None and self.reader.up and self.reader.gpus:
            identity = self.reader.gpus[0]
            stats = window.gpu[index]
            static = self.sampler.latest.gpus.get(index, {}) if self.sampler.latest else {}
            energy = power = None
            if self._energy_start is not None and energy_end is not None:
                energy = energy_end - self._energy_start
                # mean power as energy over time: NVML's power reading is a ~1 s trailing average, sampled
                elapsed = self._energy_end_at - self._energy_start_at
                power = energy / elapsed if elapsed > 0 else None
            summary["gpu"] = {
                "index": index,
                "name": identity.name,
                "uuid": identity.uuid,
                "utilization_mean_ratio": _rounded(stats["utilization_ratio"].mean),
                "utilization_max_ratio": _rounded(stats["utilization_ratio"].max),
                "memory_used_max_bytes": stats["memory_used_bytes"].max,
                "power_mean_watts": _rounded(power if power is not None else stats["power_watts"].mean, 2),
                "power_mean_source": "energy counter" if power is not None else "power samples",
                "power_sampled_mean_watts": _rounded(stats["power_watts"].mean, 2),
                "power_limit_watts": static.get("power_limit_watts"),
                "energy_joules": _rounded(energy, 3),
                "energy_per_sample_joules": _rounded(energy / samples, 6) if energy is not None and samples else None,
                "energy_source": "nvmlDeviceGetTotalEnergyConsumption at the window's start and end"
                if energy is not None
                else None,
                "temperature_max_celsius": stats["temperature_celsius"].max,
                "memory_temperature_max_celsius": stats["memory_temperature_celsius"].max,
                "sm_clock_min_hertz": stats["sm_clock_hertz"].min,
                "sm_clock_mean_hertz": _rounded(stats["sm_clock_hertz"].mean, 0),
                "sm_clock_max_hertz": static.get("sm_clock_max_hertz"),
                "clocks_event_fraction": {r: round(f, 4) for r, f in window.clocks_event_fraction(index).items()},
                "down_samples": window.gpu_down_samples[index],
                # how many readings each figure rests on (a GPU may not support, or fail, some queries)
                "sample_counts": {
                    **{key: stat.count for key, stat in sorted(stats.items())},
                    "clocks_event": window.clocks_event_readings[index],
                },
            }
            if self._series is not None:
                summary["series"] = self._series.series()
        summary["host"] = {
            "cpu_utilization_mean_ratio": _rounded(window.host["cpu_utilization_ratio"].mean),
            "cpu_utilization_max_ratio": _rounded(window.host["cpu_utilization_ratio"].max),
            "memory_used_max_bytes": window.host["memory_used_bytes"].max,
            "memory_total_bytes": self.sampler.latest.host.get("memory_total_bytes") if self.sampler.latest else None,
            "load_average_1m_max": _rounded(window.host["load_average_1m"].max, 2),
            "sample_counts": {key: stat.count for key, stat in sorted(window.host.items())},
        }
        summary["explanations"] = explain(summary)
        return summary

    def contribute(self) -> dict | None:
        return self._summary

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.reader is not None:
            self.reader.close()


def explain(summary: dict) -> list[str]:
    """Plain sentences for what in the telemetry could have slowed the run."""
    notes = []
    gpu = summary.get("gpu")
    if gpu:
        for reason in SLOWDOWN_REASONS:
            fraction = gpu["clocks_event_fraction"].get(reason, 0.0)
            if fraction >= 0.05:
                notes.append(f"GPU clocks were held down by {reason} for {fraction:.0%} of the timed window")
        utilization = gpu["utilization_mean_ratio"]
        if utilization is not None and utilization < 0.8:
            notes.append(
                f"GPU was busy only {utilization:.0%} of the time on average: the input pipeline, the host "
                "or a small batch may be the limit"
            )
        if gpu["down_samples"]:
            notes.append(f"GPU stopped answering NVML in {gpu['down_samples']} sample(s) of the window")
    cpu = summary["host"]["cpu_utilization_mean_ratio"]
    if cpu is not None and cpu > 0.9 and summary.get("device", "cpu") != "cpu":  # on a CPU run a busy CPU is the point
        notes.append(f"host CPU was {cpu:.0%} busy on average: data loading or the Python loop may be the limit")
    return notes


# --- live metrics ---------------------------------------------------------------------------------------------
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _TrainCollector(Collector):
    def __init__(self, observer: "LiveMetricsObserver"):
        self.observer = observer

    def describe(self) -> list:
        return []

    def collect(self):
        o = self.observer
        if o.info is None:
            return
        labels = [o.info.run_id, o.info.workload, o.hostname, o.rank]
        info_labels = [
            o.info.run_id,
            o.info.workload,
            o.hostname,
            o.rank,
            o.info.device,
            o.precision,
            str(o.info.batch_size),
        ]
        yield from families_from_rows([BY_NAME["dlbench_train_info"]], [(info_labels, {"info": 1})])
        yield from families_from_rows(
            [s for s in specs("train") if s.type != "histogram" and s.name != "dlbench_train_info"],
            [(labels, o.values())],
        )
        spec = BY_NAME["dlbench_train_step_seconds"]
        histogram = HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels), unit=spec.unit)
        cumulative, buckets = 0, []
        for bound, count in zip(STEP_BUCKETS + (float("inf"),), o.bucket_counts):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        histogram.add_metric(labels, buckets, o.step_seconds_sum)
        yield histogram


class LiveMetricsObserver(RunObserver):
    """Serves training metrics (and the run's GPU telemetry) on /metrics while the run lasts."""

    def __init__(
        self,
        port: int,
        listen: str = "127.0.0.1",
        telemetry: TelemetryObserver | None = None,
        precision: str = "",
        loss_read_interval: float = 1.0,
        rank: int = 0,
    ):
        self.telemetry = telemetry
        self.rank = str(rank)
        self.precision = precision
        self.hostname = socket.gethostname()
        self.loss_read_interval = loss_read_interval
        self.info: RunInfo | None = None
        self.steps = 0
        self.loss: float | None = None
        self.bucket_counts = [0] * (len(STEP_BUCKETS) + 1)
        self.step_seconds_sum = 0.0
        self._recent: deque = deque(maxlen=20)  # (seconds, samples) of the last steps
        self._last_loss_read = float("-inf")
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_TrainCollector(self))
        self.registry.register(_RunTelemetryCollector(self))
        # bound now, so that a taken port fails the run before any work is done
        self.server = MetricsServer(self.registry, listen, port, health=self._health).start()
        self.port = self.server.port
        if not is_loopback(listen):
            print(
                f"dlbench: warning: serving run metrics on {listen}:{self.port} without authentication", file=sys.stderr
            )

    def _health(self) -> tuple[int, dict]:
        return 200, {"status": "ok", "steps": self.steps}

    def on_start(self, info: RunInfo) -> None:
        self.info = info

    def on_step(self, step: int, step_seconds: float, samples: int, loss: Any) -> None:
        self.steps += 1
        self.step_seconds_sum += step_seconds
        self.bucket_counts[bisect.bisect_left(STEP_BUCKETS, step_seconds)] += 1
        self._recent.append((step_seconds, samples))
        now = time.monotonic()
        if loss is not None and now - self._last_loss_read >= self.loss_read_interval:
            self._last_loss_read = now
            self.loss = float(loss.item() if hasattr(loss, "item") else loss)  # synchronizes: at most once a second

    def values(self) -> dict:
        recent = tuple(self._recent)  # one C-level copy: the training thread appends while we scrape
        seconds = sum(s for s, _ in recent)
        values: dict[str, Any] = {"steps": self.steps, "loss": self.loss}
        if seconds > 0:
            rate = sum(n for _, n in recent) / seconds
            values["samples_per_second"] = rate
            if self.info and self.info.flops_per_sample and self.info.peak_flops:
                values["mfu_ratio"] = rate * self.info.flops_per_sample / self.info.peak_flops
        return values

    def close(self) -> None:
        self.server.close()


class _RunTelemetryCollector(Collector):
    """The run's own GPU and host readings, from the telemetry observer's sampler (no second NVML reader)."""

    def __init__(self, observer: LiveMetricsObserver):
        self.observer = observer

    def describe(self) -> list:
        return []

    def collect(self):
        telemetry = self.observer.telemetry
        if telemetry is None or telemetry.sampler is None:
            return
        yield from TelemetryCollector(telemetry.sampler, self.observer.hostname, exporter_health=False).collect()


# --- end-of-run push ------------------------------------------------------------------------------------------
class PushgatewayObserver(RunObserver):
    """Pushes an end-of-run summary to a Prometheus Pushgateway, for runs shorter than a scrape interval."""

    JOB = "dlbench_run"

    def __init__(self, url: str, telemetry: TelemetryObserver | None = None, timeout: float = 10.0):
        self.url = url
        self.telemetry = telemetry
        self.timeout = timeout
        self.hostname = socket.gethostname()
        self.info: RunInfo | None = None
        self.timed: tuple[float, int] | None = None
        self.pushed = False

    def on_start(self, info: RunInfo) -> None:
        self.info = info

    def on_timed_end(self, timed_seconds: float, samples: int) -> None:
        self.timed = (timed_seconds, samples)

    def summary(self, result: dict) -> dict:
        values: dict[str, Any] = {"finished_timestamp_seconds": time.time()}
        if self.timed and self.timed[0] > 0:
            seconds, samples = self.timed
            values["timed_seconds"] = seconds
            values["samples_per_second"] = samples / seconds
            if self.info.flops_per_sample and self.info.peak_flops:
                values["mfu_ratio"] = values["samples_per_second"] * self.info.flops_per_sample / self.info.peak_flops
        job = result.get("distributed")  # rank 0 of a torchrun job: every rank's figures, gathered
        values["world_size"] = job["world_size"] if job else 1
        values["job_samples_per_second"] = (
            (job.get("aggregate") or {}).get("samples_per_second") if job else values.get("samples_per_second")
        )
        telemetry = result.get("telemetry") or (self.telemetry.contribute() if self.telemetry else None)
        gpu = (telemetry or {}).get("gpu") or {}
        for key in ("energy_joules", "energy_per_sample_joules", "power_mean_watts"):
            values[key] = gpu.get(key)
        values["utilization_mean"] = gpu.get("utilization_mean_ratio")
        return values

    def on_finish(self, result: dict) -> None:
        if self.info is None:
            return
        info = self.info
        labels = [info.run_id, info.workload, self.hostname]
        run_info = [info.run_id, info.workload, self.hostname, info.device, str(result.get("status", "completed"))]
        values = self.summary(result)
        registry = CollectorRegistry(auto_describe=False)

        class _Summary(Collector):
            def collect(self_inner):
                yield from families_from_rows([BY_NAME["dlbench_run_info"]], [(run_info, {"info": 1})])
                yield from families_from_rows(
                    [s for s in specs("run") if s.name != "dlbench_run_info"], [(labels, values)]
                )

        registry.register(_Summary())
        try:
            # grouped by host and workload: the latest run of a workload on a host replaces the previous one
            push_to_gateway(
                self.url,
                job=self.JOB,
                registry=registry,
                timeout=self.timeout,
                grouping_key={"instance": self.hostname, "workload": info.workload},
            )
            self.pushed = True
        except (OSError, ValueError) as error:
            # the run's result matters more than its push; say so and carry on
            print(f"dlbench: warning: could not push the run summary to {self.url}: {error}", file=sys.stderr)
