"""Data-parallel runs under torchrun: the process group, the DDP wrapper, and what rank 0 gathers from every rank.

dlbench launches nothing itself across hosts: torchrun (torch.distributed.run) starts one process per GPU and sets
RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE and GROUP_RANK in each one's environment
(https://pytorch.org/docs/stable/elastic/run.html, "Environment Variables"). A run that finds them joins the group.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import os
import socket
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dlbench.errors import RunFailed, UserError

# DTensor and FSDP (dlbench.train.sharding) are imported where a multi-process run uses them. Importing them costs
# one to two seconds, which a run that stops before its first step (bad input, a missing GPU) no longer pays; a
# training step imports them anyway, through torch._dynamo, which torch.optim's first step loads.

# torch's own default for init_process_group (10 minutes); a rank that stops answering fails the others after this
DEFAULT_TIMEOUT_SECONDS = 600
# Forward+backward passes timed with and without gradient synchronization, each: five, and no more than half the
# timed window's steps (one at least), so that a short run is not followed by a probe several times its length (a
# `--steps 3` smoke run on a CPU spent three times its window in ten probe passes). Every rank times the same steps
# under the agreed window, so every rank runs as many passes, as DDP's collectives require.
PROBE_STEPS = 5


def probe_passes(steps_timed: int) -> int:
    """Passes each way for a window of STEPS_TIMED steps: half of them, one at least, PROBE_STEPS at most."""
    return max(1, min(PROBE_STEPS, steps_timed // 2))


@dataclass(frozen=True)
class Topology:
    """Where this process sits in the job, as torchrun describes it."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    host: str

    @property
    def nodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))

    def where(self, rank: int | None = None, host: str | None = None) -> str:
        return f"rank {self.rank if rank is None else rank} on {host or self.host}"


def topology(env=None) -> Topology | None:
    """This process's place in a torchrun job, or None when it was not started by torchrun (or a launcher that sets
    the same variables, such as Kubeflow's PyTorchJob)."""
    env = os.environ if env is None else env
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        world = int(env["WORLD_SIZE"])
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
        return Topology(
            rank=int(env["RANK"]),
            world_size=world,
            local_rank=int(env.get("LOCAL_RANK", 0)),
            local_world_size=local_world,
            node_rank=int(env.get("GROUP_RANK", env.get("NODE_RANK", 0))),
            host=socket.gethostname(),
        )
    except ValueError:
        raise UserError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be whole numbers (set by torchrun)")


def device_for(requested: str, where: Topology) -> str:
    """Each rank trains on the GPU of its local rank; `--device cpu` (or no GPU at all) keeps every rank on the CPU."""
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if requested not in ("auto", "cuda"):
        raise UserError(
            f"--device {requested} under torchrun: each rank takes the GPU of its local rank; "
            "use --device cuda (or auto) and CUDA_VISIBLE_DEVICES to choose the GPUs"
        )
    count = torch.cuda.device_count()
    if where.local_rank >= count:
        raise UserError(
            f"{where.where()}: local rank {where.local_rank} has no GPU ({count} visible); "
            "start at most one process per GPU"
        )
    return f"cuda:{where.local_rank}"


