"""The result document of a run: what ran, on what, with which settings, how fast, and whether it finished.

The layout is fixed by dlbench/data/result.schema.json (shipped in the package, validated in the tests) and each
field is described in docs/results.md. Bump SCHEMA_VERSION whenever a field changes meaning or disappears.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from dataclasses import asdict
from functools import lru_cache
from importlib import resources

from dlbench import __version__
from dlbench.atomic import write_json

# 2: requested settings beside resolved ones, backend flags, warm-up, peak-table entry, input wait, CPU contention,
#    telemetry sample counts, interrupting signal, dlbench version and command line
SCHEMA_VERSION = 2
STATUSES = ("completed", "interrupted", "failed")
SCHEMA_RESOURCE = "data/result.schema.json"
# a timed window shorter than this is warned about by the run and not trusted by compare: timer and scheduler noise
# and the telemetry's 0.5 s sampling are large against it
SHORT_WINDOW_SECONDS = 1.0


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema every result satisfies."""
    return json.loads(resources.files("dlbench").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8"))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_run_id(workload: str) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{workload}-{stamp}-{uuid.uuid4().hex[:6]}"


def new_result(run_id: str, config, command_line: list[str] | None = None) -> dict:
    requested = asdict(config)
    return {
        "schema_version": SCHEMA_VERSION,
        "dlbench_version": __version__,
        "run_id": run_id,
        "status": "failed",  # until the run says otherwise: a crash never leaves a result claiming success
        "error": None,
        "interrupted_by": None,
        "started_at": _now(),
        "finished_at": None,
        "command_line": command_line,
        "warnings": [],
        "workload": {"name": config.workload},
        "requested": requested,
        "config": dict(requested),  # replaced field by field as the run resolves each setting
        "backend": None,
        "peak": None,
        "warmup": None,
        "metrics": None,
        "environment": None,
    }


def finish(result: dict, status: str, error: str | None = None) -> dict:
    assert status in STATUSES
    result["status"] = status
    result["error"] = error
    result["finished_at"] = _now()
    return result


def save(result: dict, path: str | os.PathLike | None) -> None:
    if path is not None:
        write_json(path, result)
