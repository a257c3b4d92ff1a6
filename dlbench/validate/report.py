"""The validation report: the `CheckResult`s (dlbench/checks.py) of one `dlbench validate` run, with its environment
and options.

Exit code of `dlbench validate`: 0 when nothing failed (warnings allowed), 1 when any check failed; 2 is bad input
and is raised before any check runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dlbench.checks import FAIL, PASS, VERDICTS, WARN, CheckResult

SCHEMA_VERSION = 1


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

    def verdicts(self) -> dict:
        """The verdict, the counts and the checks alone: what `dlbench env --spec --json` prints."""
        return {"verdict": self.verdict, "counts": self.counts(), "checks": [check.to_dict() for check in self.checks]}

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
