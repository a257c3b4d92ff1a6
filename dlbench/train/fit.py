"""Will the run fit? A lower bound of the memory one rank needs, checked before anything is allocated.

Counted per rank, in bytes, at the larger of the two moments that bound the peak (per_rank_bytes):
- model state: fp32 parameters (4 B each), their fp32 gradients (4 B) and the optimizer's state (AdamW: two fp32
  moments, 8 B; SGD with momentum: 4 B); divided by the world size under FSDP, whole on every rank otherwise;
- under FSDP, what is all-gathered at a time: the root's parameters (embeddings, final norm, output head, kept from
  forward to backward) and two blocks (the one computing and the one prefetched), in the gathering dtype;
- activations of a Llama-shaped decoder, per activation-checkpointing mode: the log-probabilities the loss keeps
  (fp32, batch x sequence x vocabulary), plus per block its input (`full`), its input and attention output
  (`selective`: the per-op policy always keeps the attention kernel's output), or the inputs of its matmuls and
  the SwiGLU intermediates (`none`).

Each term leaves out what it could argue about (allocator fragmentation, temporary buffers, the CUDA context), so
a refusal is never a false alarm: a run refused here cannot fit; one let through may still run out of memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dlbench.errors import UserError
from dlbench.workloads import WORKLOADS, Workload

GB = 1e9
OPTIMIZER_STATE_BYTES = {"adamw": 8, "sgd": 4}
ACTIVATION_ORDER = ("none", "selective", "full")  # ascending recomputation, descending memory


@dataclass(frozen=True)
class Shape:
    """What the estimate needs to know about the model, read off a copy built on the meta device."""

    parameters: int
    root_parameters: int  # outside the blocks: sharded as one FSDP group that stays gathered
    block_parameters: int  # the largest block
    layers: int
    dim: int | None  # hidden width and SwiGLU width of a Llama-shaped decoder; None: no activation estimate
    hidden: int | None
    vocab: int | None


def shape_of(workload: Workload, **model_overrides) -> Shape:
    with torch.device("meta"):
        model = workload.build_model(**model_overrides)
    total = sum(p.numel() for p in model.parameters())
    blocks = list(model.get_submodule(workload.blocks)) if workload.blocks else []
    block_sizes = [sum(p.numel() for p in block.parameters()) for block in blocks]
    config = getattr(model, "config", None)
    dim = getattr(config, "dim", None)
    return Shape(
        parameters=total,
        root_parameters=total - sum(block_sizes),
        block_parameters=max(block_sizes, default=0),
        layers=len(blocks),
        dim=dim,
        hidden=getattr(config, "ffn_hidden_dim", None) if dim else None,
        vocab=getattr(config, "vocab_size", None) if dim else None,
    )


def activation_bytes(shape: Shape, tokens: int, checkpointing: str) -> int:
    """Lower bound of the activations kept from forward to backward for `tokens` tokens per rank, in bf16 except
    the loss's fp32 log-probabilities."""
    if shape.dim is None:
        return 0
    per_token_per_layer = {
        "full": shape.dim,  # the block's input
        "selective": 2 * shape.dim,  # ... and the attention kernel's output
        # the matmuls' inputs (q/k/v, wo, w1/w3, w2) plus the attention output, norms' inputs and SwiGLU's products
        "none": 5 * shape.dim + 3 * shape.hidden,
    }[checkpointing]
    return 4 * tokens * shape.vocab + 2 * tokens * shape.layers * per_token_per_layer


def per_rank_bytes(
    shape: Shape, ranks: int, fsdp: bool, optimizer: str, tokens: int, checkpointing: str, gather_bytes: int = 2
) -> dict:
    """The two moments that bound the peak from below: the end of the forward pass (parameters, optimizer state, the
    gathered parameters and every kept activation; gradients do not exist yet, set to None each step) and the
    optimizer step (parameters, gradients, optimizer state; the activations are gone)."""
    shards = ranks if fsdp else 1
    parameters = math.ceil(shape.parameters * 4 / shards)
    optimizer_state = math.ceil(shape.parameters * OPTIMIZER_STATE_BYTES[optimizer] / shards)
    estimate = {
        "model_state": 2 * parameters + optimizer_state,  # fp32 parameters, fp32 gradients, optimizer state
        "gathered": (shape.root_parameters + 2 * shape.block_parameters) * gather_bytes if fsdp and ranks > 1 else 0,
        "activations": activation_bytes(shape, tokens, checkpointing),
    }
    end_of_forward = parameters + optimizer_state + estimate["gathered"] + estimate["activations"]
    estimate["total"] = max(end_of_forward, estimate["model_state"])
    return estimate


