"""`dlbench exporter`: the long-running GPU and host exporter for Prometheus."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from prometheus_client import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from dlbench.exporter import EXPORTER_DEFAULT_PORT
from dlbench.exporter.catalogue import DCGM_COUNTERS
from dlbench.exporter.collector import TelemetryCollector
from dlbench.exporter.host import HostReader
from dlbench.exporter.http import MetricsServer, PrerenderedMetrics, is_loopback
from dlbench.nvml.reader import NvmlReader
from dlbench.exporter.sampler import Sampler

DEFAULT_LISTEN = "127.0.0.1"
DEFAULT_PORT = EXPORTER_DEFAULT_PORT
DEFAULT_INTERVAL = 5.0
NODE_NAME_ENV = "NODE_NAME"  # how a Kubernetes DaemonSet conventionally passes spec.nodeName (downward API)


def default_hostname() -> str:
    """The host's name for the `hostname` label: $NODE_NAME in a pod (its own hostname is the pod's), else the OS's."""
    return os.environ.get(NODE_NAME_ENV) or socket.gethostname()


class Exporter:
    def __init__(
        self,
        listen: str = DEFAULT_LISTEN,
        port: int = DEFAULT_PORT,
        interval: float = DEFAULT_INTERVAL,
        dcgm_compat: bool = False,
        nvml=None,
        hostname: str | None = None,
        web_config=None,
        nvlink_per_link: bool = False,
    ):
        # bind first: a taken port should fail in a second, before NVML is touched
        self.registry = CollectorRegistry(auto_describe=False)
        self.metrics = PrerenderedMetrics(self.registry, DCGM_COUNTERS if dcgm_compat else frozenset())
        self.server = MetricsServer(
            self.registry,
            listen,
            port,
            health=self.health,
            metrics_app=self.metrics,
            web_config=web_config,
            live=self.live,
        )
        self.nvml = NvmlReader(nvml).start()
        self.sampler = Sampler(self.nvml, HostReader(), interval)
        self.hostname = hostname or default_hostname()
        self.registry.register(
            TelemetryCollector(
                self.sampler, hostname=self.hostname, dcgm_compat=dcgm_compat, nvlink_per_link=nvlink_per_link
            )
        )
        # process_start_time_seconds shows restarts (XID counters start again with the exporter), and
        # process_resident_memory_bytes shows a leak; prometheus_client reads them from /proc
        ProcessCollector(registry=self.registry)
        self.sampler.listeners.append(self.metrics.refresh)

    def _fresh(self) -> tuple[bool, float | None]:
        """Whether the sampler is alive and has not missed several intervals; the latest sample's age."""
        latest = self.sampler.latest
        age = None if latest is None else time.monotonic() - latest.monotonic
        return self.sampler.alive and age is not None and age < 3 * self.sampler.interval + 5, age

    def health(self) -> tuple[int, dict]:
        """/health: 200 while the exporter delivers GPU data (fresh samples, NVML up): systemd and blackbox probes."""
        fresh, age = self._fresh()
        latest = self.sampler.latest
        gpus = latest.gpus.values() if latest else ()
        # NVML down is unhealthy too: a probe (systemd, blackbox) must see a GPU exporter that sees no GPU, e.g.
        # started before the driver was loaded, while it retries
        healthy = fresh and self.nvml.up
        unreadable = sum(1 for r in gpus if r.get("query_error_ratio") == 1.0)
        status = "ok" if healthy else ("stale" if not fresh else "nvml_down")
        body = {
            "status": status,
            "nvml_up": self.nvml.up,
            "nvml_problem": self.nvml.problem,
            "gpus": len(self.nvml.gpus),
            "gpus_up": sum(1 for r in gpus if r.get("up")),
            "gpus_late": sum(1 for r in gpus if r.get("late")),
            # GPUs that answer every query with an error NVML does not call "lost" (dlbench_gpu_query_error_ratio 1)
            "gpus_unreadable": unreadable,
            "last_sample_age_seconds": None if age is None else round(age, 3),
            "sampler_errors": self.sampler.loop_errors,
        }
        return (200 if healthy else 503), body

    def live(self) -> tuple[int, dict]:
        """/live: 200 while the process works (the sampler takes fresh samples), whatever NVML does.

        For Kubernetes' liveness and readiness probes: a restart cannot load a driver (the exporter retries NVML by
        itself), and a pod marked unready for a broken driver would stall every rolling update of the DaemonSet while
        Prometheus still scrapes it; dlbench_exporter_nvml_up 0 raises the alert instead.
        """
        fresh, age = self._fresh()
        body = {
            "status": "ok" if fresh else "stale",
            "nvml_up": self.nvml.up,
            "last_sample_age_seconds": None if age is None else round(age, 3),
        }
        return (200 if fresh else 503), body

    def start(self) -> "Exporter":
        self.sampler.start()
        self.server.start()
        return self

    def close(self) -> None:
        self.server.close()
        self.sampler.stop()
        self.nvml.close()


def exposure_warning(listen: str, tls: bool) -> str | None:
    """What to tell an operator who serves beyond loopback in plain HTTP (None when there is nothing to say)."""
    if is_loopback(listen) or tls:
        return None
    return (
        f"listening on {listen} without TLS; anyone on that network can read and sniff the metrics: pass "
        "--web-config-file with tls_server_config (and basic_auth_users)"
    )


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_exporter(
    listen: str,
    port: int,
    interval: float,
    dcgm_compat: bool,
    hostname: str | None = None,
    web_config_file: str | None = None,
    nvlink_per_link: bool = False,
) -> int:
    web_config = None
    if web_config_file:
        from dlbench.exporter.web_config import load_web_config

        web_config = load_web_config(web_config_file)
    exporter = Exporter(
        listen, port, interval, dcgm_compat, hostname=hostname, web_config=web_config, nvlink_per_link=nvlink_per_link
    )
    tls = web_config is not None and web_config.tls is not None
    where = f"{'https' if tls else 'http'}://{'[' + listen + ']' if ':' in listen else listen}:{exporter.server.port}"
    nvml = "NVML ok" if exporter.nvml.up else f"host metrics only until NVML answers: {exporter.nvml.problem}"
    print(
        f"dlbench exporter: serving {where}/metrics, /health and /live as {exporter.hostname}, "
        f"{len(exporter.nvml.gpus)} GPU(s), {nvml}, sampling every {interval:g} s",
        file=sys.stderr,
        flush=True,
    )
    warning = exposure_warning(listen, tls)
    if warning:
        print(f"dlbench exporter: warning: {warning}", file=sys.stderr, flush=True)
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
