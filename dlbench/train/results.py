"""The result document of a run: what ran, on what, how fast, and whether it finished.

Schema (version 1), top-level keys: schema_version, run_id, status (completed | interrupted | failed), error,
started_at, finished_at, workload, config, metrics, telemetry (and other observer sections), environment.
"""

from __future__ import annotations

import datetime
import os
import uuid
from dataclasses import asdict

from dlbench.atomic import write_json

SCHEMA_VERSION = 1
STATUSES = ("completed", "interrupted", "failed")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_run_id(workload: str) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{workload}-{stamp}-{uuid.uuid4().hex[:6]}"


def new_result(run_id: str, config) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "status": "failed",  # until the run says otherwise: a crash never leaves a result claiming success
        "error": None,
        "started_at": _now(),
        "finished_at": None,
        "workload": {"name": config.workload},
        "config": asdict(config),
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
