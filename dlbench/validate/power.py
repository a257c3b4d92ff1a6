"""Power: the power limit in force on each GPU against the limit the board ships with and the model's datasheet TDP.

A GPU capped below its default (`nvidia-smi -pl`, a DCGM power policy, a boot script) runs every load slower and
passes every health check while doing so: DCGM's diagnostic reports it (DCGM_FR_ENFORCED_POWER_LIMIT). The default
limit itself (nvmlDeviceGetPowerManagementDefaultLimit, nvidia-smi's "Default Power Limit") is the board's; one below
the model's datasheet TDP is a lower-power variant of the board (an OEM configuration, e.g. 500 W H100 SXM boards), to
be checked against what was ordered.
"""

from __future__ import annotations

import statistics
import time

from dlbench.validate import baselines
from dlbench.validate.context import Context
from dlbench.checks import FAIL, PASS, WARN, CheckResult, skip

CHECK_ID, TITLE = "power.limit", "enforced power limit at the default and the model's TDP"
SOURCE = (
    "NVML nvmlDeviceGetEnforcedPowerLimit and nvmlDeviceGetPowerManagementDefaultLimit; DCGM diagnostic "
    "DCGM_FR_ENFORCED_POWER_LIMIT"
)
SLACK = 0.99  # limits are set in whole watts; a watt or so below the default is not a cap


def _set_default_command(capped: dict[str, float], gpu_count: int) -> str:
    # nvidia-smi(1): -pl applies to all GPUs unless -i selects one; it lasts until the driver reloads
    limits = set(capped.values())
    if len(capped) == gpu_count and len(limits) == 1:
        return f"sudo nvidia-smi -pl {limits.pop():g}"
    return " && ".join(f"sudo nvidia-smi -i {gpu} -pl {limit:g}" for gpu, limit in capped.items())


def run(ctx: Context) -> list[CheckResult]:
    if not ctx.gpus:
        return [skip(CHECK_ID, TITLE, f"no GPU: {ctx.nvml_problem}" if ctx.nvml_problem else "NVML lists no GPU")]
    states = {str(i): s for i, s in sorted(ctx.static.items()) if s.power_enforced_limit_watts is not None}
    if not states:
        return [skip(CHECK_ID, TITLE, "NVML reports no enforced power limit on this GPU")]
    model = ctx.gpus[0].name
    tdp = baselines.tdp_reference(model)
    capped = {
        i: s.power_default_limit_watts
        for i, s in states.items()
        if s.power_default_limit_watts and s.power_enforced_limit_watts < SLACK * s.power_default_limit_watts
    }
    low_default = {
        i: s.power_default_limit_watts
        for i, s in states.items()
        if tdp and s.power_default_limit_watts and s.power_default_limit_watts < SLACK * tdp.value
    }
    below_tdp = {
        i: s.power_enforced_limit_watts
        for i, s in states.items()
        if tdp and not s.power_default_limit_watts and s.power_enforced_limit_watts < SLACK * tdp.value
    }
    notes = []
    if capped:
        notes.append(
            "; ".join(
                f"GPU {i} capped at {states[i].power_enforced_limit_watts:g} W of its default {default:g} W"
                for i, default in capped.items()
            )
            + f": restore with `{_set_default_command(capped, len(ctx.gpus))}` and remove what set the cap"
        )
    if below_tdp:
        notes.append(
            "; ".join(f"GPU {i} limited to {limit:g} W" for i, limit in below_tdp.items())
            + f", below the {tdp.value:g} W TDP of a {baselines.model_name(model)}"
        )
    if low_default:
        notes.append(
            "; ".join(f"GPU {i} ships with a {default:g} W default" for i, default in low_default.items())
            + f", below the {tdp.value:g} W TDP of a {baselines.model_name(model)} datasheet: a lower-power "
            "board configuration; check it against the order"
        )
    if not tdp:
        notes.append(baselines.no_reference(model, len(ctx.gpus), "TDP") + " (only the default limit is judged)")
    per_gpu = {
        i: {"enforced_watts": s.power_enforced_limit_watts, "default_watts": s.power_default_limit_watts}
        for i, s in states.items()
    }
    verdict = FAIL if capped or below_tdp else WARN if low_default else PASS
    expected = "enforced limit = default limit" + (f" = {tdp.value:g} W TDP" if tdp else "")
    return [
        CheckResult(
            CHECK_ID,
            TITLE,
            verdict,
            min(s.power_enforced_limit_watts for s in states.values()),
            "W",
            expected=expected,
            source=f"{SOURCE}; {tdp.source}" if tdp else SOURCE,
            per_gpu=per_gpu,
            detail="; ".join(notes),
        )
    ]


