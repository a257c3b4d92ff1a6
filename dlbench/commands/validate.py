"""`dlbench validate`: accept or reject this GPU host with measured evidence; `dlbench validate summarize DIR`
compares the reports of a fleet.

Exit codes: 0 nothing failed (warnings allowed), 1 a check failed (or, for summarize, a host failed, a GPU is an
outlier or a version differs from the fleet's majority), 2 bad input (nothing measured, nothing written).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from dlbench.commands.argtypes import byte_size, duration, fraction, positive_int


def add_arguments(parser) -> None:
    from dlbench.validate.context import LEVELS

    parser.add_argument(
        "--level",
        choices=LEVELS,
        default="quick",
        help="quick: a few minutes; long: the full matmul sweep and larger transfers",
    )
    parser.add_argument("--expect-gpus", type=positive_int, metavar="N", help="FAIL unless exactly N GPUs are present")
    parser.add_argument(
        "--expect-model", metavar="TEXT", help="FAIL unless every GPU's name contains TEXT (e.g. 'H100 80GB HBM3')"
    )
    parser.add_argument(
        "--burn-in",
        type=duration,
        metavar="DURATION",
        help="sustained load on every GPU for DURATION (90s, 30m, 1h), results cross-checked",
    )
    parser.add_argument(
        "--stack",
        type=Path,
        metavar="FILE",
        help="the version spec to hold the host to (default: ./stack.yml or dlbench's own)",
    )
    parser.add_argument(
        "--spec",
        type=Path,
        metavar="FILE",
        help="also check the host against a host spec (hardware and software, field by field)",
    )
    parser.add_argument("--image", metavar="TAG", help="also check that this pinned image sees every GPU")
    parser.add_argument(
        "--peer-tolerance",
        type=fraction,
        default=0.10,
        metavar="FRACTION",
        help="how far below its reference or its peers' median a GPU may be (default 0.10)",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="run the micro-benchmarks on the CPU at small sizes even when GPUs are present",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the storage checks write checkpoints and images (run at --level long, or when given; "
        "default: /data where it is a mount point, else the working directory)",
    )
    parser.add_argument(
        "--checkpoint-bytes",
        type=byte_size,
        metavar="SIZE",
        help="the checkpoint file the storage check writes (default: the largest model's checkpoint, as far as "
        "the time budget and the free space allow)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON (atomically)")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write the report as JUnit XML for CI")
    parser.add_argument(
        "--bundle",
        type=Path,
        metavar="DIR",
        help="write the evidence (report, raw measurements, nvidia-smi -q, lspci -vv, XID lines, "
        "spec, command line, SHA256SUMS) into DIR, a new or empty folder",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    sub.required = False
    summarize = _action(sub, "summarize", "compare the JSON reports of many hosts, outliers flagged")
    summarize.add_argument("reports", type=Path, metavar="DIR", help="a folder of `dlbench validate --json` reports")
    summarize.add_argument(
        "--outlier",
        type=fraction,
        default=0.05,
        metavar="FRACTION",
        help="flag a GPU this far below the fleet median of its model (default 0.05)",
    )
    summarize.add_argument(
        "--json", dest="summary_json", type=Path, metavar="FILE", help="write the summary as JSON (atomically)"
    )
    summarize.add_argument(
        "--csv",
        dest="summary_csv",
        type=Path,
        metavar="FILE",
        help="write the full host-by-check matrix as CSV (atomically)",
    )
    _add_pair_arguments(sub)


def _action(sub, name: str, text: str):
    return sub.add_parser(name, help=text, description=text)


def _add_pair_arguments(sub) -> None:
    from dlbench.validate.context import LEVELS
    from dlbench.validate.pair import DEFAULT_PORT, DEFAULT_TIMEOUT

    pair = sub.add_parser(
        "pair",
        help="this host's rank of a two-host all-reduce over the network only (NCCL, gloo on the CPU)",
        description="this host's rank of a two-host all-reduce over the network only (NCCL with P2P and shared "
        "memory off; gloo on the CPU); run it on both hosts at once, then judge with `validate pairs`",
    )
    pair.add_argument(
        "--rank", type=int, choices=(0, 1), required=True, help="0 on the host at --master, 1 on the other"
    )
    pair.add_argument("--master", required=True, metavar="ADDRESS", help="rank 0's address on the pair's network")
    pair.add_argument(
        "--port", type=positive_int, default=DEFAULT_PORT, help=f"rank 0's rendezvous port (default {DEFAULT_PORT})"
    )
    pair.add_argument(
        "--interface",
        metavar="NAME",
        help="network interface to bind (default: the one holding this host's address towards --master)",
    )
    pair.add_argument(
        "--timeout",
        type=duration,
        default=DEFAULT_TIMEOUT,
        metavar="DURATION",
        help=f"give up on the rendezvous or a collective after this long (default {DEFAULT_TIMEOUT:g}s)",
    )
    pair.add_argument(
        "--level",
        dest="pair_level",
        choices=LEVELS,
        default="quick",
        help="quick: messages up to 1 GiB; long: up to 16 GiB (on the CPU: small messages whatever the level)",
    )
    pair.add_argument("--label", default="pair", help="the pair's name in the result (e.g. host-a--host-b)")
    pair.add_argument("--cpu", action="store_true", help="run over gloo on the CPU even when a GPU is present")
    pair.add_argument(
        "--json", dest="pair_json", type=Path, required=True, metavar="FILE", help="write the result (atomically)"
    )
    pairs = _action(sub, "pairs", "judge the pair results of a fleet against the spec's NIC speed, slow pairs named")
    pairs.add_argument("results", type=Path, metavar="DIR", help="a folder of `dlbench validate pair --json` results")
    pairs.add_argument(
        "--spec", dest="pairs_spec", type=Path, metavar="FILE", help="host spec whose network speed judges the pairs"
    )
    pairs.add_argument(
        "--json", dest="pairs_json", type=Path, metavar="FILE", help="write the verdicts as JSON (atomically)"
    )


def run(args) -> int:
    if args.action == "summarize":
        from dlbench.validate import summarize

        return summarize.main(args.reports, args.outlier, args.summary_json, args.summary_csv)
    if args.action == "pair":
        from dlbench.validate import pair

        return pair.main(args)
    if args.action == "pairs":
        from dlbench.validate import pairs

        return pairs.main(args.results, args.pairs_spec, args.pairs_json)
    return _validate(args)


def _options(args):
    from dlbench.errors import UserError
    from dlbench.validate import stack
    from dlbench.validate.context import Options

    if args.image and importlib.util.find_spec("docker") is None:
        raise UserError("--image needs the Docker SDK for Python: pip install 'dlbench[container]'")
    from dlbench.hostspec import spec

    stack_path = args.stack or stack.default_stack_path()
    data_dir = None
    if args.level == "long" or args.data_dir is not None or args.checkpoint_bytes is not None:
        from dlbench.validate import storage

        data_dir = args.data_dir or storage.default_data_dir()
        storage.plan(data_dir, args.checkpoint_bytes)  # refused here, before anything runs, when it cannot fit
    if args.stack is not None and not args.stack.is_file():
        raise UserError(f"--stack {args.stack}: no such file")
    return Options(
        level=args.level,
        expect_gpus=args.expect_gpus,
        expect_model=args.expect_model,
        burn_in_seconds=args.burn_in,
        stack_path=stack_path,
        stack=stack.load_stack(stack_path) if stack_path else None,
        image=args.image,
        cpu=args.cpu,
        peer_tolerance=args.peer_tolerance,
        spec_path=args.spec,
        spec=spec.load(args.spec) if args.spec else None,
        data_dir=data_dir,
        checkpoint_bytes=args.checkpoint_bytes,
    )


def _validate(args) -> int:
    from rich.console import Console

    from dlbench import atomic
    from dlbench.commands.console import table_console
    from dlbench.validate import writers
    from dlbench.validate.context import Context
    from dlbench.validate.runner import validate

    for output in (args.json, args.junit):
        if output is not None:
            atomic.check_writable(output)
    if args.bundle is not None:
        from dlbench.validate import bundle

        bundle.check_target(args.bundle)
    options = _options(args)
    progress = Console(stderr=True)

    def on_result(result):
        style = writers.VERDICT_STYLE.get(result.verdict, "")
        progress.print(
            f"  [{style}]{result.verdict:4}[/] {result.id} {writers.format_measured(result)}", highlight=False
        )

    ctx = Context(options)
    report = validate(
        ctx, on_result=on_result, on_family=lambda name: progress.print(f"[bold]{name}[/]", highlight=False)
    )
    if args.json:
        writers.write_json(report, args.json)
    if args.junit:
        writers.write_junit(report, args.junit)
    if args.bundle is not None:
        bundle.write(args.bundle, report, ctx, args.argv)
    table_console().print(writers.console_table(report))
    return report.exit_code
