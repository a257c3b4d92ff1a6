"""Burn-in: sustained matmul load on every device at once for --burn-in DURATION, results cross-checked.

Silent data errors: every device multiplies the same seeded operands over and over; each result is reduced on the
device to an exact integer digest of its bit patterns and compared with the answer most results of its GPU model
give. cuBLAS gives bit-identical results for the same inputs on GPUs of the same architecture and SM count, with one
stream active (cuBLAS documentation, "Results reproducibility"), so any difference is an error the hardware did not
report.
The rate of each device is kept as a time series, and NVML's clocks, temperature and power are sampled alongside
(health.temperature holds that series; health.slowdown and health.xid judge it).
"""

from __future__ import annotations

import threading
from collections import Counter
import time

from dlbench.validate import judge
from dlbench.validate.compute import device_label, device_name
from dlbench.validate.context import Context
from dlbench.checks import FAIL, INFO, PASS, WARN, CheckResult, skip

SIZE = {"cuda": 8192, "cpu": 256}
CHECK_EVERY = {"cuda": 20, "cpu": 5}  # products between two digests: the digest costs a pass over the result
RATE_DROP_WARN = 0.10  # the last quarter this much slower than the first: the device cannot hold its clocks


def product(torch, a, b):
    """One unit of load (a module function so that a test can make one GPU return a wrong answer)."""
    return a @ b


def digest(torch, result) -> tuple[int, int]:
    """Exact, order-sensitive integer digest of the result's bits (a float sum could hide a flipped bit)."""
    bits = result.contiguous().view(-1).view(torch.int16 if result.element_size() == 2 else torch.int32).long()
    weights = torch.arange(bits.numel(), device=bits.device) % 251 + 1
    return int(bits.sum()), int((bits * weights).sum())


class DeviceLoad:
    def __init__(self, torch, device, seconds: float):
        self.torch, self.device, self.seconds = torch, device, seconds
        self.kind = device.type
        self.digests: list[tuple[int, int]] = []
        self.series: list[dict] = []  # {"t": seconds since start, "tflops": rate over the last CHECK_EVERY products}
        self.error: str | None = None

    def run(self) -> None:
        torch, device = self.torch, self.device
        try:
            n = SIZE[self.kind]
            dtype = (
                torch.bfloat16
                if self.kind == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8
                else torch.float32
            )
            generator = torch.Generator().manual_seed(1234)
            a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
            b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
            # one product outside the time series first: cuBLAS creates its handle and picks a kernel on the first
            # call, which would make the first interval the "lowest" and the fleet comparison of that figure noise
            # (its result is still checked)
            self.digests.append(digest(torch, product(torch, a, b)))
            start = last = time.monotonic()
            while time.monotonic() - start < self.seconds:
                for _ in range(CHECK_EVERY[self.kind]):
                    result = product(torch, a, b)
                self.digests.append(digest(torch, result))  # reading the digest waits for the device
                now = time.monotonic()
                self.series.append(
                    {
                        "t": round(now - start, 3),
                        "tflops": round(2 * n**3 * CHECK_EVERY[self.kind] / (now - last) / 1e12, 4),
                    }
                )
                last = now
        except Exception as error:  # noqa: BLE001 - reported as this device's failure, the others keep running
            self.error = f"{type(error).__name__}: {error}"


def _quarter_drop(series: list[dict]) -> float | None:
    if len(series) < 8:
        return None
    quarter = len(series) // 4
    first = sum(p["tflops"] for p in series[:quarter]) / quarter
    last = sum(p["tflops"] for p in series[-quarter:]) / quarter
    return 1 - last / first if first else None


def run(ctx: Context) -> list[CheckResult]:
    torch = ctx.torch()
    ids = ("burnin.silent_data_errors", "burnin.sustained_rate")
    if torch is None:
        return [skip(i, i, ctx.no_torch_reason()) for i in ids]
    devices = ctx.compute_devices()
    loads = [DeviceLoad(torch, device, ctx.options.burn_in_seconds) for device in devices]
    with ctx.under_load("burnin"):
        threads = [threading.Thread(target=load.run, name=f"burnin-{load.device}") for load in loads]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return [_silent_data(torch, loads), _sustained(ctx, loads)]


def _silent_data(torch, loads: list[DeviceLoad]) -> CheckResult:
    # The reference answer of a model is the digest most of its results agree on, not the first one seen: when the
    # very first product is the corrupted one, every healthy result after it would otherwise be counted wrong.
    by_model: dict[str, Counter] = {}
    for load in loads:
        by_model.setdefault(device_name(torch, load.device), Counter()).update(load.digests)
    reference = {model: counts.most_common(1)[0][0] for model, counts in by_model.items() if counts}
    wrong: dict[str, int] = {}
    checked = 0
    for load in loads:
        expected = reference.get(device_name(torch, load.device))
        for value in load.digests:
            checked += 1
            if value != expected:
                wrong[device_label(load.device)] = wrong.get(device_label(load.device), 0) + 1
    crashed = {device_label(load.device): load.error for load in loads if load.error}
    verdict = FAIL if wrong or crashed else PASS
    detail = "; ".join(
        [f"device {d}: {n} result(s) differ from the majority" for d, n in wrong.items()]
        + [f"device {d}: {e}" for d, e in crashed.items()]
    )
    return CheckResult(
        "burnin.silent_data_errors",
        "the same product gives the same bits on every device, every time",
        verdict,
        sum(wrong.values()),
        f"wrong of {checked} results",
        expected="== 0",
        source="cuBLAS documentation, results reproducibility (same architecture: bit-identical)",
        per_gpu={device_label(load.device): len(load.digests) for load in loads},
        detail=detail,
    )


def _sustained(ctx: Context, loads: list[DeviceLoad]) -> CheckResult:
    per_device, drops = {}, {}
    for load in loads:
        label = device_label(load.device)
        if load.series:
            per_device[label] = round(min(p["tflops"] for p in load.series), 4)
        drop = _quarter_drop(load.series)
        if drop is not None:
            drops[label] = round(drop, 4)
    data = {"seconds": ctx.options.burn_in_seconds, "series": {device_label(l.device): l.series for l in loads}}
    title = "matmul rate held for the whole burn-in (lowest interval reported)"
    if not per_device:
        return CheckResult(
            "burnin.sustained_rate", title, FAIL, detail="no device completed a burn-in interval", data=data
        )
    if not ctx.on_gpu():
        why = "CPU path: no GPU expectation applies"
        low = min(per_device.values())
        return judge.on_the_cpu("burnin.sustained_rate", title, low, "TFLOP/s", why, per_gpu=per_device, data=data)
    dropped = {d: v for d, v in drops.items() if v > RATE_DROP_WARN}
    verdict = WARN if dropped else PASS if drops else INFO
    return CheckResult(
        "burnin.sustained_rate",
        title,
        verdict,
        min(per_device.values()),
        "TFLOP/s",
        expected=f"last quarter within {RATE_DROP_WARN:.0%} of the first",
        source="dlbench's choice: a GPU that cannot hold its clocks under sustained load slows down over the run",
        per_gpu=per_device,
        data={**data, "drop": drops},
        detail="; ".join(f"GPU {d}: {v:.0%} slower at the end" for d, v in dropped.items())
        or ("" if drops else "too short to compare quarters (fewer than 8 intervals)"),
    )
