"""Pair results that measured the same thing, and decide each pair from its step-time distributions."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from dlbench.errors import UserError
from dlbench.results import fields, stats

# verdicts of a pair that could not be decided, beside stats' same / better / regression / noisy
UNDECIDED = "could not compare"


@dataclass
class Pair:
    baseline: dict
    candidate: dict
    verdict: str
    reason: str
    decision: stats.Decision | None = None
    metrics: list[dict] = field(default_factory=list)
    environment_changes: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

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


def metric_deltas(a: dict, b: dict) -> list[dict]:
    rows = []
    for metric in fields.HEADLINE_METRICS:
        old, new = metric.read(a), metric.read(b)
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


def decide_pair(a: dict, b: dict, alpha: float, threshold: float, noise: float) -> Pair:
    pair = Pair(a, b, UNDECIDED, "", environment_changes=_environment_changes(a, b), metrics=metric_deltas(a, b))
    for result, role in ((a, "baseline"), (b, "candidate")):
        if result.get("status") == "failed":
            pair.reason = f"the {role} run failed: {result.get('error') or 'no reason recorded'}"
            return pair
        if result.get("status") == "interrupted":
            pair.notes.append(f"the {role} run was interrupted; its timed steps are compared")
    summary_a, summary_b = fields.step_summary(a), fields.step_summary(b)
    if summary_a is None or summary_b is None:
        pair.reason = "a result has neither step-time samples nor their mean, deviation and count"
        return pair
    try:
        pair.decision = stats.decide(summary_a, summary_b, alpha, threshold, noise)
    except stats.TooFewSamples as error:
        pair.reason = str(error)
        return pair
    pair.verdict, pair.reason = pair.decision.verdict, pair.decision.reason
    if pair.decision.method != "mann-whitney-u":
        pair.notes.append("tested on mean, deviation and count (Welch): a result did not keep its step-time samples")
    return pair


def _newest(results: list[dict]) -> dict:
    return max(results, key=lambda r: str(r.get("started_at") or ""))


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


def compare(
    baseline: list[dict],
    candidate: list[dict],
    ignore: tuple[str, ...] = (),
    alpha: float = stats.DEFAULT_ALPHA,
    threshold: float = stats.DEFAULT_THRESHOLD,
    noise: float = stats.DEFAULT_NOISE,
) -> Comparison:
    """Every result of `candidate` against the baseline result that measured the same thing."""
    if len(baseline) == 1 and len(candidate) == 1:
        # two runs named on purpose: say exactly why they cannot be compared
        a, b = baseline[0], candidate[0]
        if fields.workload_name(a) != fields.workload_name(b):
            raise UserError(
                f"different workloads ({fields.workload_name(a)} vs {fields.workload_name(b)}): " "nothing to compare"
            )
        differences = fields.differing_fields(a, b, ignore)
        if differences:
            raise UserError(
                f"runs differ in what decides the number: {_describe_differences(differences)}; "
                f"compare anyway with {' '.join('--ignore ' + n for n in differences)}"
            )
        return Comparison([decide_pair(a, b, alpha, threshold, noise)], [], [], [])
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
                    f"{len(group)} {side} results for {fields.workload_name(group[0])} with the same "
                    "settings: the newest is compared"
                )
    pairs = [
        decide_pair(_newest(groups_a[key]), _newest(groups_b[key]), alpha, threshold, noise)
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
            f"no workload in common (baseline: {', '.join(sorted(names_a))}; candidate: "
            f"{', '.join(sorted(names_b))})"
        )
    a = next(r for r in only_a if fields.workload_name(r) == shared[0])
    b = next(r for r in only_b if fields.workload_name(r) == shared[0])
    differences = fields.differing_fields(a, b, ignore)
    return (
        f"no result matches: {shared[0]} differs in {_describe_differences(differences)}; compare anyway with "
        f"{' '.join('--ignore ' + n for n in differences)}"
    )
