"""`dlbench compare BASELINE CANDIDATE`: is the candidate slower? Per-workload verdicts from step-time distributions.

Exit codes: 0 same, better or noisy; 1 a regression beyond the threshold; 2 could not compare (bad input, runs that
measured different things, too few samples).
"""

from __future__ import annotations

import argparse
import json
import sys

from dlbench.results import stats
from dlbench.results.fields import IGNORABLE, device_model
from dlbench.results.tables import settings_text


def percent(text: str) -> float:
    """'5', '5%' or '0.5%' -> a fraction; refuses what is not a percentage between 0 and 100."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a percentage such as 5 or 5%, not {text!r}") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100 percent, not {text}")
    return value / 100.0


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number such as 0.01, not {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def add_arguments(parser) -> None:
    parser.add_argument("baseline", help="result JSON, pytest-benchmark JSON, or a directory of them")
    parser.add_argument("candidate", help="the same, for the run to judge against the baseline")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        choices=IGNORABLE,
        metavar="FIELD",
        help=f"compare even if FIELD differs (repeatable): {', '.join(IGNORABLE)}",
    )
    parser.add_argument(
        "--threshold",
        type=percent,
        default=stats.DEFAULT_THRESHOLD,
        metavar="PERCENT",
        help=f"median step-time change that counts as a regression or improvement "
        f"(default {stats.DEFAULT_THRESHOLD:.0%}%)",  # %%: argparse %-formats help texts
    )
    parser.add_argument(
        "--noise",
        type=percent,
        default=stats.DEFAULT_NOISE,
        metavar="PERCENT",
        help=f"step-time spread (IQR/median) beyond which an undecided pair is 'noisy' "
        f"(default {stats.DEFAULT_NOISE:.0%}%)",
    )
    parser.add_argument(
        "--alpha",
        type=probability,
        default=stats.DEFAULT_ALPHA,
        help=f"significance level of the rank test (default {stats.DEFAULT_ALPHA})",
    )


_STYLE = {stats.REGRESSION: "bold red", stats.BETTER: "green", stats.SAME: "", stats.NOISY: "yellow"}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _print_table(comparison) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="dlbench compare", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("workload", "settings", "p50 base (ms)", "p50 new (ms)", "change", "p", "spread", "verdict"):
        table.add_column(column, justify="right" if column in ("change", "p", "spread") or "ms" in column else "left")
    for pair in comparison.pairs:
        d = pair.decision
        settings = ", ".join(filter(None, (settings_text(pair.baseline), device_model(pair.baseline))))
        if d is None:
            table.add_row(pair.workload, settings, "", "", "", "", "", f"[bold]{pair.verdict}[/]: {pair.reason}")
            continue
        median = next((row for row in pair.metrics if row["metric"] == "step time p50"), {})
        verdict = f"[{_STYLE[d.verdict]}]{d.verdict}[/]" if _STYLE[d.verdict] else d.verdict
        table.add_row(
            pair.workload,
            settings,
            _number(median.get("baseline")),
            _number(median.get("candidate")),
            f"{d.change:+.1%}",
            f"{d.p_value:.2g}",
            f"{d.spread_a:.0%}/{d.spread_b:.0%}",
            verdict,
        )
    console.print(table)
    if len(comparison.pairs) == 1:
        _print_metrics(console, comparison.pairs[0])
    for pair in comparison.pairs:
        for note in pair.notes:
            console.print(f"note ({pair.workload}): {note}")
        if pair.decision is not None:
            console.print(f"{pair.workload}: {pair.verdict}: {pair.reason}")
    for label, results in (
        ("only in baseline", comparison.only_baseline),
        ("only in candidate", comparison.only_candidate),
    ):
        for result in results:
            console.print(f"{label}: {result['workload']['name']} ({(result.get('source') or {}).get('file')})")
    for note in comparison.notes:
        console.print(f"note: {note}")


def _print_metrics(console, pair) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"{pair.workload}: metrics")
    for column in ("metric", "baseline", "candidate", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in pair.metrics:
        change = "-" if row["change"] is None else f"{row['change']:+.1%}"
        table.add_row(f"{row['metric']} ({row['unit']})", _number(row["baseline"]), _number(row["candidate"]), change)
    for key, (old, new) in pair.environment_changes.items():
        table.add_row(key, str(old), str(new), "")
    console.print(table)


def run(args) -> int:
    from dlbench.results.compare import UNDECIDED, compare
    from dlbench.results.load import load_path

    baseline, candidate = load_path(args.baseline), load_path(args.candidate)
    comparison = compare(baseline, candidate, tuple(args.ignore), args.alpha, args.threshold, args.noise)
    if args.json:
        print(json.dumps(comparison.as_dict(), indent=2))
    else:
        _print_table(comparison)
    undecided = [f"{p.workload}: {p.reason}" for p in comparison.pairs if p.verdict == UNDECIDED]
    if undecided:  # the one line a script or a person reads on stderr, whatever went to stdout
        print(f"dlbench: could not compare {'; '.join(undecided)}", file=sys.stderr)
    return comparison.exit_code
