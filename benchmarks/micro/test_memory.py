"""Copies: device memory, host to device and back, and an all-reduce across the GPUs present.

Bytes per call: a device copy reads and writes every byte (2 x size, as STREAM's copy counts); host<->device moves
size once, from pinned memory (what a DataLoader with pin_memory uses); the all-reduce records nccl-tests' bus
bandwidth numerator, size x 2(n-1)/n, so GB/s here is busbw.
"""

from __future__ import annotations

import pytest
import torch

from micro_device import DEVICE, FULL, ON_GPU

MIB = 2**20


def test_device_copy(measure):
    size = (1024 if ON_GPU or FULL else 32) * MIB
    source = torch.empty(size, dtype=torch.uint8, device=DEVICE).random_()
    target = torch.empty_like(source)
    measure(lambda: target.copy_(source), bytes=2 * size, size_bytes=size)


@pytest.mark.parametrize("direction", ["host_to_device", "device_to_host"])
def test_host_device_copy(measure, direction):
    if not ON_GPU:
        pytest.skip("host<->device copies need a CUDA device")
    size = 256 * MIB
    host = torch.empty(size, dtype=torch.uint8, pin_memory=True).random_()
    device = torch.empty(size, dtype=torch.uint8, device=DEVICE)
    source, target = (host, device) if direction == "host_to_device" else (device, host)
    measure(lambda: target.copy_(source, non_blocking=True), bytes=size, size_bytes=size)


def test_all_reduce(measure):
    count = torch.cuda.device_count() if ON_GPU else 0
    if count < 2:
        pytest.skip(f"an all-reduce needs 2 or more CUDA devices ({count} present)")
    import torch.cuda.nccl as nccl

    size = 256 * MIB
    tensors = [torch.ones(size // 4, dtype=torch.float32, device=f"cuda:{i}") for i in range(count)]

    def all_reduce():
        nccl.all_reduce(tensors)

    measure(
        all_reduce,
        bytes=size * 2 * (count - 1) / count,
        size_bytes=size,
        world_size=count,
        bandwidth="busbw (nccl-tests)",
    )
