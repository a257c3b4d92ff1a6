"""Choosing the device and the numeric precision, and refusing combinations the hardware cannot do."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from dlbench.errors import UserError

PRECISIONS = ("auto", "fp32", "tf32", "bf16", "fp16")


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise UserError(f"unknown device '{requested}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UserError(f"device type '{device.type}' is not supported; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        raise UserError(f"--device {requested}: no CUDA GPU is available ({build}); use --device cpu")
    count = torch.cuda.device_count()
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= count:
        raise UserError(f"--device {requested}: only {count} GPU(s) visible (cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", index)


def resolve_precision(requested: str, device: torch.device) -> str:
    """The concrete precision: `auto` is bf16 on GPUs with bf16 tensor cores, fp32 elsewhere."""
    is_cuda = device.type == "cuda"
    major = torch.cuda.get_device_capability(device)[0] if is_cuda else 0
    if requested == "auto":
        return "bf16" if is_cuda and major >= 8 else "fp32"
    if requested == "tf32" and not (is_cuda and major >= 8):
        raise UserError("--precision tf32 needs an NVIDIA GPU of the Ampere generation or newer")
    if requested == "bf16" and is_cuda and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(device)
        raise UserError(f"--precision bf16: {name} has no bf16 support; use --precision fp16")
    return requested


@dataclass
class Precision:
    name: str
    device: torch.device

    def configure(self) -> None:
        """Set TF32 explicitly: cuDNN allows TF32 by default, which would make 'fp32' quietly not fp32."""
        if self.device.type == "cuda":
            allow = self.name == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = allow
            torch.backends.cudnn.allow_tf32 = allow

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def autocast(self):
        dtype = self.autocast_dtype
        if dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        if self.name != "fp16":
            return None
        return torch.amp.GradScaler(self.device.type)

    @property
    def peak_key(self) -> str:
        """Which column of the peak table this precision runs on."""
        return self.name
