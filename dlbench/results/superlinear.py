"""Why a scaling study shows more than 100 % efficiency, from what its runs recorded.

n processes delivering more than n times one process's throughput means one process did less per step than each of
the n did, since every rank trains the same per-process batch. Real superlinear scaling is rare in data-parallel
training (a per-GPU working set that fits a cache better at a larger size); a slow baseline is common: a baseline
run on a loaded machine, one whose warm-up never settled, or, on the CPU, a baseline whose intra-op threads compete
with each other and with the machine while each rank of a larger job runs one (torchrun sets OMP_NUM_THREADS=1 when
it starts more than one process per node, torch/distributed/run.py). Each warning names the causes the results show.
"""

from __future__ import annotations

import json

from dlbench.results import fields

LIMIT = 1.0  # efficiency above this is superlinear


def _load(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _threads(result: dict) -> int | None:
    return (result.get("environment") or {}).get("torch_threads")


def _median_step(result: dict) -> float | None:
    return ((result.get("metrics") or {}).get("step_time_seconds") or {}).get("p50")


def causes(baseline: dict, result: dict, processes: int) -> list[str]:
    """What the two results show about a superlinear size: the baseline's own flags, its thread count against the
    ranks', and the per-step times that make the efficiency what it is."""
    found = [f"the 1-process baseline is suspect: {why}" for why in fields.suspect_reasons(baseline)]
    one, each = _threads(baseline), _threads(result)
    if one and each and one > each:
        found.append(
            f"the 1-process baseline ran {one} intra-op threads, each of the {processes} ranks {each} (torchrun sets "
            "OMP_NUM_THREADS=1 for several processes a node): threads that compete for the cores slow the baseline; "
            f"run it with OMP_NUM_THREADS={each} to compare like with like"
        )
    base_step, rank_step = _median_step(baseline), _median_step(result)
    if base_step and rank_step and rank_step < base_step:
        found.append(
            f"rank 0 of {processes} took {rank_step * 1e3:.3g} ms a step (median), the single process "
            f"{base_step * 1e3:.3g} ms: the baseline was slower per step than a rank of the larger job"
        )
    if not any("suspect" in c or "threads" in c for c in found):
        found.append(
            "the results show no slow-baseline cause: a per-process working set that fits a cache better at this "
            "size, or a baseline slowed by something not recorded; rerun the 1-process size to check"
        )
    return found


def warnings(entries: list[dict]) -> list[str]:
    """One warning per size whose efficiency exceeds 100 %, naming the likely cause."""
    base_entry = next((e for e in entries if e["processes"] == 1 and e["status"] == "completed"), None)
    baseline = _load(base_entry["result"]) if base_entry else None
    out = []
    for entry in entries:
        efficiency = entry.get("efficiency")
        if efficiency is None or efficiency <= LIMIT or entry["processes"] == 1:
            continue
        result = _load(entry["result"]) or {}
        why = causes(baseline or {}, result, entry["processes"])
        out.append(
            f"{entry['processes']} processes: {efficiency:.0%} efficiency is superlinear (more than "
            f"{entry['processes']} x the 1-process throughput): {'; '.join(why)}"
        )
    return out
