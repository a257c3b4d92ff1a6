"""Pair results that measured the same thing, and decide each pair: from the step times of one run a side, or from
the run-to-run variation of several."""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from dlbench.errors import UserError
from dlbench.results import fields, stats

# verdicts of a pair that could not be decided, beside stats' same / better / regression / noisy
UNDECIDED = "could not compare"


@dataclass
class Pair:
    baselines: list[dict]  # every result of the baseline side with these settings, newest last
    candidates: list[dict]
    verdict: str = UNDECIDED
    reason: str = ""
    decision: stats.Decision | None = None
    metrics: list[dict] = field(default_factory=list)
    environment_changes: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> dict:
        return self.baselines[-1]

    @property
    def candidate(self) -> dict:
        return self.candidates[-1]

    @property
    def workload(self) -> str:
        return fields.workload_name(self.baseline)

    def settings(self) -> dict:
        return {
            name: read(self.baseline)
            for name, read in fields.MATCH_FIELDS.items()
            if name != "workload" and read(self.baseline) not in (None, False)
        }

    def as_dict(self) -> dict:
        return {
            "workload": self.workload,
            "settings": self.settings(),
            "baseline": _label(self.baseline),
            "candidate": _label(self.candidate),
            "runs": {
                "baseline": [_label(r) for r in self.baselines],
                "candidate": [_label(r) for r in self.candidates],
            },
            "verdict": self.verdict,
            "reason": self.reason,
            "decision": self.decision.as_dict() if self.decision else None,
            "metrics": self.metrics,
            "environment_changes": self.environment_changes,
            "notes": self.notes,
        }


def _label(result: dict) -> dict:
    source = result.get("source") or {}
    return {
        "file": source.get("file"),
        "run_id": result.get("run_id"),
        "started_at": result.get("started_at"),
        "status": result.get("status"),
    }


def _mean_metric(metric: fields.Metric, results: list[dict]) -> float | None:
    values = [v for v in (metric.read(r) for r in results) if v is not None]
    return statistics.fmean(values) if values else None


def metric_deltas(a: list[dict], b: list[dict]) -> list[dict]:
    """Every headline metric on both sides (the mean over a side's runs where it has several) and its change."""
    rows = []
    for metric in fields.HEADLINE_METRICS:
        old, new = _mean_metric(metric, a), _mean_metric(metric, b)
        if old is None and new is None:
            continue
        change = new / old - 1.0 if old not in (None, 0) and new is not None else None
        rows.append(
            {
                "metric": metric.name,
                "unit": metric.unit,
                "baseline": None if old is None else old * metric.scale,
                "candidate": None if new is None else new * metric.scale,
                "change": change,
                "higher_is_better": metric.higher_is_better,
            }
        )
    return rows


def _environment_changes(a: dict, b: dict) -> dict:
    old, new = fields.environment_facts(a), fields.environment_facts(b)
    return {key: [old[key], new[key]] for key in old if old[key] != new[key] and (old[key] or new[key])}


def _run_name(result: dict, role: str, several: bool) -> str:
    if not several:
        return f"the {role} run"
    source = (result.get("source") or {}).get("file")
    return f"the {role} run {os.path.basename(source) if source else result.get('run_id')}"


def _suspects(results: list[dict], role: str) -> list[str]:
    several = len(results) > 1
    return [f"{_run_name(r, role, several)}: {why}" for r in results for why in fields.suspect_reasons(r)]


def _rates(results: list[dict]) -> tuple[list[float], str] | None:
    """Each run's throughput, all in one unit: samples/s where every run recorded it, else steps/s for all."""
    rates = [fields.throughput(r) for r in results]
    if None not in rates and len({unit for _, unit in rates}) > 1:
        # a converted pytest-benchmark entry beside a run: steps/s for every one
        rates = [fields.throughput(r, per_step=True) for r in results]
    if None in rates:
        return None
    return [rate for rate, _ in rates], rates[0][1]


def decide_pair(a: list[dict] | dict, b: list[dict] | dict, limits: stats.Limits = stats.Limits()) -> Pair:
    a, b = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
    pair = Pair(a, b, environment_changes=_environment_changes(a[-1], b[-1]), metrics=metric_deltas(a, b))
    for results, role in ((a, "baseline"), (b, "candidate")):
        for result in results:
            name = _run_name(result, role, len(results) > 1)
            if result.get("status") == "failed":
                pair.reason = f"{name} failed: {result.get('error') or 'no reason recorded'}"
                return pair
            if result.get("status") == "interrupted":
                pair.notes.append(f"{name} was interrupted; its timed steps are compared")
    suspects = _suspects(a, "baseline") + _suspects(b, "candidate")
    try:
        if len(a) == 1 and len(b) == 1:
            pair.decision = _decide_steps(a[0], b[0], limits, suspects, pair)
        else:
            pair.decision = _decide_runs(a, b, limits, suspects, pair)
    except stats.TooFewSamples as error:
        pair.reason = str(error)
        return pair
    if pair.decision is not None:
        pair.verdict, pair.reason = pair.decision.verdict, pair.decision.reason
    return pair


def _decide_steps(a, b, limits, suspects, pair) -> stats.Decision | None:
    group = max(fields.step_group_size(a), fields.step_group_size(b))  # like with like: k-step means on both sides
    summary_a, summary_b = fields.step_summary(a, group), fields.step_summary(b, group)
    if summary_a is None or summary_b is None:
        pair.reason = "a result has neither step-time samples nor their mean, deviation and count"
        return None
    rates = _rates([a, b])
    rate_a, rate_b, unit = (rates[0][0], rates[0][1], rates[1]) if rates else (None, None, "steps/s")
    decision = stats.decide(summary_a, summary_b, rate_a, rate_b, unit, limits, suspects)
    pair.notes.append("one run a side: judged on its steps, blind to run-to-run variation (give several runs a side)")
    if decision.finding("median step time") is None:
        pair.notes.append("median not tested: a result did not keep its step-time samples (mean tested, Welch)")
    return decision


