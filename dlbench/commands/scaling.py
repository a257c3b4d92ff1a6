"""`dlbench scaling WORKLOAD --gpus 1,2,4,8`: the same run at each size in turn, and how well throughput scales.

Each size is an ordinary `dlbench run WORKLOAD --gpus N` (torchrun, DDP) in its own process tree, so one size's
failure or memory cannot leak into the next. Efficiency is throughput(n) / (n x throughput(1)), the usual weak-scaling
figure with the per-GPU batch fixed (as in NVIDIA's DeepLearningExamples multi-GPU tables).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from dlbench.commands.argtypes import non_empty, non_negative_int, positive_float, positive_int, process_counts
from dlbench.results.scaling import size_entry, study

# `dlbench run` options a scaling study passes to every size unchanged
PASSED_ON = (
    "--device",
    "--batch-size",
    "--seq-len",
    "--steps",
    "--duration",
    "--warmup",
    "--precision",
    "--optimizer",
    "--activation-checkpointing",
    "--dist-timeout",
)


def add_arguments(parser) -> None:
    parser.add_argument("workload", help="workload name (see 'dlbench list')")
    count = parser.add_mutually_exclusive_group(required=True)
    count.add_argument(
        "--gpus", type=process_counts, metavar="N,N,...", help="GPU counts of this host to run, e.g. 1,2,4,8"
    )
    count.add_argument(
        "--nproc",
        type=process_counts,
        metavar="N,N,...",
        help="process counts on --device (on the CPU: gloo), e.g. 1,2,4",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes its local rank's GPU)")
    parser.add_argument("--batch-size", type=positive_int, help="samples per step per process (kept at every size)")
    parser.add_argument("--seq-len", type=positive_int)
    parser.add_argument("--steps", type=positive_int, help="timed steps at every size")
    parser.add_argument("--duration", type=positive_float, metavar="SECONDS")
    parser.add_argument("--warmup", type=non_negative_int)
    parser.add_argument("--precision", choices=("auto", "fp32", "tf32", "bf16", "fp16", "fp8"))
    parser.add_argument("--activation-checkpointing", choices=("none", "selective", "full"))
    parser.add_argument("--optimizer", choices=("sgd", "adamw"))
    parser.add_argument("--dist-timeout", type=positive_float, metavar="SECONDS")
    parser.add_argument(
        "--fsdp",
        action="store_true",
        help="transformer workloads: FSDP at every size, the one-process baseline included",
    )
    parser.add_argument(
        "--output",
        type=non_empty("--output"),
        metavar="FILE.json",
        help="write the scaling study here (atomically); each size's result sits beside it",
    )
    parser.add_argument("--json", action="store_true", help="print the scaling study JSON instead of a table")


def _passed_on(args) -> list[str]:
    """The options given to `dlbench scaling` that every size's `dlbench run` takes unchanged."""
    options = []
    for option in PASSED_ON:
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None and not (option == "--device" and value == "auto"):
            options += [option, str(value)]
    return options + (["--fsdp"] if args.fsdp else [])


def run(args) -> int:
    from dlbench.train import launch
    from dlbench.atomic import check_writable, write_json
    from dlbench.workloads import check_fsdp, get_workload

    workload = get_workload(args.workload)
    if args.fsdp:
        check_fsdp(workload, distributed=True)  # every size, 1 included, runs under torchrun
    if args.output:
        check_writable(args.output)
    flag, counts = ("--gpus", args.gpus) if args.gpus else ("--nproc", args.nproc)
    if flag == "--gpus":
        launch.processes(counts[-1], None, args.device)  # the largest size must fit this host: refuse before running
    counts = sorted(set(counts) | {1})  # the one-process run is the baseline every efficiency is measured against
    folder = os.path.splitext(args.output)[0] + ".runs" if args.output else tempfile.mkdtemp(prefix="dlbench-scaling-")
    os.makedirs(folder, exist_ok=True)
    runs = launch.run_each_size(args.workload, flag, counts, _passed_on(args), folder)
    entries = [size_entry(size, path, returncode) for size, path, returncode in runs]
    document = {
        "workload": args.workload,
        "launcher": "torchrun",
        "unit": flag[2:],
        "runs_folder": folder,
        **study(entries),
    }
    if args.output:
        write_json(args.output, document)
    if args.json:
        print(json.dumps(document, indent=2))
        for warning in document["warnings"]:  # a person piping the JSON still sees it
            print(f"dlbench scaling: warning: {warning}", file=sys.stderr)
    else:
        _print_table(document)
    return 0 if all(entry["status"] == "completed" for entry in entries) else 1


def _print_table(document: dict) -> None:
    from rich.table import Table

    from dlbench.commands.console import table_console

    table = Table(title=f"dlbench scaling {document['workload']}")
    for column in ("processes", "status", "samples/s", "efficiency", "gradient sync share", "slowest rank"):
        table.add_column(column, justify="right")
    for entry in document["sizes"]:
        rate, efficiency, share = entry["samples_per_second"], entry["efficiency"], entry["communication_share"]
        slowest = entry["slowest_rank"]
        table.add_row(
            str(entry["processes"]),
            entry["status"],
            "n/a" if rate is None else f"{rate:,.1f}",
            "n/a" if efficiency is None else f"{efficiency:.1%}",
            "n/a" if share is None else f"{share:.1%}",
            "n/a" if not slowest else f"{slowest['rank']} on {slowest['host']}",
        )
    console = table_console()
    console.print(table)
    for warning in document.get("warnings") or []:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
