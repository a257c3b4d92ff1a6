"""GPU micro-benchmarks for pytest-benchmark: run on CUDA when present, else on the CPU at small sizes.

    pytest benchmarks/micro --benchmark-only --benchmark-autosave
    pytest benchmarks/micro --benchmark-only --benchmark-compare --benchmark-compare-fail=mean:5%

Timing on CUDA: every benchmark uses a timer that synchronises the device before it reads the clock. pytest-benchmark
reads the timer once before and once after a round of `iterations` calls, so a round is the time the GPU took for
those calls, back to back (launches overlap execution as in real work), and a single synchronisation at each edge.
Each benchmark records the FLOPs or bytes of one call in `extra_info`, from which TFLOP/s and GB/s are printed at the
end and `dlbench compare` / `dlbench report` compute theirs.
"""

from __future__ import annotations

import pytest
import torch

from micro_device import CPU_ROUNDS, DEVICE, DEVICE_TIMER, GPU_ROUNDS, ON_GPU, Rounds, device_name


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "benchmark" not in getattr(item, "fixturenames", ()):
            continue  # hooks see the whole session's items: leave other tests alone
        item.add_marker(pytest.mark.benchmark(timer=DEVICE_TIMER, group=item.module.__name__.split("_", 1)[-1]))


@pytest.fixture
def measure(benchmark):
    """`measure(fn, flops=..., bytes=..., precision=...)`: time `fn` with the device timer and record what it does."""
    name = device_name()

    def run(fn, *, flops: float | None = None, bytes: float | None = None, rounds: Rounds | None = None, **info):
        benchmark.extra_info.update(device=str(DEVICE), device_name=name, torch_version=torch.__version__, **info)
        if flops is not None:
            benchmark.extra_info["flops"] = flops
        if bytes is not None:
            benchmark.extra_info["bytes"] = bytes
        plan = rounds or (GPU_ROUNDS if ON_GPU else CPU_ROUNDS)
        return benchmark.pedantic(fn, rounds=plan.rounds, iterations=plan.iterations, warmup_rounds=plan.warmup_rounds)

    return run


def pytest_terminal_summary(terminalreporter, config):
    """The rates beside pytest-benchmark's times: achieved TFLOP/s or GB/s from each median round."""
    session = getattr(config, "_benchmarksession", None)
    benchmarks = [b for b in getattr(session, "benchmarks", []) if getattr(b, "stats", None) is not None]
    if not benchmarks:
        return
    terminalreporter.section("achieved (from the median round)")
    for bench in benchmarks:
        median = bench.stats.median
        extra = bench.extra_info
        rates = []
        if extra.get("flops"):
            rates.append(f"{extra['flops'] / median / 1e12:10.4g} TFLOP/s")
        if extra.get("bytes"):
            rates.append(f"{extra['bytes'] / median / 1e9:10.4g} GB/s")
        terminalreporter.write_line(f"{bench.name:<48} {median * 1e3:10.3f} ms  {'  '.join(rates)}")
