"""Memory: device memory bandwidth (STREAM-like copy and triad) and pinned host<->device bandwidth over PCIe.

Bytes counted as STREAM counts them: copy moves 2·N (read + write), triad a = b + s·c moves 3·N. Host transfers
use page-locked (pinned) host memory, as CUDA's bandwidthTest does, so the DMA engines run at the link's rate.
"""

from __future__ import annotations

from dlbench.validate import baselines, judge
from dlbench.validate.baselines import Expectation
from dlbench.validate.compute import device_label, device_name
from dlbench.validate.context import Context
from dlbench.checks import INFO, CheckResult, skip
from dlbench.validate.timing import iteration_seconds

GIB = 2**30
DEVICE_BYTES = {"quick": GIB, "long": 4 * GIB, "cpu": 16 * 2**20}
HOST_BYTES = {"quick": 256 * 2**20, "long": GIB, "cpu": 16 * 2**20}
ITERATIONS = {"quick": (3, 10), "long": (5, 30), "cpu": (1, 3)}  # (warm-up, timed)

# PCIe usable rate per lane and direction in GB/s after line encoding (PCI-SIG base specifications: 2.5 and 5 GT/s
# with 8b/10b; 8, 16, 32 GT/s with 128b/130b; 64 GT/s PAM4 with FLIT encoding, 242/256).
PCIE_LANE_GBS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
# Packet headers and flow control leave about 80% of that for payload at large transfers (CUDA bandwidthTest and
# nvbandwidth measure 25-26 GB/s on Gen4 x16, 50-55 GB/s on Gen5 x16); 0.70 of the raw rate is the PASS floor.
PCIE_PASS_FRACTION, PCIE_FAIL_FRACTION = 0.70, 0.50
PCIE_SOURCE = (
    "PCI-SIG PCIe base specification lane rates after encoding; about 80% payload efficiency as CUDA "
    "bandwidthTest/nvbandwidth measure it"
)


def _level(ctx: Context) -> str:
    return ctx.options.level if ctx.on_gpu() else "cpu"


def device_bandwidth(torch, device, nbytes: int, level: str) -> dict[str, float]:
    """{'copy': GB/s, 'triad': GB/s} on one device, fastest iteration."""
    n = nbytes // 4
    a, b, c = (torch.empty(n, dtype=torch.float32, device=device) for _ in range(3))
    b.fill_(1.0)
    c.fill_(2.0)
    warmup, iterations = ITERATIONS[level]
    copy = iteration_seconds(torch, device, lambda: a.copy_(b), warmup, iterations)
    triad = iteration_seconds(torch, device, lambda: torch.add(b, c, alpha=3.0, out=a), warmup, iterations)
    return {"copy": 2 * nbytes / min(copy) / 1e9, "triad": 3 * nbytes / min(triad) / 1e9}


def host_bandwidth(torch, device, nbytes: int, level: str) -> dict[str, float]:
    """{'h2d': GB/s, 'd2h': GB/s} between pinned host memory and `device` (host to host on the CPU path)."""
    pinned = device.type == "cuda"
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
    on_device = torch.empty(nbytes, dtype=torch.uint8, device=device)
    warmup, iterations = ITERATIONS[level]
    h2d = iteration_seconds(torch, device, lambda: on_device.copy_(host, non_blocking=pinned), warmup, iterations)
    d2h = iteration_seconds(torch, device, lambda: host.copy_(on_device, non_blocking=pinned), warmup, iterations)
    return {"h2d": nbytes / min(h2d) / 1e9, "d2h": nbytes / min(d2h) / 1e9}


def _memory_gib(ctx: Context, label: str) -> float | None:
    reading = ctx.baseline.get(int(label), {}) if label.isdigit() else {}
    total = reading.get("memory_total_bytes")
    return total / GIB if total else None


def _measure_each(ctx: Context, label: str, devices, measure) -> dict[str, dict[str, float]]:
    """{kind: {device label: GB/s}} from `measure(device)` -> {kind: GB/s}, under NVML sampling."""
    per_kind: dict[str, dict[str, float]] = {}
    with ctx.under_load(label):
        for device in devices:
            for kind, gbs in measure(device).items():
                per_kind.setdefault(kind, {})[device_label(device)] = round(gbs, 2)
    return per_kind