def _decide_runs(a, b, limits, suspects, pair) -> stats.Decision | None:
    rates = _rates(a + b)
    if rates is None:
        pair.reason = "a result has no throughput and no mean step time"
        return None
    values, unit = rates
    summaries = [fields.step_summary(r) for r in a + b]
    medians = [s.median for s in summaries] if all(summaries) else [None] * len(summaries)
    return stats.decide_runs(
        values[: len(a)],
        values[len(a) :],
        medians[: len(a)] if all(medians) else None,
        medians[len(a) :] if all(medians) else None,
        unit,
        limits,
        suspects,
        _pooled(a, b) if unit == "samples/s" else None,
    )


def _pooled(a: list[dict], b: list[dict]) -> tuple[float, float] | None:
    pooled_a, pooled_b = fields.pooled_throughput(a), fields.pooled_throughput(b)
    return None if pooled_a is None or pooled_b is None else (pooled_a, pooled_b)


def _newest(results: list[dict]) -> dict:
    return max(results, key=lambda r: str(r.get("started_at") or ""))


def _oldest_first(results: list[dict]) -> list[dict]:
    return sorted(results, key=lambda r: str(r.get("started_at") or ""))


def _describe_differences(differences: dict) -> str:
    return ", ".join(f"{name} ({old!r} vs {new!r})" for name, (old, new) in differences.items())


@dataclass
class Comparison:
    pairs: list[Pair]
    only_baseline: list[dict]
    only_candidate: list[dict]
    notes: list[str]

    @property
    def exit_code(self) -> int:
        verdicts = {p.verdict for p in self.pairs}
        if stats.REGRESSION in verdicts:
            return 1
        if not self.pairs or UNDECIDED in verdicts:
            return 2
        return 0

    def as_dict(self) -> dict:
        return {
            "pairs": [p.as_dict() for p in self.pairs],
            "only_in_baseline": [dict(workload=fields.workload_name(r), **_label(r)) for r in self.only_baseline],
            "only_in_candidate": [dict(workload=fields.workload_name(r), **_label(r)) for r in self.only_candidate],
            "notes": self.notes,
            "exit_code": self.exit_code,
        }


def _files(results: list[dict]) -> set[str]:
    return {os.path.realpath(f) for f in ((r.get("source") or {}).get("file") for r in results) if f}


def compare(
    baseline: list[dict],
    candidate: list[dict],
    ignore: tuple[str, ...] = (),
    alpha: float = stats.DEFAULT_ALPHA,
    threshold: float = stats.DEFAULT_THRESHOLD,
    noise: float = stats.DEFAULT_NOISE,
) -> Comparison:
    """Every group of candidate results against the baseline results that measured the same thing."""
    limits = stats.Limits(alpha, threshold, noise)
    shared = sorted(_files(baseline) & _files(candidate))
    if shared:  # a run against itself says nothing, and always says "same"
        raise UserError(f"{shared[0]} is on both sides: compare a run with another run, not with itself")
    if len(baseline) == 1 and len(candidate) == 1:
        # two runs named on purpose: say exactly why they cannot be compared
        a, b = baseline[0], candidate[0]
        if fields.workload_name(a) != fields.workload_name(b):
            raise UserError(
                f"different workloads ({fields.workload_name(a)} vs {fields.workload_name(b)}): nothing to compare"
            )
        differences = fields.differing_fields(a, b, ignore)
        if differences:
            raise UserError(
                f"runs differ in what decides the number: {_describe_differences(differences)}; "
                f"compare anyway with {' '.join('--ignore ' + n for n in differences)}"
            )
        return Comparison([decide_pair(a, b, limits)], [], [], [])
    groups_a, groups_b = defaultdict(list), defaultdict(list)
    for result in baseline:
        groups_a[fields.match_key(result, ignore)].append(result)
    for result in candidate:
        groups_b[fields.match_key(result, ignore)].append(result)
    notes = []
    for side, groups in (("baseline", groups_a), ("candidate", groups_b)):
        for group in groups.values():
            if len(group) > 1:
                notes.append(
                    f"{len(group)} {side} results for {fields.workload_name(group[0])} with the same settings: "
                    "each is one run, and the verdict tests the run-to-run variation"
                )
    pairs = [
        decide_pair(_oldest_first(groups_a[key]), _oldest_first(groups_b[key]), limits)
        for key in groups_a
        if key in groups_b
    ]
    only_a = [_newest(groups_a[key]) for key in groups_a if key not in groups_b]
    only_b = [_newest(groups_b[key]) for key in groups_b if key not in groups_a]
    if not pairs:
        raise UserError(_why_nothing_matches(only_a, only_b, ignore))
    return Comparison(pairs, only_a, only_b, notes)


def _why_nothing_matches(only_a: list[dict], only_b: list[dict], ignore: tuple[str, ...]) -> str:
    names_a = {fields.workload_name(r) for r in only_a}
    names_b = {fields.workload_name(r) for r in only_b}
    shared = sorted(names_a & names_b)
    if not shared:
        return (
            f"no workload in common (baseline: {', '.join(sorted(names_a))}; candidate: {', '.join(sorted(names_b))})"
        )
    a = next(r for r in only_a if fields.workload_name(r) == shared[0])
    b = next(r for r in only_b if fields.workload_name(r) == shared[0])
    differences = fields.differing_fields(a, b, ignore)
    return (
        f"no result matches: {shared[0]} differs in {_describe_differences(differences)}; compare anyway with "
        f"{' '.join('--ignore ' + n for n in differences)}"
    )