class ProcessGroup:
    """The job's default process group, NCCL on GPUs and gloo on the CPU, and how the model is spread over it: the
    DDP wrapper (a replica per rank), or FSDP's sharding of a transformer's blocks (`--fsdp`)."""

    def __init__(
        self,
        where: Topology,
        device: torch.device,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        shard_blocks: str | None = None,
    ):
        self.where = where
        self.device = device
        self.timeout_seconds = timeout_seconds
        self.backend = "nccl" if device.type == "cuda" else "gloo"
        # DDP (a full replica per rank), or FSDP2 sharding the blocks found at `shard_blocks` (`--fsdp`)
        self.shard_blocks = shard_blocks
        self.strategy = "fsdp" if shard_blocks else "ddp"
        self.sharding: dict | None = None  # how FSDP sharded the model, once it has
        self.ddp: torch.nn.parallel.DistributedDataParallel | None = None

    def start(self) -> None:
        # the timeout bounds every collective: a rank that hangs fails the others rather than leaving them waiting
        # (with NCCL through the watchdog that TORCH_NCCL_ASYNC_ERROR_HANDLING, on by default, turns into an abort)
        options = {"device_id": self.device} if self.device.type == "cuda" else {}
        dist.init_process_group(self.backend, timeout=datetime.timedelta(seconds=self.timeout_seconds), **options)

    def wrap(self, model: torch.nn.Module, precision: str) -> torch.nn.Module:
        if self.shard_blocks:
            from dlbench.train import sharding

            self.sharding = sharding.shard(model, self.shard_blocks, self.device, self.where.world_size, precision)
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return self.ddp

    def shared(self, value):
        """Rank 0's `value` on every rank (a broadcast of one picklable object)."""
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def agreed_max(self, value: float) -> float:
        """The largest of every rank's `value`, on every rank: one all-reduce of one number, how the ranks agree on
        when warm-up and the timed window end (each rank's own clock and settle rule differ)."""
        number = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(number, op=dist.ReduceOp.MAX)
        return number.item()

    def gather(self, record: dict) -> list[dict]:
        records: list = [None] * self.where.world_size
        dist.all_gather_object(records, record)
        return records

    def barrier(self) -> None:
        dist.barrier()

    def failure(self, error: BaseException) -> RunFailed:
        """A collective that broke (a peer died or timed out), as one line naming this rank and its host."""
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return RunFailed(
            f"{self.where.where()}: {self.backend} collective failed ({type(error).__name__}: {text}); "
            "another rank probably died or hung (see torchrun's report for which)"
        )

    def close(self) -> None:
        self.ddp = None
        gc.collect()  # the DDP wrapper and its reducer go now, before the group they use
        if dist.is_initialized():
            dist.destroy_process_group()


def is_collective_error(error: BaseException) -> bool:
    """Errors torch.distributed raises when a peer is gone or too slow (DistError and its subclasses; gloo reports
    a closed connection or a timeout as a plain RuntimeError from its transport)."""
    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        mark in text
        for mark in (
            "gloo",
            "Gloo",
            "NCCL",
            "Connection closed by peer",
            "Connection reset by peer",
            "Timed out",
            "timed out",
        )
    )


