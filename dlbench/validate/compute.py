"""Compute: the best achievable dense matmul rate per GPU and precision ("maximum achievable matmul FLOPS").

Method of stas00's mamf-finder (ml-engineering, compute/accelerator/benchmarks/mamf-finder.py, whose published
results the references are): the accelerator is first warmed up for a while (mamf-finder: 30 s) so its clocks and
temperature settle, then for each shape of a sweep warm-up iterations and timed iterations, each between CUDA events
with the L2 flushed before it; the MEAN of the timed iterations gives the shape's rate (2·m·n·k FLOPs) and the best
shape is the GPU's rate. Not the fastest iteration: on a cold GPU one iteration at boost clock reads several percent
above what the GPU sustains, and the references are means. Every GPU is measured; the slowest is the reported value
and each GPU is compared with the median of its peers.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from dlbench.validate import baselines, judge
from dlbench.validate.context import Context
from dlbench.checks import CheckResult, skip
from dlbench.validate.timing import iteration_seconds, l2_flush


@dataclass(frozen=True)
class Sweep:
    shapes: tuple[tuple[int, int, int], ...]  # (m, n, k): A is m×k, B is k×n
    warmup: int
    iterations: int
    warmup_seconds: float = 0.0  # matmuls on the device before any shape is timed, once per device


SWEEPS = {
    # quick: square shapes that reach the plateau on every current data-centre GPU, and one with a short k
    "quick": Sweep(((4096, 4096, 4096), (8192, 8192, 8192), (8192, 8192, 2048)), warmup=10, iterations=30),
    # long: mamf-finder's counts (50 warm-up, 100 timed) over a grid of multiples of 2048 up to 16384
    "long": Sweep(
        tuple((m, n, k) for m in (4096, 8192, 16384) for n in (4096, 8192, 16384) for k in (2048, 4096, 8192, 16384)),
        warmup=50,
        iterations=100,
        warmup_seconds=30.0,
    ),
    # the CPU path: the same code at sizes a laptop finishes in seconds; no verdict
    "cpu": Sweep(((128, 128, 128), (256, 256, 256)), warmup=1, iterations=3),
}
PRECISIONS = ("bf16", "tf32", "fp32")


def _dtype(torch, precision: str):
    return torch.bfloat16 if precision == "bf16" else torch.float32


def warm_up(torch, device, seconds: float) -> None:
    """Keep the device busy with bf16 matmuls for `seconds`, so the timed sweep starts from a warm, settled GPU."""
    if seconds <= 0 or device.type != "cuda":
        return
    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device=device)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(10):
            torch.mm(a, a)
        torch.cuda.synchronize(device)
    del a


def shape_tflops(m: int, n: int, k: int, times: list[float]) -> float:
    """TFLOP/s of one shape from its timed iterations: 2·m·n·k over the mean time, as mamf-finder reports."""
    return 2 * m * n * k / statistics.fmean(times) / 1e12


def best_matmul_tflops(torch, device, precision: str, sweep: Sweep) -> tuple[float, tuple[int, int, int], dict]:
    """(best TFLOP/s, its shape, TFLOP/s per shape) on one device, each shape's rate the mean of its iterations."""
    dtype = _dtype(torch, precision)
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"  # fp32 must not quietly run on TF32 tensor cores
    flush = l2_flush(torch, device)
    per_shape = {}
    try:
        for m, n, k in sweep.shapes:
            a = torch.randn(m, k, dtype=dtype, device=device)
            b = torch.randn(k, n, dtype=dtype, device=device)
            out = torch.empty(m, n, dtype=dtype, device=device)
            # the tensors bound as defaults: the `del` below frees them for the next shape once the timing is done
            times = iteration_seconds(
                torch,
                device,
                lambda a=a, b=b, out=out: torch.mm(a, b, out=out),
                sweep.warmup,
                sweep.iterations,
                before=flush,
            )
            per_shape[f"{m}x{n}x{k}"] = shape_tflops(m, n, k, times)
            del a, b, out
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    best = max(per_shape, key=per_shape.get)
    return per_shape[best], tuple(int(x) for x in best.split("x")), per_shape


def device_label(device) -> str:
    return "cpu" if device.type == "cpu" else str(device.index)


def device_name(torch, device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def run(ctx: Context) -> list[CheckResult]:
    torch = ctx.torch()
    if torch is None:
        return [skip(f"compute.matmul_{p}", f"best dense {p} matmul", ctx.no_torch_reason()) for p in PRECISIONS]
    devices = ctx.compute_devices()
    on_gpu = ctx.on_gpu()
    sweep = SWEEPS[ctx.options.level if on_gpu else "cpu"]
    results = []
    for precision in PRECISIONS:
        check_id, title = f"compute.matmul_{precision}", f"best dense {precision} matmul rate, slowest device"
        if on_gpu and precision != "fp32" and torch.cuda.get_device_capability(devices[0])[0] < 8:
            results.append(skip(check_id, title, f"{precision} needs an Ampere or newer GPU"))
            continue
        per_device, shapes = {}, {}
        with ctx.under_load(check_id):
            for device in devices:
                if precision == PRECISIONS[0]:
                    warm_up(torch, device, sweep.warmup_seconds)
                best, shape, per_shape = best_matmul_tflops(torch, device, precision, sweep)
                label = device_label(device)
                per_device[label], shapes[label] = float(f"{best:.5g}"), {"best_shape": shape, "tflops": per_shape}
        name, low = judge.slowest(per_device)
        data = {
            "sweep": [list(s) for s in sweep.shapes],
            "warmup": sweep.warmup,
            "iterations": sweep.iterations,
            "warmup_seconds": sweep.warmup_seconds,
            "statistic": "mean of the timed iterations",
            "per_device": shapes,
        }
        if not on_gpu:
            why = "measured on the CPU at small sizes: no GPU expectation applies"
            results.append(judge.on_the_cpu(check_id, title, low, "TFLOP/s", why, per_gpu=per_device, data=data))
            continue
        gpu_name = device_name(torch, devices[0])
        result = judge.against_reference(
            check_id,
            title,
            low,
            "TFLOP/s",
            baselines.matmul_reference(gpu_name, precision),
            ctx.options.peer_tolerance,
            can_fail=precision == "bf16",
            no_reference=baselines.no_reference(
                gpu_name, len(devices), f"{precision} matmul; no dense peak in dlbench/data/gpu_peaks.json either"
            ),
            per_gpu=per_device,
            data=data,
        )
        results.append(judge.name_slowest(result, f"{name} ({gpu_name})"))
        if len(per_device) > 1:
            results.append(
                judge.peers(
                    f"compute.peers_{precision}",
                    f"{precision} matmul rate of each GPU against the median of its peers",
                    per_device,
                    "TFLOP/s",
                    ctx.options.peer_tolerance,
                )
            )
    return results
