"""`--fsdp`: fully sharded data parallelism for the transformer workloads, with PyTorch's FSDP2 (`fully_shard`).

FSDP2 shards every parameter on dim 0 across the ranks as a DTensor, all-gathers a group's parameters before its
forward and backward, and reduce-scatters its gradients after; the optimizer then updates each rank's shard only
(https://docs.pytorch.org/docs/stable/distributed.fsdp.fully_shard.html). The unit of sharding here is one
transformer block, then the root for what is left (embeddings, final norm, output head): fully_shard is applied
bottom-up, and its documentation warns against sharding only the root, which would gather the whole model at once.
The same recipe as torchtitan's and the FSDP2 tutorial's
(https://docs.pytorch.org/tutorials/intermediate/FSDP_tutorial.html).
"""

from __future__ import annotations

import torch
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from dlbench.errors import UserError


def _dtype_name(dtype: torch.dtype | None) -> str | None:
    return None if dtype is None else str(dtype).replace("torch.", "")


def mixed_precision(precision: str) -> MixedPrecisionPolicy:
    """bf16 runs gather and compute with bf16 parameters and reduce gradients in fp32, over fp32 shards that the
    optimizer updates (FSDP2's MixedPrecisionPolicy; torchtitan's default). fp32 and tf32 keep fp32 throughout."""
    if precision == "fp16":
        # fp16 needs loss scaling whose overflow check agrees across the shards (FSDP1's ShardedGradScaler); a plain
        # GradScaler would let ranks that saw an inf skip a step the others take, and the shards would drift apart
        raise UserError("--fsdp with --precision fp16: use --precision bf16 (same tensor-core speed, no loss scaling)")
    if precision in ("bf16", "fp8"):  # fp8: Float8 linears, everything else in bf16
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def blocks_of(model: torch.nn.Module, path: str) -> list[torch.nn.Module]:
    """The workload's transformer blocks, from its declared attribute path ("transformer.h", "layers")."""
    found = model
    for name in path.split("."):
        found = getattr(found, name)
    return list(found)


def shard(model: torch.nn.Module, blocks_path: str, device: torch.device, world_size: int, precision: str) -> dict:
    """Shard `model` in place, one FSDP group per block and one for the root; returns what the result records."""
    policy = mixed_precision(precision)
    # a 1-D mesh over every rank: the mesh's device type picks the collectives' device (gloo tensors on the CPU)
    mesh = init_device_mesh(device.type, (world_size,))
    blocks = blocks_of(model, blocks_path)
    for block in blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    # the root (embeddings, final norm, head) keeps its parameters gathered from forward to backward (FSDP2's default)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return {
        "api": "torch.distributed.fsdp.fully_shard",
        "unit": "transformer block",
        "groups": len(blocks) + 1,
        "param_dtype": _dtype_name(policy.param_dtype),
        "reduce_dtype": _dtype_name(policy.reduce_dtype),
    }
