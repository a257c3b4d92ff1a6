"""The benchmark scripts the docs point to (docs/telemetry.md), run at a small scale: they print figures and assert
nothing themselves, so without these tests one could break with nobody noticing until the next measurement.
Everything listens on 127.0.0.1; NVML is the simulated one the scripts choose."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.integration


def run_benchmark(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_exporter_load_benchmark_runs_every_scenario():
    from dlbench.exporter.http import MAX_PENDING_CONNECTIONS

    small = ["--half-open", "300", "--clients", "2", "--scrapes", "5", "--latency-scrapes", "20", "--rounds", "1"]
    out = run_benchmark("exporter_load.py", *small)
    closed = re.search(r"(\d+) idle connections closed to make room", out)  # 300 over a bound of 256
    assert closed and int(closed.group(1)) >= 300 - MAX_PENDING_CONNECTIONS, out
    for scenario in ("concurrent scrapes, plain HTTP", "TLS + basic auth", "7 MIG (1g.10gb), --dcgm-compat"):
        assert scenario in out, out


def test_the_telemetry_benchmark_reports_its_ratios():
    out = run_benchmark("bench_telemetry.py", "--rounds", "1", "--steps", "20", "--scrapes", "20")
    assert re.search(r"median pair ratio on/off = \d+\.\d+", out), out
    assert re.search(r"scrape p99 ratio 8 GPUs / 1 GPU = \d+\.\d+", out), out
    assert re.search(r"sampler CPU time per sample \d+\.\d+ ms", out), out