# The sustained phase at --level long, as DCGM's targeted power test judges it (nvvs plugin targeted_power: 120 s of
# GEMM, pass at 0.75 of the SKU's target power, H100 700 W, B200 1,000 W; fail on a clock drop): every GPU at once
# multiplies bf16 matrices for SUSTAINED_SECONDS while NVML is sampled; after the ramp, each GPU's mean board power
# must reach SUSTAINED_FRACTION of its TDP (of its default limit where the table has no TDP), and its SM clock must
# not collapse. Throttle reasons during it are judged by health.slowdown with the other load windows.
SUSTAINED_ID, SUSTAINED_TITLE = "power.sustained", "board power held near TDP under sustained bf16 GEMM"
SUSTAINED_SECONDS = 120.0
SUSTAINED_FRACTION = 0.75
RAMP_FRACTION = 0.2  # the first fifth of the phase is the ramp: clocks and power settle
CLOCK_COLLAPSE = 0.5  # an SM clock sample below half the highest the GPU held in the phase is a collapse
SUSTAINED_SOURCE = (
    "DCGM diagnostic targeted_power (nvvs/diag-skus.yaml.in: 120 s, pass at 0.75 of the target power, "
    "fail on clock drop)"
)


def gemm_load(torch, devices, seconds: float) -> None:
    """bf16 8192³ products on every device at once for `seconds`: batches queued on each device, then all synced."""
    operands = [torch.randn(8192, 8192, dtype=torch.bfloat16, device=device) for device in devices]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for a in operands:
            for _ in range(20):  # about 30 ms of work per device on an H100: launch gaps stay negligible
                torch.mm(a, a)
        for device in devices:
            torch.cuda.synchronize(device)


def _phase_series(window, index: int) -> tuple[list[float], list[float]]:
    samples = window.samples[int(len(window.samples) * RAMP_FRACTION) :]
    power = [r[index]["power_watts"] for _, r in samples if r.get(index, {}).get("power_watts") is not None]
    clock = [r[index]["sm_clock_hertz"] / 1e6 for _, r in samples if r.get(index, {}).get("sm_clock_hertz")]
    return power, clock


def sustained(ctx: Context, load=gemm_load) -> list[CheckResult]:
    if ctx.options.level != "long":
        return [skip(SUSTAINED_ID, SUSTAINED_TITLE, "runs at --level long only (120 s)")]
    torch = ctx.torch()
    if torch is None or not ctx.on_gpu() or not ctx.gpus:
        return [skip(SUSTAINED_ID, SUSTAINED_TITLE, "needs GPUs that torch and NVML both see")]
    with ctx.under_load(SUSTAINED_ID) as window:
        load(torch, ctx.compute_devices(), SUSTAINED_SECONDS)
    tdp = baselines.tdp_reference(ctx.gpus[0].name)
    per_gpu, short, collapsed = {}, [], []
    for gpu in ctx.gpus:
        target = (
            tdp.value if tdp else (ctx.static[gpu.index].power_default_limit_watts if gpu.index in ctx.static else None)
        )
        power, clock = _phase_series(window, gpu.index)
        if not power or not target:
            continue
        mean = statistics.fmean(power)
        top_clock = max(clock) if clock else None
        per_gpu[str(gpu.index)] = {
            "mean_watts": round(mean, 1),
            "of_target": round(mean / target, 3),
            "min_sm_mhz": min(clock) if clock else None,
            "max_sm_mhz": top_clock,
        }
        if mean < SUSTAINED_FRACTION * target:
            short.append(f"GPU {gpu.index} held {mean:.0f} W, {mean / target:.0%} of {target:g} W")
        if clock and min(clock) < CLOCK_COLLAPSE * top_clock:
            collapsed.append(f"GPU {gpu.index} SM clock fell to {min(clock):.0f} MHz from {top_clock:.0f}")
    if not per_gpu:
        return [skip(SUSTAINED_ID, SUSTAINED_TITLE, "NVML reported no board power during the phase")]
    worst = min(v["of_target"] for v in per_gpu.values())
    detail = "; ".join(short + collapsed)
    if short:
        detail += ": check power.limit, the PSUs and cooling (nvidia-smi -q -d PERFORMANCE names the throttle reason)"
    if not tdp:
        detail = "; ".join(
            filter(
                None,
                [
                    detail,
                    baselines.no_reference(ctx.gpus[0].name, len(ctx.gpus), "TDP")
                    + ": judged against the default power limit",
                ],
            )
        )
    return [
        CheckResult(
            SUSTAINED_ID,
            SUSTAINED_TITLE,
            FAIL if short or collapsed else PASS,
            worst,
            "of target power",
            expected=f">= {SUSTAINED_FRACTION:.0%} of "
            + (f"the {tdp.value:g} W TDP" if tdp else "the default power limit")
            + f" for {SUSTAINED_SECONDS:g} s after the ramp, no SM clock below {CLOCK_COLLAPSE:.0%} of "
            "the highest it held",
            source=f"{SUSTAINED_SOURCE}; {tdp.source}" if tdp else SUSTAINED_SOURCE,
            per_gpu=per_gpu,
            detail=detail,
        )
    ]