def _fewest_ranks(shape: Shape, capacity: int, optimizer: str, tokens: int, checkpointing: str) -> int | None:
    for ranks in (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        if per_rank_bytes(shape, ranks, True, optimizer, tokens, checkpointing)["total"] <= capacity:
            return ranks
    return None


def _smaller_workloads(
    workload: Workload, capacity: int, ranks: int, fsdp: bool, optimizer: str, batch: int, checkpointing: str
) -> list[str]:
    """Smaller workloads of the same model family (the same builder) that would fit as asked."""
    names = []
    for other in WORKLOADS.values():
        if other.builder != workload.builder or other.parameters >= workload.parameters:
            continue
        tokens = batch * other.seq_len
        if per_rank_bytes(shape_of(other), ranks, fsdp, optimizer, tokens, checkpointing)["total"] <= capacity:
            names.append(other.name)
    return names


def check(
    workload: Workload,
    shape: Shape,
    capacity: int,
    where: str,
    ranks: int,
    fsdp: bool,
    optimizer: str,
    batch: int,
    seq_len: int,
    checkpointing: str,
    gather_bytes: int = 2,
) -> dict:
    """The estimate, for the result; a UserError naming what would fit when even the lower bound does not."""
    tokens = batch * seq_len
    estimate = per_rank_bytes(shape, ranks, fsdp, optimizer, tokens, checkpointing, gather_bytes)
    estimate.update(capacity=capacity, ranks=ranks, fsdp=fsdp, activation_checkpointing=checkpointing)
    if estimate["total"] <= capacity:
        return estimate
    remedies = []
    if shape.dim:  # the mildest checkpointing that would do, the less recomputation the better
        stronger = ACTIVATION_ORDER[ACTIVATION_ORDER.index(checkpointing) + 1 :]
        for mode in stronger:
            if per_rank_bytes(shape, ranks, fsdp, optimizer, tokens, mode, gather_bytes)["total"] <= capacity:
                remedies.append(f"--activation-checkpointing {mode}")
                break
    if (
        not remedies
        and not fsdp
        and ranks > 1
        and per_rank_bytes(shape, ranks, True, optimizer, tokens, checkpointing, gather_bytes)["total"] <= capacity
    ):
        remedies.append(f"--fsdp (shard across the {ranks} ranks rather than replicate)")
    if not remedies:
        fewest = _fewest_ranks(shape, capacity, optimizer, tokens, "full" if shape.dim else checkpointing)
        if fewest and fewest > ranks:
            ac = " with --activation-checkpointing full" if shape.dim and checkpointing != "full" else ""
            remedies.append(f"FSDP over at least {fewest} such GPUs (--gpus {fewest}, or torchrun across nodes){ac}")
        if batch > 1 and per_rank_bytes(shape, ranks, fsdp, optimizer, seq_len, checkpointing)["total"] <= capacity:
            remedies.append("--batch-size 1")
    smaller = _smaller_workloads(workload, capacity, ranks, fsdp, optimizer, batch, checkpointing)
    if smaller:
        remedies.append(f"a smaller size ({', '.join(smaller)})")
    sharding = f"FSDP over {ranks} ranks" if fsdp and ranks > 1 else "unsharded"
    parts = (
        f"{estimate['model_state'] / GB:.1f} GB parameters, gradients and {optimizer} state at the step"
        + (f" + {estimate['gathered'] / GB:.1f} GB gathered" if estimate["gathered"] else "")
        + (
            f" + {estimate['activations'] / GB:.1f} GB activations ({checkpointing} checkpointing)"
            if estimate["activations"]
            else ""
        )
    )
    raise UserError(
        f"{workload.name} does not fit {where} ({capacity / GB:.0f} GB): it needs at least "
        f"{estimate['total'] / GB:.1f} GB per rank, {sharding} ({parts}); would fit: "
        + ("; or ".join(remedies) if remedies else "nothing this harness offers on this GPU")
    )
