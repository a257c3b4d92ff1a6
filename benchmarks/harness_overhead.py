"""What does the dlbench harness cost? `dlbench run` against the loop a tutorial teaches, side by side.

Both train the same model, batch and precision from the same synthetic batch, in one process, alternating
rounds (ABAB...) so that drift of the machine (turbo, other load) hits both alike. `dlbench run` runs as the CLI
builds it, with its default observers switched on (the telemetry sampler and the progress bar). The target: the
harness costs at most 2% of throughput, i.e. the ratio dlbench/plain stays >= 0.98.

    python benchmarks/harness_overhead.py --workload cifar-cnn --batch-size 64 --steps 50 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from rich.console import Console

from dlbench.commands import run as run_command
from dlbench.train import data
from dlbench.train.flops import loss_of
from dlbench.workloads import get_workload


def plain_loop(workload_name: str, batch_size: int, steps: int, warmup: int, device: str) -> float:
    """The tutorial loop: zero_grad, forward, loss, backward, step. Returns samples per second."""
    workload = get_workload(workload_name)
    torch.manual_seed(0)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as dlbench run sets it: compare like with like
    model = workload.build_model().to(dev).train()
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
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return steps * batch_size / (time.perf_counter() - start)


def dlbench_loop(workload_name: str, batch_size: int, steps: int, warmup: int, device: str) -> float:
    """`dlbench run` as the CLI builds it, default observers on: the telemetry sampler (0.5 s) and the progress bar."""
    parser = argparse.ArgumentParser()
    run_command.add_arguments(parser)
    args = parser.parse_args([workload_name, "--device", device, "--batch-size", str(batch_size), "--steps",
                              str(steps), "--warmup", str(warmup), "--precision", "fp32"])
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
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    plain, harness = [], []
    for _ in range(args.rounds):
        plain.append(plain_loop(args.workload, args.batch_size, args.steps, args.warmup, args.device))
        harness.append(dlbench_loop(args.workload, args.batch_size, args.steps, args.warmup, args.device))
    ratio = statistics.median(harness) / statistics.median(plain)
    report = {
        "workload": args.workload, "device": args.device, "batch_size": args.batch_size, "steps": args.steps,
        "rounds": args.rounds, "threads": torch.get_num_threads(), "plain_samples_per_second": plain, "dlbench_samples_per_second": harness,
        "median_ratio_dlbench_over_plain": ratio, "target": ">= 0.98",
    }
    print(f"{args.workload} on {args.device}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds")
    print(f"  plain loop  median {statistics.median(plain):10.1f} samples/s  {[round(x, 1) for x in plain]}")
    print(f"  dlbench run median {statistics.median(harness):10.1f} samples/s  {[round(x, 1) for x in harness]}")
    print(f"  ratio dlbench/plain = {ratio:.4f}  ({'meets' if ratio >= 0.98 else 'MISSES'} the >= 0.98 target)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
