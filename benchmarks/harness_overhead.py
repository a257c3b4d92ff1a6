"""What does the dlbench harness cost? `dlbench run` against the loop a tutorial teaches, side by side.

Both train the same model, batch and precision from the same synthetic batch, in one process, alternating
rounds (ABAB...) so that drift of the machine (turbo, other load) hits both alike. `dlbench run` runs as the CLI
builds it, with its default observers switched on (the telemetry sampler and the progress bar). The target: the
harness costs at most 2% of throughput, i.e. the ratio dlbench/plain stays >= 0.98.

    python benchmarks/harness_overhead.py --workload cifar-cnn --batch-size 64 --steps 50 --rounds 5

With --nproc N the same comparison runs in a torchrun job of N ranks (gloo on the CPU, NCCL on GPUs): the plain
loop is the DDP tutorial's, and `dlbench run` uses its default warm-up and a --duration window, so the ranks' agreed
ends of warm-up and window (dlbench/train/runner.py, _plan_window) are inside what is measured. Rank 0's figures:

    python benchmarks/harness_overhead.py --nproc 2 --workload cifar-cnn --batch-size 32 --steps 300 --duration 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
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


def dlbench_loop(workload_name: str, batch_size: int, steps: int, warmup: int, device: str,
                 duration: float | None = None) -> float:
    """`dlbench run` as the CLI builds it, default observers on: the telemetry sampler (0.5 s) and the progress bar.
    With `duration`: its default warm-up and that window instead of fixed counts (what a job's ranks agree on)."""
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    window = ["--duration", str(duration)] if duration else ["--steps", str(steps), "--warmup", str(warmup)]
    args = parser.parse_args([workload_name, "--device", device, "--batch-size", str(batch_size), *window,
                              "--precision", "fp32"])
    run = run_command.build_run(args, Console(stderr=True))
    try:
        return run.execute()["metrics"]["throughput"]["samples_per_second"]
    finally:
        run.close()


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
    parser.add_argument("--nproc", type=int, default=1, help="ranks of a torchrun job on this host (default 1)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="with --nproc: seconds of dlbench's agreed window (the plain loop times --steps)")
    args = parser.parse_args()
    if args.nproc > 1 and "RANK" not in os.environ:  # become the torchrun job; each rank runs this script again
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
                   *sys.argv]
        os.execv(command[0], command)
    if args.threads:
        torch.set_num_threads(args.threads)

    duration = args.duration if args.nproc > 1 else None
    plain, harness = [], []
    for _ in range(args.rounds):
        plain.append(plain_loop(args.workload, args.batch_size, args.steps, args.warmup, args.device))
        harness.append(dlbench_loop(args.workload, args.batch_size, args.steps, args.warmup, args.device, duration))
    if os.environ.get("RANK", "0") != "0":  # rank 0 reports for the job
        return
    ratio = statistics.median(harness) / statistics.median(plain)
    report = {
        "workload": args.workload, "device": args.device, "batch_size": args.batch_size, "steps": args.steps,
        "rounds": args.rounds, "threads": torch.get_num_threads(), "ranks": args.nproc,
        "dlbench_window": f"default warm-up, --duration {duration:g}" if duration else "--steps/--warmup as given",
        "plain_samples_per_second": plain, "dlbench_samples_per_second": harness,
        "median_ratio_dlbench_over_plain": ratio, "target": ">= 0.98",
    }
    ranks = f", rank 0 of {args.nproc}" if args.nproc > 1 else ""
    print(f"{args.workload} on {args.device}{ranks}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds")
    print(f"  plain loop  median {statistics.median(plain):10.1f} samples/s  {[round(x, 1) for x in plain]}")
    print(f"  dlbench run median {statistics.median(harness):10.1f} samples/s  {[round(x, 1) for x in harness]}")
    print(f"  ratio dlbench/plain = {ratio:.4f}  ({'meets' if ratio >= 0.98 else 'MISSES'} the >= 0.98 target)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
