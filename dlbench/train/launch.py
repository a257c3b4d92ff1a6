"""Starting a run on several processes of this host: dlbench hands the command to torchrun, it launches nothing itself.

`dlbench run W --gpus 8` becomes `python -m torch.distributed.run --standalone --nproc-per-node 8 -m dlbench run W`
(torchrun's single-node form, https://pytorch.org/docs/stable/elastic/run.html "Single-node multi-worker"). Across
hosts, users call torchrun (or srun, or a PyTorchJob) themselves with the same `-m dlbench run W` tail.
Kept free of torch imports: it runs before the training process exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from dlbench.errors import UserError

# the options that choose how many processes to start: they belong to the launcher, not to each rank's command
LAUNCH_OPTIONS = ("--gpus", "--nproc")


def visible_gpus() -> int:
    """NVIDIA GPUs this process may use: CUDA_VISIBLE_DEVICES when set (Slurm and container runtimes set it), else
    the GPUs nvidia-smi lists. Asked without importing torch, which would initialize CUDA in the launcher."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([entry for entry in visible.split(",") if entry.strip() and entry.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


def processes(gpus: int | None, nproc: int | None, device: str) -> int | None:
    """How many processes a run asks for (None: a plain single-process run).

    `--gpus N` means N GPUs of this host, one process each, and refuses a host with fewer; `--nproc N` starts N
    processes on whatever `--device` says, which is how data-parallel training is tried on the CPU (gloo).
    """
    if gpus is not None and nproc is not None:
        raise UserError("--gpus and --nproc both set the number of processes; give one")
    if gpus is not None:
        if device == "cpu":
            raise UserError("--gpus with --device cpu: use --nproc N for N processes on the CPU")
        available = visible_gpus()
        if gpus > available:
            raise UserError(
                f"--gpus {gpus}: this host has {available} usable NVIDIA GPU(s); "
                "use --nproc N --device cpu to try data-parallel training on the CPU"
            )
        return gpus
    return nproc


SEED_LIMIT = 2**64  # torch.manual_seed and numpy take 0 to 2**64 - 1


def check_seed_for_ranks(seed: int, ranks: int) -> None:
    """Rank r seeds its data with seed + r: refuse a seed that the last rank would push past 64 bits."""
    if seed + ranks - 1 >= SEED_LIMIT:
        raise UserError(
            f"--seed {seed} with {ranks} processes: rank r draws its data with seed + r, which must stay below 2**64; "
            f"use a seed of at most {SEED_LIMIT - ranks}"
        )


def without_launch_options(argv: list[str]) -> list[str]:
    """The command line each rank runs: the same options, less the ones that asked for the processes."""
    kept: list[str] = []
    skip = False
    for argument in argv:
        if skip:
            skip = False
            continue
        if argument in LAUNCH_OPTIONS:
            skip = True
            continue
        if argument.startswith(tuple(f"{option}=" for option in LAUNCH_OPTIONS)):
            continue
        kept.append(argument)
    return kept


def torchrun_command(nproc: int, dlbench_argv: list[str]) -> list[str]:
    """torchrun on this host only (`--standalone`: a private rendezvous on a free port), one worker per process."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "dlbench",
        *without_launch_options(dlbench_argv),
    ]


def exec_torchrun(nproc: int, dlbench_argv: list[str]) -> None:
    """Replace this process with torchrun: signals (Ctrl-C, Slurm's SIGTERM) reach it directly, and it forwards them
    to every rank and tears the others down when one fails."""
    command = torchrun_command(nproc, dlbench_argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


# exit codes of a run that a person stopped (Ctrl-C, SIGTERM): a scaling study stops there and keeps what it measured
STOPPED = (130, 143)


def run_each_size(workload: str, flag: str, counts: list[int], options: list[str], folder: str) -> list[tuple]:
    """`dlbench run WORKLOAD FLAG N` at each size in turn, each in its own process tree (so one size's failure or
    memory cannot leak into the next), its result in FOLDER: (size, result path, exit code) per size run."""
    runs = []
    for size in counts:
        path = os.path.join(folder, f"{workload}-{size}.json")
        print(f"dlbench scaling: {workload} on {size} process(es)", file=sys.stderr, flush=True)
        command = [sys.executable, "-m", "dlbench", "run", workload, flag, str(size), "--output", path, *options]
        returncode = subprocess.run(command, stdout=subprocess.DEVNULL, check=False).returncode
        runs.append((size, path, returncode))
        if returncode in STOPPED:
            break
    return runs
