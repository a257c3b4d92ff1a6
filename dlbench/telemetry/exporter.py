"""`dlbench exporter`: the long-running GPU and host exporter for Prometheus."""

from __future__ import annotations

import signal
import sys
import time

from prometheus_client.registry import CollectorRegistry

from dlbench.telemetry.collector import TelemetryCollector
from dlbench.telemetry.host import HostReader
from dlbench.telemetry.http import MetricsServer, PrerenderedMetrics, is_loopback
from dlbench.telemetry.nvml import NvmlReader
from dlbench.telemetry.sampler import Sampler

DEFAULT_LISTEN = "127.0.0.1"
DEFAULT_PORT = 9835
DEFAULT_INTERVAL = 5.0


class Exporter:
    def __init__(self, listen: str = DEFAULT_LISTEN, port: int = DEFAULT_PORT, interval: float = DEFAULT_INTERVAL,
                 dcgm_compat: bool = False, nvml=None):
        # bind first: a taken port should fail in a second, before NVML is touched
        self.registry = CollectorRegistry(auto_describe=False)
        self.metrics = PrerenderedMetrics(self.registry)
        self.server = MetricsServer(self.registry, listen, port, health=self.health, metrics_app=self.metrics)
        self.nvml = NvmlReader(nvml).start()
        self.sampler = Sampler(self.nvml, HostReader(), interval)
        self.registry.register(TelemetryCollector(self.sampler, dcgm_compat=dcgm_compat))
        self.sampler.listeners.append(self.metrics.refresh)

    def health(self) -> tuple[int, dict]:
        latest = self.sampler.latest
        age = None if latest is None else time.monotonic() - latest.monotonic
        # stale when the sampler has missed several intervals: NVML hangs or the thread died
        healthy = self.sampler.alive and age is not None and age < 3 * self.sampler.interval + 5
        gpus_up = sum(1 for r in (latest.gpus.values() if latest else ()) if r.get("up"))
        body = {"status": "ok" if healthy else "stale", "nvml_up": self.nvml.up,
                "nvml_problem": self.nvml.problem, "gpus": len(self.nvml.gpus), "gpus_up": gpus_up,
                "last_sample_age_seconds": None if age is None else round(age, 3),
                "sampler_errors": self.sampler.loop_errors}
        return (200 if healthy else 503), body

    def start(self) -> "Exporter":
        self.sampler.start()
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()
        self.sampler.stop()
        self.nvml.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_exporter(listen: str, port: int, interval: float, dcgm_compat: bool) -> int:
    exporter = Exporter(listen, port, interval, dcgm_compat)
    where = f"http://{'[' + listen + ']' if ':' in listen else listen}:{exporter.server.port}"
    nvml = "NVML ok" if exporter.nvml.up else f"host metrics only: {exporter.nvml.problem}"
    print(f"dlbench exporter: serving {where}/metrics and /health, {len(exporter.nvml.gpus)} GPU(s), {nvml}, "
          f"sampling every {interval:g} s", file=sys.stderr, flush=True)
    if not is_loopback(listen):
        print(f"dlbench exporter: warning: listening on {listen} without authentication; "
              "restrict access with a firewall or a reverse proxy", file=sys.stderr, flush=True)
    # SIGTERM (systemd, docker stop) ends the exporter as cleanly as Ctrl-C
    signal.signal(signal.SIGTERM, _interrupt)
    exporter.sampler.start()
    try:
        exporter.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        exporter.server.server.server_close()
        exporter.sampler.stop()
        exporter.nvml.close()
    return 0
