"""The verdict model shared by every check (`dlbench validate`'s and the host spec comparison's): one `CheckResult`
per check, each with its measured value, expectation and source.

Verdicts: PASS, WARN (worth a look, does not reject the host), FAIL (rejects the host), SKIP (could not be measured
here, with the reason) and INFO (measured, but no expectation applies, e.g. a micro-benchmark on a CPU).

A leaf: `validate` (which runs checks and keeps the `Report`) and `hostspec` (which compares a host with its spec)
both build these, and neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS, WARN, FAIL, SKIP, INFO = "PASS", "WARN", "FAIL", "SKIP", "INFO"
VERDICTS = (PASS, WARN, FAIL, SKIP, INFO)


@dataclass
class CheckResult:
    id: str  # "<family>.<name>", stable across versions: summaries and CI histories key on it
    title: str
    verdict: str
    measured: Any = None  # number or text; None when nothing could be measured
    unit: str = ""
    expected: str | None = None  # the rule the measurement was judged by, in words ("≥ 715 TFLOP/s")
    source: str | None = None  # where the expectation comes from (datasheet, published measurement, stack.yml)
    detail: str = ""  # why the verdict, in a sentence
    per_gpu: dict[str, Any] = field(default_factory=dict)  # GPU index (as text, JSON keys) -> measured value
    data: dict[str, Any] = field(default_factory=dict)  # supporting figures: sweeps, time series
    duration_seconds: float = 0.0

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]

    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self)}


def skip(check_id: str, title: str, reason: str) -> CheckResult:
    return CheckResult(check_id, title, SKIP, detail=reason)


def at_least(
    check_id: str,
    title: str,
    measured: float,
    unit: str,
    floor: float,
    source: str,
    *,
    warn_floor: float | None = None,
    detail: str = "",
    **extra,
) -> CheckResult:
    """PASS at or above `floor`; WARN between `warn_floor` and `floor` when given; FAIL below."""
    if measured >= floor:
        verdict = PASS
    elif warn_floor is not None and measured >= warn_floor:
        verdict = WARN
    else:
        verdict = FAIL
    rule = f">= {floor:.4g} {unit}".rstrip()
    if warn_floor is not None:
        rule += f" (warn below, fail below {warn_floor:.4g})"
    return CheckResult(check_id, title, verdict, measured, unit, rule, source, detail, **extra)
