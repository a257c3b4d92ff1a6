"""What does the dlbench harness cost? `dlbench run` against the loop a tutorial teaches, side by side.

Both train the same model, batch and precision from the same synthetic batch, in one process, alternating
rounds (ABAB...) so that drift of the machine (turbo, other load) hits both alike. `dlbench run` runs as the CLI
builds it, with its default observers switched on (the telemetry sampler and the progress bar). The target: the
harness costs at most 2% of throughput, i.e. the ratio dlbench/plain stays >= 0.98.

    python benchmarks/harness_overhead.py --workload cifar-cnn --batch-size 64 --steps 50 --rounds 5

With --ranks N each round is two torchrun jobs of N ranks (gloo on the CPU, NCCL on GPUs), one process group per
process as in real use: the DDP tutorial's loop, and `dlbench run --nproc N` as a user types it, with its default
warm-up and a --duration window, so that the ranks' agreed ends of warm-up and window (dlbench/train/runner.py,
_plan_window) are inside what is measured. Rank 0's figures are compared:

    python benchmarks/harness_overhead.py --ranks 2 --workload cifar-cnn --batch-size 32 --steps 300 --duration 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.distributed as dist

from rich.console import Console

from dlbench.commands import run as run_command
from dlbench.train import data
from dlbench.train.flops import loss_of
from dlbench.workloads import get_workload


def _rank_device(device: str) -> str:
    """Under torchrun each rank takes its local rank's GPU, as `dlbench run` does; on the CPU every rank shares it."""
    if "LOCAL_RANK" in os.environ and device.startswith("cuda"):
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return device


def plain_loop(workload_name: str, batch_size: int, steps: int, warmup: int, device: str) -> float:
    """The tutorial loop: zero_grad, forward, loss, backward, step. Returns samples per second (this rank's, under
    torchrun, where it is the DDP tutorial's loop: one process group, the model wrapped in DDP)."""
    workload = get_workload(workload_name)
    torch.manual_seed(0)
    dev = torch.device(_rank_device(device))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True  # as dlbench run sets it: compare like with like
    model = workload.build_model().to(dev).train()
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    inputs, targets = data.synthetic_batch(workload, batch_size, workload.seq_len, dev, seed=0)

    def step():
        optimizer.zero_grad()
        loss = loss_of(model(inputs), targets)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    if distributed:
        dist.barrier()  # every rank starts its timed steps together
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    if distributed:
        model = optimizer = None  # DDP's reducer holds the group: free it first (as dlbench's Run.close does)
        gc.collect()
        dist.destroy_process_group()
    return steps * batch_size / seconds


def dlbench_loop(workload_name: str, batch_size: int, steps: int, warmup: int, device: str) -> float:
    """`dlbench run` as the CLI builds it, default observers on: the telemetry sampler (0.5 s) and the progress bar."""
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    args = parser.parse_args(
        [
            workload_name,
            "--device",
            device,
            "--batch-size",
            str(batch_size),
            "--steps",
            str(steps),
            "--warmup",
            str(warmup),
            "--precision",
            "fp32",
        ]
    )
    run = run_command.build_run(args, Console(stderr=True))
    try:
        return run.execute()["metrics"]["throughput"]["samples_per_second"]
    finally:
        run.close()


def plain_job(args) -> float:
    """The DDP tutorial's loop as a torchrun job of args.ranks processes (this script, --rank-output): rank 0's
    samples per second."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "plain.json")
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={args.ranks}",
            os.path.abspath(__file__),
            "--workload",
            args.workload,
            "--batch-size",
            str(args.batch_size),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--device",
            args.device,
            "--rank-output",
            out,
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out, encoding="utf-8") as handle:
            return json.load(handle)["samples_per_second"]


def dlbench_job(args) -> float:
    """`dlbench run --nproc N` as a user types it (default observers and warm-up, a --duration window): rank 0's
    samples per second."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "dlbench.json")
        command = [
            sys.executable,
            "-m",
            "dlbench",
            "run",
            args.workload,
            "--nproc",
            str(args.ranks),
            "--device",
            args.device,
            "--batch-size",
            str(args.batch_size),
            "--duration",
            str(args.duration),
            "--precision",
            "fp32",
            "--output",
            out,
        ]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out, encoding="utf-8") as handle:
            return json.load(handle)["metrics"]["throughput"]["samples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="cifar-cnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 makes a shared machine less noisy)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--ranks",
        type=int,
        default=1,
        help="ranks of a torchrun job on this host (default 1; not --nproc: torchrun would take it)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=3.0,
        help="with --ranks: seconds of dlbench's agreed window (the plain loop times --steps)",
    )
    parser.add_argument("--rank-output", help=argparse.SUPPRESS)  # a rank of plain_job's torchrun job
    args = parser.parse_args()
    if args.rank_output:
        samples_per_second = plain_loop(args.workload, args.batch_size, args.steps, args.warmup, args.device)
        if os.environ["RANK"] == "0":
            with open(args.rank_output, "w", encoding="utf-8") as handle:
                json.dump({"samples_per_second": samples_per_second}, handle)
        return
    if args.threads:
        torch.set_num_threads(args.threads)

    duration = args.duration if args.ranks > 1 else None
    plain, harness = [], []
    for _ in range(args.rounds):
        if args.ranks > 1:
            plain.append(plain_job(args))
            harness.append(dlbench_job(args))
        else:
            plain.append(plain_loop(args.workload, args.batch_size, args.steps, args.warmup, args.device))
            harness.append(dlbench_loop(args.workload, args.batch_size, args.steps, args.warmup, args.device))
    ratio = statistics.median(harness) / statistics.median(plain)
    report = {
        "workload": args.workload,
        "device": args.device,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "ranks": args.ranks,
        "dlbench_window": f"default warm-up, --duration {duration:g}" if duration else "--steps/--warmup as given",
        "plain_samples_per_second": plain,
        "dlbench_samples_per_second": harness,
        "median_ratio_dlbench_over_plain": ratio,
        "target": ">= 0.98",
    }
    ranks = f", rank 0 of {args.ranks}" if args.ranks > 1 else ""
    print(
        f"{args.workload} on {args.device}{ranks}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds"
    )
    print(f"  plain loop  median {statistics.median(plain):10.1f} samples/s  {[round(x, 1) for x in plain]}")
    print(f"  dlbench run median {statistics.median(harness):10.1f} samples/s  {[round(x, 1) for x in harness]}")
    print(f"  ratio dlbench/plain = {ratio:.4f}  ({'meets' if ratio >= 0.98 else 'MISSES'} the >= 0.98 target)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
