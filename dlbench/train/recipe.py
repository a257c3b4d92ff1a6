"""What a transformer's blocks get before they are sharded, as torchtitan applies it (pytorch/torchtitan,
torchtitan/models/llama3/parallelize.py: Float8 conversion at build, then activation checkpointing, then per-block
torch.compile, then FSDP2): `--activation-checkpointing`, `--compile` per block, and `--precision fp8`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

from dlbench.errors import UserError

ACTIVATION_CHECKPOINTING = ("none", "selective", "full")
# Ada and newer (SM89: L4, L40S, RTX 4090; Hopper; Blackwell) have Float8 tensor cores: torchtitan offers its Float8
# linears from there (torchtitan/components/quantization/float8.py, has_cuda_capability(8, 9))
FLOAT8_MIN_CAPABILITY = (8, 9)


def block_list(model: nn.Module, path: str) -> nn.ModuleList:
    """The workload's list of transformer blocks ("layers", "transformer.h"), to wrap its members in place."""
    return model.get_submodule(path)


def _save_ops() -> set:
    """torchtitan's per-op SAC save list (torchtitan/distributed/activation_checkpoint.py, _get_default_save_ops):
    the partitioner's compute-intensive ops, every attention kernel, the amax that Float8 scaling needs, and the
    reduce-scatter a tensor-parallel block would otherwise repeat."""
    from torch._functorch.partitioners import get_default_op_list

    ops = {op.default for op in get_default_op_list().compute_intensive_ops}
    aten = torch.ops.aten
    ops |= {
        aten._scaled_dot_product_cudnn_attention.default,
        aten._scaled_dot_product_attention_math.default,
        aten._scaled_dot_product_flash_attention.default,
        aten._scaled_dot_product_efficient_attention.default,
        aten._scaled_dot_product_fused_attention_overrideable.default,
        aten.max.default,
        aten.linear.default,
        torch.ops._c10d_functional.reduce_scatter_tensor.default,
    }
    return ops


def _selective_policy():
    """Save what _save_ops lists, except every second matmul, which is recomputed (torchtitan's SelectiveAC: about
    half the matmul outputs kept, the cheap elementwise work always recomputed)."""
    save = _save_ops()
    matmuls = (torch.ops.aten.mm.default, torch.ops.aten.linear.default)
    counts = {"forward": 0, "recompute": 0}

    def policy(ctx, func, *args, **kwargs) -> CheckpointPolicy:
        mode = "recompute" if ctx.is_recompute else "forward"
        if func in matmuls:
            counts[mode] += 1
        if func in save:
            if func in matmuls and counts[mode] % 2 == 0:
                return CheckpointPolicy.PREFER_RECOMPUTE
            return CheckpointPolicy.MUST_SAVE
        return CheckpointPolicy.PREFER_RECOMPUTE

    return policy


def checkpoint_blocks(model: nn.Module, blocks_path: str, mode: str) -> None:
    """Wrap every block for activation checkpointing: `full` recomputes the whole block in the backward pass,
    `selective` only what the per-op policy does not keep (torchtitan's FullAC and SelectiveAC, non-reentrant)."""
    if mode == "none":
        return
    blocks = block_list(model, blocks_path)
    for index, block in enumerate(blocks):
        if mode == "full":
            blocks[index] = checkpoint_wrapper(block, preserve_rng_state=True, early_stop=False)
        else:  # a fresh policy each time a block runs, as torchtitan's context_fn builds it: the matmul count starts
            # at zero every step (shared by that step's forward and recomputation), so the same matmuls are kept
            # every step; a count carried over would alternate between keeping two and three of a block's five
            blocks[index] = checkpoint_wrapper(
                block,
                preserve_rng_state=True,
                early_stop=False,
                context_fn=lambda: create_selective_checkpoint_contexts(_selective_policy()),
            )


def compile_blocks(model: nn.Module, blocks_path: str) -> None:
    """torch.compile each block, fullgraph, after checkpointing and before sharding (torchtitan's apply_compile):
    one compiled graph that the identical blocks share, FSDP's collectives left outside it."""
    for block in block_list(model, blocks_path):
        block.compile(fullgraph=True)


def check_float8(device: torch.device) -> None:
    """Refuse `--precision fp8` in one line where torchao's Float8 training cannot run."""
    if device.type != "cuda":
        raise UserError(
            "--precision fp8 needs an NVIDIA GPU of the Ada or Hopper generation or newer (Float8 tensor "
            "cores); this run is on the CPU: use --precision bf16 or fp32"
        )
    capability = torch.cuda.get_device_capability(device)
    if tuple(capability) < FLOAT8_MIN_CAPABILITY:
        name = torch.cuda.get_device_name(device)
        raise UserError(
            f"--precision fp8 needs an Ada, Hopper or newer GPU (compute capability 8.9); {name} is "
            f"{capability[0]}.{capability[1]}: use --precision bf16"
        )
    try:
        import torchao.float8  # noqa: F401
    except ImportError as error:
        raise UserError(
            f"--precision fp8 uses torchao's Float8 linears, which did not import ({error}): pip install torchao"
        ) from None


def _float8_eligible(module: nn.Module, fqn: str) -> bool:
    """torchtitan's module_filter_fn with its default filter: every linear but the output head, and only those
    whose both dimensions divide by 16 (the Float8 GEMM's requirement)."""
    if not isinstance(module, nn.Linear) or fqn.split(".")[-1] == "output":
        return False
    return module.in_features % 16 == 0 and module.out_features % 16 == 0


def convert_float8(model: nn.Module, sharded: bool) -> dict:
    """Swap the eligible linears for torchao's Float8Linear with tensorwise dynamic scaling; under FSDP the weights
    are all-gathered in Float8 (torchtitan's `enable_fsdp_float8_all_gather`, with the amax of every shard
    precomputed in one all-reduce after each optimizer step, `precompute_float8_dynamic_scale_for_fsdp`)."""
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    config = Float8LinearConfig(enable_fsdp_float8_all_gather=sharded)
    converted = []

    def eligible(module: nn.Module, fqn: str) -> bool:
        keep = _float8_eligible(module, fqn)
        if keep:
            converted.append(fqn)
        return keep

    convert_to_float8_training(model, config=config, module_filter_fn=eligible)
    return {
        "library": "torchao.float8",
        "recipe": "tensorwise",
        "fsdp_float8_all_gather": sharded,
        "linears": len(converted),
    }


def float8_scale_step(model: nn.Module):
    """What runs after each optimizer step of a sharded Float8 run: the next step's weight scales, in one
    all-reduce for all of them (torchao's precompute_float8_dynamic_scale_for_fsdp)."""
    from torchao.float8 import precompute_float8_dynamic_scale_for_fsdp

    return lambda: precompute_float8_dynamic_scale_for_fsdp(model)
