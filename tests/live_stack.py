"""A live monitoring stack for tests and for the images in docs/dashboards: a real `dlbench exporter`, a real
`dlbench run --metrics-port` when this checkout has one, and Debian's real Prometheus loading our example config
(file_sd targets, recording and alert rules) on 127.0.0.1.

FAKED, because no GPU exists here: NVML only, through the exporter's test hook DLBENCH_FAKE_NVML pointing at a
scenario file (dlbench/nvml/simulated.py). A background thread rewrites the scenario every second so the GPUs'
load moves like a real fleet's; the fake re-reads it when it changes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from dashboards_support import PROMETHEUS_DIR, queries  # noqa: F401  (queries: sys.path for dlbench_dashboards)
from dlbench_dashboards.prom import Prometheus, PrometheusError
from prometheus_server import free_port, http_get, wait_for

SCRAPE_INTERVAL_S = 1
GIB = 2**30

# NVML clocks-event reason bits (nvml.h): SwPowerCap 0x4, SwThermalSlowdown 0x20, HwThermalSlowdown 0x40
SW_POWER_CAP, SW_THERMAL, HW_THERMAL = 0x4, 0x20, 0x40


def scenario(tick: int) -> dict:
    """Four GPUs: two H100s training, a hot throttling H100 with an XID 79, an A100 with old ECC errors, a
    contained-ECC XID 94 and an XID 61, one failing query a tick, and an idle consumer card that falls off the bus half-way
    (tick 12)."""
    wave = 0.5 + 0.5 * math.sin(tick / 3)
    return {
        "gpus": [
            {
                "preset": "h100-sxm",
                "values": {
                    "utilization_gpu": 90 + 8 * wave,
                    "utilization_memory": 55 + 10 * wave,
                    "memory_used": 61 * GIB,
                    "temperature": 70 + 4 * wave,
                    "memory_temperature": 78 + 3 * wave,
                    "power_mw": 600_000 + 90_000 * wave,
                    "sm_mhz": 1980 - 150 * wave,
                    "mem_mhz": 2619,
                    "clocks_event_reasons": SW_POWER_CAP if wave > 0.6 else 0,
                    "pstate": 0,
                    "pcie_replay": tick // 4,
                    # GPM activity (percent), PCIe and NVLink byte counters, one training process
                    "gpm": {
                        "SM_UTIL": 70 + 10 * wave,
                        "SM_OCCUPANCY": 35,
                        "ANY_TENSOR_UTIL": 55 + 10 * wave,
                        "DRAM_BW_UTIL": 48,
                        "FP32_UTIL": 8,
                        "FP16_UTIL": 2,
                    },
                    "pcie_tx_bytes": tick * 2 * GIB,
                    "pcie_rx_bytes": tick * 6 * GIB,
                    "nvlink": {
                        str(link): {"tx_kib": tick * 2**20, "rx_kib": tick * 2**20, "replay": tick // 6}
                        for link in range(18)
                    },
                    "processes": [[os.getpid(), 60 * GIB, 90]],
                },
            },
            {
                "preset": "h100-sxm",
                "values": {
                    "utilization_gpu": 97,
                    "utilization_memory": 62,
                    "memory_used": 70 * GIB,
                    "temperature": 87 + 2 * wave,
                    "memory_temperature": 92 + 2 * wave,
                    "power_mw": 520_000,
                    "sm_mhz": 1410 - 100 * wave,
                    "mem_mhz": 2619,
                    "clocks_event_reasons": SW_THERMAL | (HW_THERMAL if wave > 0.5 else 0),
                    "pstate": 0,
                },
                "xid": [79],
            },
            {
                "preset": "a100",
                "values": {
                    "utilization_gpu": 40 + 30 * wave,
                    "utilization_memory": 20,
                    "memory_used": 22 * GIB,
                    "temperature": 55 + 5 * wave,
                    "memory_temperature": 60,
                    "power_mw": 250_000 + 60_000 * wave,
                    "sm_mhz": 1410,
                    "mem_mhz": 1593,
                    "pstate": 0,
                    "ecc_corrected": 14 + tick,
                    "ecc_uncorrected": 2,
                    "remapped": (3, 1, 0, 0),
                },
                # a transient NVML failure every tick: the series drops for that sample, the GPU stays up
                "faults": {"nvmlDeviceGetPcieReplayCounter": "UNKNOWN*1"},
                "xid": [94, 61],  # 94: restart the application (no page); 61: a warning
            },
            {
                "preset": "rtx4090",
                "values": {
                    "utilization_gpu": 0,
                    "memory_used": 300 * 2**20,
                    "temperature": 33,
                    "power_mw": 21_000,
                    "sm_mhz": 210,
                    "mem_mhz": 405,
                    "pstate": 8,
                    "clocks_event_reasons": 0x1,
                },
                "lost": tick >= 12,
            },
        ]
    }


class ScenarioWriter(threading.Thread):
    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.tick = 0
        self.stopped = threading.Event()
        self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(scenario(self.tick)))
        tmp.replace(self.path)  # the fake must never read half a file

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            self.tick += 1
            self.write()


def run_supports_metrics_port() -> bool:
    help_text = subprocess.run(
        [sys.executable, "-m", "dlbench", "run", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    return "--metrics-port" in help_text


class LiveStack:
    """Start with `LiveStack(workdir).start()`; `close()` stops everything it started."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: list = []
        self.scenario_path = workdir / "scenario.json"
        self.writer = ScenarioWriter(self.scenario_path)
        self.exporter_port = free_port()
        self.dcgm_port = free_port()
        self.run_port = free_port()
        self.prometheus_port = free_port()
        self.with_run = run_supports_metrics_port()
        self.prometheus = Prometheus(f"http://127.0.0.1:{self.prometheus_port}")
        self.started_at = time.time()

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")
        self.logs.append(log)
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.processes[name] = process
        return process

    def log_of(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]

    def _write_prometheus_config(self) -> Path:
        """Our example config, unchanged except for faster intervals and target files naming this test's ports."""
        config_dir = self.workdir / "prometheus"
        shutil.copytree(PROMETHEUS_DIR, config_dir, ignore=shutil.ignore_patterns("tests"))
        config_path = config_dir / "prometheus.yml"
        config = yaml.safe_load(config_path.read_text())
        config["global"].update(
            scrape_interval=f"{SCRAPE_INTERVAL_S}s",
            evaluation_interval=f"{SCRAPE_INTERVAL_S}s",
            scrape_timeout=f"{SCRAPE_INTERVAL_S}s",
        )
        for job in config["scrape_configs"]:
            job.pop("scrape_interval", None)
            for sd in job.get("file_sd_configs", []):
                sd["refresh_interval"] = "1s"
            if job["job_name"] == "dcgm":
                # Stand-in for NVIDIA's dcgm-exporter (not installable here): our exporter's --dcgm-compat output
                # (dcgm-exporter 4.8 names, units and labels) with its own dlbench_* names dropped.
                job["metric_relabel_configs"] = [
                    {"source_labels": ["__name__"], "regex": "dlbench_.*", "action": "drop"}
                ]
        config["rule_files"].append("optional/dcgm-compat.yml")  # as docs/dashboards.md tells DCGM users to do
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        targets = config_dir / "targets"
        for path in targets.glob("*.yml"):
            path.write_text("[]\n")  # no node_exporter or dcgm-exporter here: those jobs simply have no targets
        (targets / "dlbench-exporter.yml").write_text(
            yaml.safe_dump([{"targets": [f"127.0.0.1:{self.exporter_port}"]}])
        )
        (targets / "dcgm.yml").write_text(yaml.safe_dump([{"targets": [f"127.0.0.1:{self.dcgm_port}"]}]))
        if self.with_run:
            (targets / "dlbench-train.yml").write_text(yaml.safe_dump([{"targets": [f"127.0.0.1:{self.run_port}"]}]))
        return config_path

    @staticmethod
    def _exporter_command(port: int, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dlbench",
            "exporter",
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            "--interval",
            "0.5",
            *extra,
        ]

    def start(self) -> "LiveStack":
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed: run scripts/install-test-deps.sh"
        self.writer.start()
        self._spawn(
            "exporter",
            self._exporter_command(self.exporter_port),
            env={"DLBENCH_FAKE_NVML": str(self.scenario_path)},
        )
        self._spawn(
            "dcgm-exporter",
            self._exporter_command(self.dcgm_port, "--dcgm-compat"),
            env={"DLBENCH_FAKE_NVML": str(self.scenario_path)},
        )
        if self.with_run:
            # A long run on CPU: the test reads what it needs while the run lasts, then stops it.
            self._spawn(
                "run",
                [
                    sys.executable,
                    "-m",
                    "dlbench",
                    "run",
                    "cifar-cnn",
                    "--metrics-port",
                    str(self.run_port),
                    "--device",
                    "cpu",
                    "--batch-size",
                    "32",
                    "--warmup",
                    "1",
                    "--duration",
                    "600",
                ],
            )
        config = self._write_prometheus_config()
        self._spawn(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            ],
        )
        wait_for(lambda: http_get(f"{self.prometheus.url}/-/ready")[0] == 200, 30, "prometheus to be ready")
        return self

    def query(self, expr: str) -> list[dict]:
        return self.prometheus.instant(expr, time.time())

    def wait_until(self, expr: str, timeout: float, check=bool) -> list[dict]:
        def ready():
            for name, process in self.processes.items():
                if name != "run" and process.poll() is not None:
                    raise AssertionError(f"{name} exited {process.returncode}:\n{self.log_of(name)}")
            try:
                result = self.query(expr)
            except PrometheusError:
                return None
            return result if check(result) else None

        return wait_for(ready, timeout, expr, step=0.5)

    def close(self) -> None:
        self.writer.stopped.set()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()