def parameters_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes: equal on every rank exactly when DDP kept the replicas in sync. FSDP's
    sharded parameters (DTensors) are gathered whole first, a collective every rank makes in the same order, so
    each rank digests the full state its shards make up."""
    from torch.distributed.tensor import DTensor

    digest = hashlib.sha256()
    with torch.no_grad():
        for parameter in model.parameters():
            if isinstance(parameter, DTensor):
                parameter = parameter.full_tensor()
            digest.update(parameter.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def parameters_held(model: torch.nn.Module) -> int:
    """Parameter elements this rank keeps between steps: the whole model under DDP, its shards under FSDP."""
    from torch.distributed.tensor import DTensor

    return sum(
        parameter.to_local().numel() if isinstance(parameter, DTensor) else parameter.numel()
        for parameter in model.parameters()
    )


def communication_probe(group: ProcessGroup, forward_backward, synchronize, steps: int) -> dict:
    """Seconds per forward+backward pass with DDP's gradient all-reduce and without it (`no_sync()`).

    DDP overlaps the all-reduce with the backward pass, so the difference is the communication the step waits for
    (exposed communication, plus waiting for the slowest rank), not the all-reduce's whole duration. The optimizer
    step is left out of both: it is the same with and without synchronization, and skipping it leaves the trained
    parameters as the timed window left them.
    """

    def seconds_per_pass(context) -> float:
        group.barrier()
        synchronize()
        begin = time.perf_counter()
        for _ in range(steps):
            with context():
                forward_backward()
        synchronize()
        return (time.perf_counter() - begin) / steps

    synced = seconds_per_pass(nullcontext)
    unsynced = seconds_per_pass(group.ddp.no_sync)
    return {"synced_pass_seconds": synced, "unsynced_pass_seconds": unsynced, "passes": steps}


def rank_record(
    where: Topology,
    device: torch.device,
    uuid: str | None,
    metrics: dict,
    digest: str | None,
    probe: dict | None,
    held: int | None = None,
) -> dict:
    """What one rank tells rank 0 about its timed window."""
    throughput = metrics.get("throughput") or {}
    steps = metrics.get("step_time_seconds") or {}
    return {
        "rank": where.rank,
        "local_rank": where.local_rank,
        "node_rank": where.node_rank,
        "host": where.host,
        "device": str(device),
        "device_uuid": uuid,
        "steps_timed": metrics.get("steps_timed"),
        "samples_timed": metrics.get("samples_timed"),
        "timed_seconds": metrics.get("timed_seconds"),
        "samples_per_second": throughput.get("samples_per_second"),
        "tokens_per_second": throughput.get("tokens_per_second"),
        "step_time_mean_seconds": steps.get("mean"),
        "step_time_p99_seconds": steps.get("p99"),
        "parameters_sha256": digest,
        "parameters_held": held,
        # each rank's own peak: what FSDP's sharding saves (or a rank that holds more than the others) shows here
        "peak_device_memory_bytes": metrics.get("peak_device_memory_bytes"),
        "peak_host_memory_bytes": metrics.get("peak_host_memory_bytes"),
        "communication_probe": probe,
    }


def _total(records: list[dict], key: str) -> float | None:
    values = [record[key] for record in records]
    return None if any(value is None for value in values) else sum(values)


def summary(
    where: Topology, group: ProcessGroup, batch_size: int, records: list[dict], tokens_per_sample: int | None = None
) -> dict:
    """The `distributed` section of rank 0's result: the job's shape, every rank, the aggregate, the slowest rank."""
    records = sorted(records, key=lambda record: record["rank"])
    rated = [record for record in records if record["samples_per_second"] is not None]
    slowest = min(rated, key=lambda record: record["samples_per_second"]) if rated else None
    probes = [record["communication_probe"] for record in records if record["communication_probe"]]
    communication = None
    if probes:
        synced = statistics.fmean(probe["synced_pass_seconds"] for probe in probes)
        unsynced = statistics.fmean(probe["unsynced_pass_seconds"] for probe in probes)
        communication = {
            "synced_pass_seconds": synced,
            "unsynced_pass_seconds": unsynced,
            "share": min(1.0, max(0.0, 1.0 - unsynced / synced)) if synced > 0 else None,
            "passes": probes[0]["passes"],
            "method": "ddp-no_sync",
        }
    for record in records:
        record.pop("communication_probe", None)
    return topology_section(where, group, batch_size, tokens_per_sample) | {
        "hosts": sorted({record["host"] for record in records}),
        "aggregate": {
            "samples_per_second": _total(records, "samples_per_second"),
            "tokens_per_second": _total(records, "tokens_per_second"),
        },
        "slowest_rank": (
            None if slowest is None else {key: slowest[key] for key in ("rank", "host", "samples_per_second")}
        ),
        # replicas (DDP) must end bit-identical; FSDP has none to compare: every rank's digest is of the same
        # all-gathered whole, equal by construction, so a `true` there would claim a check that cannot fail
        "parameters_in_sync": (
            len({record["parameters_sha256"] for record in records}) == 1 if group.strategy == "ddp" else None
        ),
        "communication": communication,
        "ranks": records,
    }


def topology_section(
    where: Topology, group: ProcessGroup, batch_size: int, tokens_per_sample: int | None = None
) -> dict:
    """What rank 0 can say about the job when the ranks could not gather (a failure or an interruption)."""
    return {
        "launcher": "torchrun",
        "backend": group.backend,
        "strategy": group.strategy,
        "sharding": group.sharding,
        "timeout_seconds": group.timeout_seconds,
        "world_size": where.world_size,
        "nodes": where.nodes,
        "processes_per_node": where.local_world_size,
        "hosts": [where.host],
        "per_rank_batch_size": batch_size,
        "global_batch_size": batch_size * where.world_size,
        # language models state their batch in tokens (GPT-3's "0.5M tokens"): the sequences times their length
        "global_batch_tokens": batch_size * where.world_size * tokens_per_sample if tokens_per_sample else None,
        "aggregate": None,
        "slowest_rank": None,
        "parameters_in_sync": None,
        "communication": None,
        "ranks": [],
    }
