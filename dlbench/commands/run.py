"""`dlbench run WORKLOAD`: train a reference workload and report what the hardware did."""

from __future__ import annotations

import argparse
import json
import os
import sys
from urllib.parse import urlsplit, urlunsplit

from dlbench.train import launch
from dlbench.commands.argtypes import non_empty, non_negative_int, positive_float, positive_int, seed
from dlbench.errors import UserError
from dlbench.commands.run_options import add_run_arguments, observers_from_args


def add_arguments(parser) -> None:
    parser.add_argument("workload", help="workload name (see 'dlbench list')")
    parser.add_argument("--device", default="auto", help="auto (default: first GPU, else CPU), cpu, cuda or cuda:N")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        help="samples per step (default: the workload's; on a CPU its CPU size, see dlbench list)",
    )
    parser.add_argument("--seq-len", type=positive_int, help="tokens per sequence for language workloads")
    parser.add_argument(
        "--steps", type=positive_int, help="timed steps (default: 30 s on GPUs; at least 10 steps and 3 s on the CPU)"
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="SECONDS",
        help="time at least this long (with --steps: until both are reached)",
    )
    parser.add_argument(
        "--warmup", type=non_negative_int, help="untimed warm-up steps (default: until step time settles)"
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "tf32", "bf16", "fp16", "fp8"),
        default="auto",
        help="autocast precision; auto = bf16 on Ampere or newer GPUs, fp32 elsewhere; fp8 = "
        "torchao's Float8 linears (Llama workloads, Ada/Hopper or newer)",
    )
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format for image workloads")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (the Llama workloads: each transformer block, as torchtitan)",
    )
    parser.add_argument(
        "--activation-checkpointing",
        choices=("none", "selective", "full"),
        help="recompute activations of each transformer block in the backward pass: selective = "
        "torchtitan's per-op policy (default for the Llama workloads), full, or none (the others' "
        "default)",
    )
    parser.add_argument(
        "--pad-vocab",
        action="store_true",
        help="GPT-2: pad the vocabulary to a multiple of 64 (50304), as nanoGPT and llm.c do",
    )
    parser.add_argument(
        "--optimizer",
        choices=("sgd", "adamw"),
        help="default: the workload's (adamw for the Llama workloads, sgd for the others)",
    )
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument(
        "--data",
        type=non_empty("--data"),
        default="synthetic",
        metavar="synthetic|PATH",
        help="synthetic (default), an ImageFolder tree or CIFAR-10 batches, or a uint16 token file",
    )
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        help="DataLoader workers for --data PATH (default: from the cores and GPUs present)",
    )
    parser.add_argument(
        "--output", type=non_empty("--output"), metavar="FILE.json", help="write the result JSON here (atomically)"
    )
    parser.add_argument("--json", action="store_true", help="print the result JSON to stdout instead of a table")
    parser.add_argument(
        "--mamf-from",
        type=non_empty("--mamf-from"),
        metavar="REPORT.json",
        help="Llama workloads: also report MFU against the bf16 matmul rate `dlbench validate --json` "
        "measured on this host's GPUs (its slowest GPU), beside MFU against the datasheet peak",
    )
    add_distributed_arguments(parser)
    add_run_arguments(parser)


def add_distributed_arguments(parser) -> None:
    group = parser.add_argument_group("data-parallel (torchrun: DDP, or FSDP with --fsdp)")
    group.add_argument(
        "--gpus",
        type=positive_int,
        metavar="N",
        help="train on N GPUs of this host: starts torchrun with one process per GPU (DDP over NCCL)",
    )
    group.add_argument(
        "--nproc",
        type=positive_int,
        metavar="N",
        help="start N processes on --device (on the CPU: DDP over gloo, to try data-parallel runs without GPUs)",
    )
    group.add_argument(
        "--fsdp",
        action=argparse.BooleanOptionalAction,
        help="transformer workloads: shard parameters, gradients and optimizer state across the ranks "
        "with FSDP2, one transformer block at a time, instead of a full replica per rank (DDP); "
        "the Llama workloads' default (--no-fsdp: DDP)",
    )
    group.add_argument(
        "--dist-timeout",
        type=positive_float,
        default=600,  # train/distributed.py's DEFAULT_TIMEOUT_SECONDS, not imported: that module imports torch
        metavar="SECONDS",
        help="under torchrun: how long a rank waits on the others before the run fails (default 600)",
    )


