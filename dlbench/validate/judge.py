"""Turning a measurement and its reference into a verdict, the same way for every micro-benchmark."""

from __future__ import annotations

from dlbench.validate.baselines import Expectation
from dlbench.checks import INFO, CheckResult, at_least


def against_reference(
    check_id: str,
    title: str,
    measured: float,
    unit: str,
    reference: Expectation | None,
    tolerance: float,
    *,
    can_fail: bool,
    no_reference: str,
    **extra,
) -> CheckResult:
    """PASS within `tolerance` of the reference; below that WARN, and FAIL beyond twice the tolerance when the
    reference is a published measurement of the same method (`can_fail`); INFO when there is no reference."""
    if reference is None:
        return CheckResult(check_id, title, INFO, measured, unit, detail=no_reference, **extra)
    floor = reference.value * (1 - tolerance)
    warn_floor = reference.value * (1 - 2 * tolerance) if can_fail else float("-inf")
    result = at_least(check_id, title, measured, unit, floor, reference.source, warn_floor=warn_floor, **extra)
    result.expected = f">= {floor:.4g} {unit} ({1 - tolerance:.0%} of {reference.value:.4g}, {reference.basis})" + (
        f"; FAIL below {warn_floor:.4g}" if can_fail else "; WARN only"
    )
    return result


def on_the_cpu(check_id: str, title: str, measured: float, unit: str, why: str, **extra) -> CheckResult:
    """A measurement of the CPU path (no GPU here): kept as INFO, since no GPU reference applies to it."""
    return CheckResult(check_id, title, INFO, measured, unit, detail=why, **extra)


def name_slowest(result: CheckResult, who: str) -> CheckResult:
    """Put which device was the slowest in front of the verdict's own reason (which must not be lost)."""
    result.detail = "; ".join(part for part in (f"slowest GPU {who}", result.detail) if part)
    return result


def slowest(per_device: dict[str, float]) -> tuple[str, float]:
    name = min(per_device, key=per_device.get)
    return name, per_device[name]


PEERS_SOURCE = "GPUs of one node differ by up to about 5% (stas00/ml-engineering); a wider gap is a fault"


def peers(
    check_id: str, title: str, per_device: dict[str, float], unit: str, tolerance: float, source: str = PEERS_SOURCE
) -> CheckResult:
    """The slowest device (or pair) against the median of all: more than `tolerance` below it is a FAIL."""
    values = sorted(per_device.values())
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    name, low = slowest(per_device)
    result = at_least(
        check_id,
        title,
        low / median,
        "of median",
        1 - tolerance,
        source,
        per_gpu={k: round(v / median, 4) for k, v in per_device.items()},
    )
    result.detail = f"slowest {name}: {low:.4g} {unit} against the median {median:.4g} {unit}"
    return result


def at_least_fraction(
    check_id: str,
    title: str,
    measured: float,
    unit: str,
    reference: Expectation,
    pass_fraction: float,
    fail_fraction: float,
    **extra,
) -> CheckResult:
    """PASS at `pass_fraction` of the reference or more, FAIL below `fail_fraction`, WARN between."""
    result = at_least(
        check_id,
        title,
        measured,
        unit,
        reference.value * pass_fraction,
        reference.source,
        warn_floor=reference.value * fail_fraction,
        **extra,
    )
    result.expected = (
        f">= {reference.value * pass_fraction:.4g} {unit} ({pass_fraction:.0%} of "
        f"{reference.value:.4g}, {reference.basis}); FAIL below {fail_fraction:.0%}"
    )
    return result
