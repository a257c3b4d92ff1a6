"""`dlbench compare BASELINE CANDIDATE`: is the candidate slower? Per-workload verdicts on throughput, mean and
median step time: from the step times of one run a side, or across runs where a side has several.

Exit codes: 0 same, better or noisy; 1 a regression beyond the threshold; 2 could not compare (bad input, runs that
measured different things, too few samples).
"""

from __future__ import annotations

import json
import sys

from dlbench.commands.argtypes import fraction, percent
from dlbench.commands.console import table_console
from dlbench.results import stats
from dlbench.results.fields import IGNORABLE, device_model
from dlbench.results.tables import settings_text


def _shown(fraction: float) -> str:
    """A fraction as a percentage inside an argparse help string, which is %-formatted: '5%%' prints as '5%'."""
    return f"{fraction:.0%}".replace("%", "%%")


def add_arguments(parser) -> None:
    parser.add_argument(
        "baseline",
        help="result JSON, pytest-benchmark JSON, or a directory of them (several runs of the same settings are "
        "tested across runs)",
    )
    parser.add_argument("candidate", help="the same, for the runs to judge against the baseline")
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
        help="change in throughput, mean or median step time that counts as a regression or improvement "
        f"(default {_shown(stats.DEFAULT_THRESHOLD)})",
    )
    parser.add_argument(
        "--noise",
        type=percent,
        default=stats.DEFAULT_NOISE,
        metavar="PERCENT",
        help="spread (IQR/median of step times, or its equivalent across runs) beyond which a pair is 'noisy', "
        f"whatever the tests say (default {_shown(stats.DEFAULT_NOISE)})",
    )
    parser.add_argument(
        "--alpha",
        type=fraction,
        default=stats.DEFAULT_ALPHA,
        help=f"significance level of the tests (default {stats.DEFAULT_ALPHA})",
    )


_STYLE = {stats.REGRESSION: "bold red", stats.BETTER: "green", stats.SAME: "", stats.NOISY: "yellow"}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _print_table(comparison, alpha: float = stats.DEFAULT_ALPHA) -> None:
    from rich import box
    from rich.table import Table

    console = table_console()
    table = Table(title="dlbench compare", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = (
        "workload",
        "settings",
        "runs",
        "throughput base",
        "throughput new",
        "throughput",
        "mean step",
        "median step",
        "spread",
        "verdict",
    )
    for column in columns:
        # the verdict never shrinks to "regre…" in a narrow terminal (the lines below the table give the figures)
        table.add_column(
            column,
            justify="left" if column in ("workload", "settings", "verdict") else "right",
            no_wrap=column == "verdict",
            min_width=len("regression") if column == "verdict" else None,
        )
    for pair in comparison.pairs:
        d = pair.decision
        settings = ", ".join(filter(None, (settings_text(pair.baseline), device_model(pair.baseline))))
        runs = f"{len(pair.baselines)}/{len(pair.candidates)}"
        if d is None:
            table.add_row(pair.workload, settings, runs, "", "", "", "", "", "", f"[bold]{pair.verdict}[/]")
            continue
        rate = d.finding("throughput")
        verdict = f"[{_STYLE[d.verdict]}]{d.verdict}[/]" if _STYLE[d.verdict] else d.verdict

        def change(statistic: str) -> str:
            finding = d.finding(statistic)
            if finding is None:
                return "-"
            return f"{finding.change:+.1%}{'*' if finding.p_value < alpha else ''}"

        table.add_row(
            pair.workload,
            settings,
            runs,
            f"{_number(rate.baseline)} {rate.unit}",
            _number(rate.candidate),
            change("throughput"),
            change("mean step time"),
            change("median step time"),
            f"{d.spread_a:.0%}/{d.spread_b:.0%}",
            verdict,
        )
    console.print(table)
    console.print(
        f"* significant at p < {alpha:g} (Holm-adjusted for the number of tests); spread: IQR/median of step times (or its equivalent across runs)"
    )
    if len(comparison.pairs) == 1:
        _print_metrics(console, comparison.pairs[0])
    for pair in comparison.pairs:
        for note in pair.notes:
            console.print(f"note ({pair.workload}): {note}")
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
        _print_table(comparison, args.alpha)
    undecided = [f"{p.workload}: {p.reason}" for p in comparison.pairs if p.verdict == UNDECIDED]
    if undecided:  # the one line a script or a person reads on stderr, whatever went to stdout
        print(f"dlbench: could not compare {'; '.join(undecided)}", file=sys.stderr)
    return comparison.exit_code
