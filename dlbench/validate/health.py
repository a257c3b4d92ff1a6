"""Health: memory errors, row remapping, page retirement, XID events and slowdowns, read after the load checks.

Counters are compared with the reading taken before any load, so an error during the run is named as such.
"""

from __future__ import annotations

from dlbench.nvml.xid import xid_class
from dlbench.validate.context import Context
from dlbench.checks import FAIL, INFO, PASS, WARN, CheckResult, skip

# An XID whose class is critical (the GPU needs a reset, a reboot or NVIDIA's ECC or NVLink workflow) is a FAIL; any
# other XID during a validation run (the job's own fault, informational, or not in the catalogue) is a WARN. The
# classes are the exporter's and the alert rules' (dlbench/nvml/xid.py), from the same catalogue column.
XID_SOURCE = (
    "NVIDIA XID catalogue, Resolution Bucket (Immediate Action) "
    "(docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html)"
)
# Clock-event reasons that mean the GPU slowed itself down for heat or a hardware signal; the software power cap
# at full load is normal and is not one of them (NVML nvmlClocksEventReasons).
SLOWDOWN_REASONS = ("hw_slowdown", "hw_thermal_slowdown", "sw_thermal_slowdown", "hw_power_brake_slowdown")
# NVML (nvml.h, nvmlClocksEventReasonHwSlowdown) warns that HW slowdown "may be also reported during PState or clock
# change": a reason in one isolated sample is a WARN; held over this many consecutive samples it is a FAIL.
SUSTAINED_SAMPLES = 2


def _per_gpu(readings: dict[int, dict], path: str) -> dict[str, int]:
    values = {}
    for index, reading in readings.items():
        value = reading
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values[str(index)] = int(value)
    return values


def _ecc(ctx: Context, final: dict[int, dict]) -> list[CheckResult]:
    now = _per_gpu(final, "ecc_errors.uncorrected")
    if not now:
        return [skip("health.ecc_uncorrected", "no uncorrectable ECC errors", "no GPU here reports ECC counts")]
    before = _per_gpu(ctx.baseline, "ecc_errors.uncorrected")
    bad = {i: v for i, v in now.items() if v > 0}
    new = {i: v - before.get(i, 0) for i, v in now.items() if v > before.get(i, 0)}
    detail = "; ".join(
        f"GPU {i}: {v} uncorrectable (lifetime)" + (f", {new[i]} during this run" if i in new else "")
        for i, v in bad.items()
    )
    results = [
        CheckResult(
            "health.ecc_uncorrected",
            "no uncorrectable ECC errors",
            FAIL if bad else PASS,
            sum(now.values()),
            "errors",
            expected="== 0 on every GPU",
            source="NVML aggregate (lifetime) ECC counters",
            per_gpu=now,
            detail=detail,
        )
    ]
    corrected_now = _per_gpu(final, "ecc_errors.corrected")
    corrected_before = _per_gpu(ctx.baseline, "ecc_errors.corrected")
    grown = {i: v - corrected_before.get(i, 0) for i, v in corrected_now.items() if v > corrected_before.get(i, 0)}
    results.append(
        CheckResult(
            "health.ecc_corrected_during_run",
            "no corrected ECC errors during the run",
            WARN if grown else PASS,
            sum(grown.values()),
            "errors",
            expected="== 0",
            source="NVML aggregate ECC counters, before and after the load checks",
            per_gpu=grown,
            detail="corrected errors under load: watch this GPU" if grown else "",
        )
    )
    return results


def _remap(final: dict[int, dict]) -> CheckResult:
    failure, pending = _per_gpu(final, "row_remap_failure"), _per_gpu(final, "row_remap_pending")
    if not failure and not pending:
        return skip("health.row_remap", "no row-remap failure or pending remap", "no GPU here remaps rows (pre-Ampere)")
    bad = sorted({i for i, v in failure.items() if v} | {i for i, v in pending.items() if v})
    detail = "; ".join(
        f"GPU {i}: "
        + ("remap failed (replace the GPU)" if failure.get(i) else "remap pending (reset the GPU to apply it)")
        for i in bad
    )
    return CheckResult(
        "health.row_remap",
        "no row-remap failure or pending remap",
        FAIL if bad else PASS,
        len(bad),
        "GPUs",
        expected="no failure, nothing pending",
        source="NVML nvmlDeviceGetRemappedRows; NVIDIA GPU memory error management (row remapping)",
        per_gpu={i: {"failure": failure.get(i, 0), "pending": pending.get(i, 0)} for i in failure},
        detail=detail,
    )


