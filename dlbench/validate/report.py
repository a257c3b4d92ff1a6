"""The validation report: one `CheckResult` per check, each with its measured value, expectation and source.

Verdicts: PASS, WARN (worth a look, does not reject the host), FAIL (rejects the host), SKIP (could not be measured
here, with the reason) and INFO (measured, but no expectation applies, e.g. a micro-benchmark on a CPU).
Exit code of `dlbench validate`: 0 when nothing failed (warnings allowed), 1 when any check failed; 2 is bad input
and is raised before any check runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1

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


@dataclass
class Report:
    environment: dict
    options: dict
    checks: list[CheckResult] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def add(self, result: CheckResult) -> CheckResult:
        self.checks.append(result)
        return result

    def counts(self) -> dict[str, int]:
        return {verdict: sum(1 for c in self.checks if c.verdict == verdict) for verdict in VERDICTS}

    @property
    def verdict(self) -> str:
        """FAIL if any check failed, else WARN if any warned, else PASS (skips do not make a host pass or fail)."""
        counts = self.counts()
        return FAIL if counts[FAIL] else WARN if counts[WARN] else PASS

    @property
    def exit_code(self) -> int:
        return 1 if self.verdict == FAIL else 0

    def to_dict(self) -> dict:
        from dlbench import __version__

        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "dlbench validate", "version": __version__},
            "host": self.environment.get("hostname"),
            "started": _iso(self.started),
            "finished": _iso(self.finished) if self.finished else None,
            "duration_seconds": round((self.finished or time.time()) - self.started, 3),
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "options": self.options,
            "environment": self.environment,
            "checks": [check.to_dict() for check in self.checks],
        }


def _iso(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))