def _device_checks(ctx: Context, torch, devices, level: str) -> list[CheckResult]:
    per_kind = _measure_each(
        ctx, "memory.device", devices, lambda device: device_bandwidth(torch, device, DEVICE_BYTES[level], level)
    )
    results = []
    for kind, per_device in per_kind.items():
        check_id, title = f"memory.device_{kind}", f"device memory {kind} bandwidth (STREAM-like), slowest device"
        name, low = judge.slowest(per_device)
        data = {"bytes": DEVICE_BYTES[level]}
        if level == "cpu":
            why = "host memory measured on the CPU path: no GPU expectation applies"
            results.append(judge.on_the_cpu(check_id, title, low, "GB/s", why, per_gpu=per_device, data=data))
            continue
        gpu_name = device_name(torch, devices[0])
        reference = baselines.memory_reference(gpu_name, _memory_gib(ctx, name))
        result = judge.against_reference(
            check_id,
            title,
            low,
            "GB/s",
            reference[1] if reference else None,
            ctx.options.peer_tolerance,
            can_fail=True,
            no_reference=baselines.no_reference(gpu_name, len(devices), "memory bandwidth"),
            per_gpu=per_device,
            data={**data, "datasheet_gbs": reference[0] if reference else None},
        )
        results.append(judge.name_slowest(result, name))
    return results


def pcie_reference(ctx: Context, label: str) -> Expectation | None:
    state = ctx.static.get(int(label)) if label.isdigit() else None
    if state is None or not state.pcie_max_generation or not state.pcie_max_width:
        return None
    lane = PCIE_LANE_GBS.get(state.pcie_max_generation)
    if lane is None:
        return None
    raw = lane * state.pcie_max_width
    return Expectation(raw, PCIE_SOURCE, f"raw rate of PCIe Gen{state.pcie_max_generation} x{state.pcie_max_width}")


def _host_checks(ctx: Context, torch, devices, level: str) -> list[CheckResult]:
    per_direction = _measure_each(
        ctx, "memory.host", devices, lambda device: host_bandwidth(torch, device, HOST_BYTES[level], level)
    )
    results = []
    words = {"h2d": "host-to-device", "d2h": "device-to-host"}
    for direction, per_device in per_direction.items():
        check_id, title = f"memory.{direction}", f"pinned {words[direction]} bandwidth, slowest device"
        name, low = judge.slowest(per_device)
        if level == "cpu":
            why = "host-to-host copy on the CPU path: no PCIe link to judge"
            results.append(judge.on_the_cpu(check_id, title, low, "GB/s", why, per_gpu=per_device))
            continue
        verdicts = {}
        for label, gbs in per_device.items():
            reference = pcie_reference(ctx, label)
            verdicts[label] = None if reference is None else gbs / reference.value
        judged = {k: v for k, v in verdicts.items() if v is not None}
        if not judged:
            results.append(
                CheckResult(
                    check_id,
                    title,
                    INFO,
                    low,
                    "GB/s",
                    per_gpu=per_device,
                    detail="NVML does not report the PCIe link maximum: no expectation",
                )
            )
            continue
        worst = min(judged, key=judged.get)
        reference = pcie_reference(ctx, worst)
        result = judge.at_least_fraction(
            check_id,
            title,
            per_device[worst],
            "GB/s",
            reference,
            PCIE_PASS_FRACTION,
            PCIE_FAIL_FRACTION,
            per_gpu=per_device,
        )
        result.detail = f"lowest fraction of its link: GPU {worst}"
        results.append(result)
    return results


def run(ctx: Context) -> list[CheckResult]:
    torch = ctx.torch()
    ids = ("memory.device_copy", "memory.device_triad", "memory.h2d", "memory.d2h")
    if torch is None:
        return [skip(i, i, ctx.no_torch_reason()) for i in ids]
    devices, level = ctx.compute_devices(), _level(ctx)
    return _device_checks(ctx, torch, devices, level) + _host_checks(ctx, torch, devices, level)