def _retired_pages(ctx: Context) -> CheckResult:
    check_id, title = "health.retired_pages", "no page retirement pending, no retired pages"
    known = {str(i): s for i, s in ctx.static.items() if s.retired_pages is not None}
    if not known:
        return skip(check_id, title, "no GPU here reports page retirement (row remapping replaced it from Ampere on)")
    pending = sorted(i for i, s in known.items() if s.retired_pages_pending)
    retired = {i: s.retired_pages for i, s in known.items()}
    verdict = FAIL if pending else WARN if any(retired.values()) else PASS
    detail = (
        f"retirement pending on GPU {', '.join(pending)}: reload the driver"
        if pending
        else "pages retired: memory errors happened before; compare with the vendor's RMA criteria"
        if verdict == WARN
        else ""
    )
    return CheckResult(
        check_id,
        title,
        verdict,
        sum(retired.values()),
        "pages",
        expected="0 retired, none pending",
        source="NVIDIA Dynamic Page Retirement guide (NVML nvmlDeviceGetRetiredPages)",
        per_gpu=retired,
        detail=detail,
    )


def _xid(ctx: Context) -> CheckResult:
    check_id, title = "health.xid", "no XID error during the run"
    events = ctx.xid_events
    if not events and not ctx.reader.xid_supported:
        return skip(check_id, title, "XID events are not available from this driver (NVML event registration)")
    critical = [(i, code) for i, code, _ in events if xid_class(code) == "critical"]
    verdict = FAIL if critical else WARN if events else PASS
    per_gpu: dict[str, list[int]] = {}
    for index, code, _ in events:
        per_gpu.setdefault(str(index), []).append(code)
    detail = "; ".join(f"GPU {i}: XID {', '.join(map(str, codes))}" for i, codes in per_gpu.items())
    return CheckResult(
        check_id,
        title,
        verdict,
        len(events),
        "events",
        expected="none",
        source=XID_SOURCE,
        per_gpu=per_gpu,
        detail=detail,
    )


def _slowdown(ctx: Context) -> list[CheckResult]:
    samples = ctx.load_samples()
    active: dict[str, dict[str, int]] = {}  # GPU -> reason -> samples with it
    run: dict[tuple[str, str], int] = {}  # (GPU, reason) -> consecutive samples with it, up to the current one
    longest: dict[tuple[str, str], int] = {}
    counted: dict[str, int] = {}
    series: dict[str, list] = {}
    for label, t, readings in samples:
        for index, reading in readings.items():
            key = str(index)
            series.setdefault(key, []).append(
                {
                    "check": label,
                    "t": t,
                    "temperature_celsius": reading.get("temperature_celsius"),
                    "sm_clock_mhz": (reading.get("sm_clock_hertz") or 0) / 1e6 or None,
                    "power_watts": reading.get("power_watts"),
                }
            )
            reasons = reading.get("clocks_event_active")
            if reasons is None:
                continue
            counted[key] = counted.get(key, 0) + 1
            for reason in SLOWDOWN_REASONS:
                run[key, reason] = run.get((key, reason), 0) + 1 if reasons.get(reason) else 0
                longest[key, reason] = max(longest.get((key, reason), 0), run[key, reason])
                if reasons.get(reason):
                    active.setdefault(key, {}).setdefault(reason, 0)
                    active[key][reason] += 1
    if not counted:
        return [
            skip(
                "health.slowdown",
                "no thermal or hardware slowdown under load",
                "no NVML clock-event readings under load",
            )
        ]
    per_gpu = {i: {r: round(n / counted[i], 3) for r, n in reasons.items()} for i, reasons in active.items()}
    detail = "; ".join(
        f"GPU {i}: " + ", ".join(f"{r} {share:.0%} of samples" for r, share in reasons.items())
        for i, reasons in per_gpu.items()
    )
    sustained = any(n >= SUSTAINED_SAMPLES for n in longest.values())
    slowdown = CheckResult(
        "health.slowdown",
        "no thermal or hardware slowdown under load",
        FAIL if sustained else WARN if active else PASS,
        len(active),
        "GPUs",
        expected=f"none of {', '.join(SLOWDOWN_REASONS)}; FAIL when held for {SUSTAINED_SAMPLES} "
        "consecutive samples, WARN for one",
        source="NVML clock-event reasons while the load checks ran",
        per_gpu=per_gpu,
        detail=detail,
    )
    temperatures = {i: max((s["temperature_celsius"] or 0) for s in points) for i, points in series.items()}
    temperature = CheckResult(
        "health.temperature",
        "highest GPU temperature under load",
        INFO,
        max(temperatures.values()),
        "°C",
        per_gpu=temperatures,
        data={"series": series},
        detail="time series of temperature, SM clock and power in data",
    )
    return [slowdown, temperature]


def run(ctx: Context) -> list[CheckResult]:
    if not ctx.gpus:
        reason = f"no GPU: {ctx.nvml_problem}" if ctx.nvml_problem else "NVML lists no GPU"
        return [skip("health.gpus", "GPU health", reason)]
    ctx.poll_xid()
    final = ctx.reader.read_all()
    lost = sorted(str(i) for i, r in final.items() if not r.get("up"))
    results = []
    if lost:
        results.append(
            CheckResult(
                "health.gpus_answer",
                "every GPU answers NVML after the run",
                FAIL,
                len(lost),
                "GPUs lost",
                detail=f"GPU {', '.join(lost)} stopped answering (fallen off the bus?)",
            )
        )
    return results + _ecc(ctx, final) + [_remap(final), _retired_pages(ctx), _xid(ctx)] + _slowdown(ctx)
