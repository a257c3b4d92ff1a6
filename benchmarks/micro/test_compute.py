"""Dense matmul per precision, a convolution and scaled-dot-product attention: the math a training step is made of.

FLOPs per call: matmul 2·n³; convolution 2·N·K·C·R·S·H·W (stride 1, same padding); attention forward
4·B·H·S²·D (QKᵀ and the product with V; softmax left out: the `flops()` of Dao-AILab/flash-attention's
benchmarks/benchmark_flash_attention.py, non-causal).
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from micro_device import DEVICE, FULL, ON_GPU

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def tf32(allowed: bool):
    """TF32 set explicitly both ways: PyTorch's default for matmul is off, cuDNN's is on."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def cudnn_autotuned():
    """cuDNN tries its algorithms once per shape and keeps the fastest (the warm-up rounds pay for the search), as
    every published CNN benchmark runs; PyTorch leaves it off by default."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def _check_precision(precision: str) -> None:
    if precision == "tf32" and not (ON_GPU and torch.cuda.get_device_capability(DEVICE)[0] >= 8):
        pytest.skip("TF32 is a tensor-core mode of NVIDIA GPUs from Ampere on")
    if precision == "bf16" and ON_GPU and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip(f"{torch.cuda.get_device_name(DEVICE)} has no bf16 tensor cores")


@pytest.mark.parametrize("precision", list(DTYPES))
def test_matmul(measure, precision):
    """One large square matmul: near the best a GPU reaches (a shape sweep finds the maximum; this is one shape)."""
    _check_precision(precision)
    # on the CPU, reduced precisions go through slow emulation: smaller still
    n = 8192 if ON_GPU or FULL else (256 if precision == "fp32" else 128)
    a = torch.randn(n, n, device=DEVICE, dtype=DTYPES[precision])
    b = torch.randn(n, n, device=DEVICE, dtype=DTYPES[precision])
    with tf32(precision == "tf32"):
        measure(lambda: torch.mm(a, b), flops=2 * n**3, precision=precision, shape=[n, n, n])


def test_conv2d(measure):
    """A ResNet-50 stage-3 3x3 convolution, forward, channels-last in bf16 on GPUs (fp32 on the CPU)."""
    batch, channels, size = (128, 256, 14) if ON_GPU or FULL else (4, 64, 14)
    dtype, precision = (torch.bfloat16, "bf16") if ON_GPU else (torch.float32, "fp32")
    x = torch.randn(batch, channels, size, size, device=DEVICE, dtype=dtype).contiguous(
        memory_format=torch.channels_last
    )
    weight = torch.randn(channels, channels, 3, 3, device=DEVICE, dtype=dtype).contiguous(
        memory_format=torch.channels_last
    )
    with tf32(False), cudnn_autotuned():
        measure(
            lambda: F.conv2d(x, weight, padding=1),
            flops=2 * batch * channels * channels * 9 * size * size,
            precision=precision,
            shape=[batch, channels, size, size],
        )


def test_scaled_dot_product_attention(measure):
    """Attention forward at GPT-2 head size: the fused kernel PyTorch picks (flash or memory-efficient on GPUs)."""
    batch, heads, seq, dim = (8, 16, 2048, 64) if ON_GPU or FULL else (1, 4, 256, 64)
    dtype, precision = (torch.bfloat16, "bf16") if ON_GPU else (torch.float32, "fp32")
    q, k, v = (torch.randn(batch, heads, seq, dim, device=DEVICE, dtype=dtype) for _ in range(3))
    measure(
        lambda: F.scaled_dot_product_attention(q, k, v),
        flops=4 * batch * heads * seq * seq * dim,
        precision=precision,
        shape=[batch, heads, seq, dim],
    )
