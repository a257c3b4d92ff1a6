"""Training FLOPs per sample: counted on the real model, with analytic estimates to check the count against.

The count runs the model's forward and backward once on the meta device (shapes only, no memory, no compute)
under `torch.utils.flop_counter.FlopCounterMode`, which counts matmuls, convolutions and attention.

Convention (CONVENTION, recorded in each result): the FLOPs the training step performs. The input batch needs no
gradient, so the backward pass of the first layer computes the weight gradient only; the gradient with respect to
the image, which autograd never computes, is not counted. "Training = 3 x forward" (the rule of thumb behind
published ResNet-50 figures) counts it; for ResNet-50 at 224x224 that is 2 x 118 MMAC = 0.24 GFLOP of 24.5, about
1%. Language models: the FLOPs of 6N + 12·L·H·Q·T per token (PaLM appendix B, nanoGPT, llm.c), which likewise
have no gradient for the token ids (an embedding lookup is not a matmul either way).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dlbench.workloads import Workload

COUNT_BATCH = 2  # any batch works: FLOPs are linear in it
CONVENTION = (
    "matmul, convolution and attention FLOPs of one forward and backward pass as executed "
    "(torch.utils.flop_counter); no gradient for the input batch; optimizer and elementwise work excluded"
)


def loss_of(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)


def training_flops_per_sample(workload: Workload, seq_len: int, **model_overrides) -> float:
    with torch.device("meta"):
        model = workload.build_model(**model_overrides)
        if workload.is_image:
            inputs = torch.empty(COUNT_BATCH, workload.channels, workload.image_size, workload.image_size)
            targets = torch.zeros(COUNT_BATCH, dtype=torch.long)
        else:
            inputs = torch.zeros(COUNT_BATCH, seq_len, dtype=torch.long)
            targets = torch.zeros(COUNT_BATCH, seq_len, dtype=torch.long)
        counter = FlopCounterMode(display=False)
        with counter:
            loss_of(model(inputs), targets).backward()
    return counter.get_total_flops() / COUNT_BATCH


def gpt_analytic_flops_per_token(n_params_no_pos_embedding: int, n_layer: int, n_embd: int, seq_len: int) -> float:
    """6N + 12·L·H·Q·T per token (PaLM appendix B; nanoGPT's estimate_mfu): H·Q equals the model width."""
    return 6 * n_params_no_pos_embedding + 12 * n_layer * n_embd * seq_len
