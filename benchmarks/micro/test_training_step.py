"""One training step (forward, loss, backward, optimizer step) of each reference workload, as `dlbench run` does it.

The step is dlbench's own (`dlbench.train.runner.Run`), at the precision `--precision auto` picks. On the CPU the
batch is 2 and sequences 32 tokens, and only the two small workloads run unless DLBENCH_MICRO_FULL=1.
"""

from __future__ import annotations

import pytest

from micro_device import DEVICE, FULL, ON_GPU, Rounds
from dlbench.workloads import WORKLOADS

CPU_WORKLOADS = ("mnist-mlp", "cifar-cnn")  # a second or less a step on a shared 2-core machine


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_training_step(measure, name):
    if not (ON_GPU or FULL or name in CPU_WORKLOADS):
        pytest.skip(f"{name} is too large for the CPU at small sizes (DLBENCH_MICRO_FULL=1 runs it)")
    from dlbench.train.flops import training_flops_per_sample
    from dlbench.train.runner import Run, RunConfig

    small = not (ON_GPU or FULL)
    workload = WORKLOADS[name]
    config = RunConfig(
        workload=name,
        device=str(DEVICE),
        batch_size=2 if small else None,
        seq_len=32 if small and not workload.is_image else None,
        precision="auto",
    )
    run = Run(config)
    run._setup()  # the model, optimizer and batch exactly as a run builds them
    flops = training_flops_per_sample(workload, run.seq_len) * run.batch_size
    plan = (
        Rounds(rounds=10, iterations=1, warmup_rounds=3) if ON_GPU else Rounds(rounds=5, iterations=1, warmup_rounds=1)
    )
    measure(
        run._train_step,
        flops=flops,
        rounds=plan,
        precision=run.precision.name,
        batch_size=run.batch_size,
        seq_len=None if workload.is_image else run.seq_len,
    )