def _config_from_args(args):
    from dlbench.train.runner import RunConfig

    return RunConfig(
        workload=args.workload,
        device=args.device,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        steps=args.steps,
        warmup=args.warmup,
        duration=args.duration,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        optimizer=args.optimizer,
        seed=args.seed,
        data=args.data,
        workers=args.workers,
        output=args.output,
        pad_vocab=args.pad_vocab,
        fsdp=args.fsdp,
        activation_checkpointing=args.activation_checkpointing,
        mamf_from=args.mamf_from,
    )


def _without_credentials(argument: str) -> str:
    """The command line goes into results people share: hide the user:password of a URL (--pushgateway)."""
    parsed = urlsplit(argument) if "://" in argument else None
    if parsed is None or "@" not in parsed.netloc:
        return argument
    return urlunsplit(parsed._replace(netloc="***@" + parsed.netloc.rsplit("@", 1)[1]))


def build_run(args, console, command_line: list[str] | None = None):
    """The run `dlbench run` starts, with the observers its options ask for and the progress bar on `console`."""
    from dlbench.train.report import ProgressBar
    from dlbench.train.runner import Run

    run_ = Run(
        _config_from_args(args),
        observers_from_args(args),
        command_line=command_line,
        dist_timeout=args.dist_timeout,
    )
    if run_.is_reporting_rank:  # under torchrun, one bar: rank 0's
        # what is known before training starts (an emulated precision) is said now, not only in the final table
        for warning in run_.result["warnings"]:
            console.print(f"dlbench: warning: {warning}", markup=False, highlight=False, soft_wrap=True)
        run_.observers.insert(0, ProgressBar(run_.timed_steps_target, run_.window.seconds, console))
    return run_


def run(args) -> int:
    from dlbench.atomic import check_writable
    from dlbench.train import interrupt
    from dlbench.workloads import check_fsdp, get_workload

    # systemd, Slurm and Kubernetes stop jobs with SIGTERM: like Ctrl-C, it ends the run with an `interrupted` result
    # (before torch is imported, so a signal during start-up is named too and ends without a traceback)
    interrupt.install()

    workload = get_workload(args.workload)  # a typo fails before torch is imported
    if args.output:
        check_writable(args.output)
    nproc = launch.processes(args.gpus, args.nproc, args.device)
    if args.fsdp:  # before torchrun starts: one line here, not one failure per rank
        check_fsdp(workload, distributed=nproc is not None or "RANK" in os.environ)
    if nproc is not None:
        launch.check_seed_for_ranks(args.seed, nproc)  # one line here, not one traceback per rank
        if "RANK" not in os.environ:  # the job's fit, once here rather than in every rank (each would refuse alike)
            from dlbench.train.runner import check_job_fits

            check_job_fits(_config_from_args(args), nproc, "cuda" if args.gpus else args.device)
        if "RANK" in os.environ:
            raise UserError("--gpus/--nproc start torchrun; this process already runs under torchrun (RANK is set)")
        launch.exec_torchrun(nproc, sys.argv[1:])  # does not return

    from rich.console import Console

    from dlbench.commands.console import table_console
    from dlbench.train.report import summary_table

    stderr = Console(stderr=True)
    run_ = build_run(args, stderr, command_line=["dlbench", *map(_without_credentials, sys.argv[1:])])
    announced = len(run_.result["warnings"])
    try:
        result = run_.execute()
    finally:
        run_.close()
    if not run_.is_reporting_rank:  # rank 0 reports for the whole job
        return interrupt.exit_code(result["interrupted_by"]) if result["status"] == "interrupted" else 0
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        table_console().print(summary_table(result))
        if args.output:
            stderr.print(f"result written to {args.output}")
    if args.json:  # the table shows them otherwise; those said at the start are not repeated
        for warning in result["warnings"][announced:]:
            print(f"dlbench: warning: {warning}", file=sys.stderr)
    if result["status"] == "interrupted":
        print(f"dlbench: {result['error']}; partial result {'written' if args.output else 'shown'}", file=sys.stderr)
        return interrupt.exit_code(result["interrupted_by"])
    return 0
