"""Choosing the device and the numeric precision, and refusing combinations the hardware cannot do."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from dlbench.errors import UserError

PRECISIONS = ("auto", "fp32", "tf32", "bf16", "fp16", "fp8")


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


def select(device: torch.device) -> None:
    """Make `device` current: CUDA events, streams and new tensors follow the current device, not `.to(device)`.
    Without it, `--device cuda:1` records its step events on GPU 0's stream and creates a context there."""
    if device.type == "cuda":
        torch.cuda.set_device(device)


def cuda_uuid(device: torch.device) -> str | None:
    """The GPU's UUID as NVML spells it ("GPU-8f1c..."); CUDA reports the same 16 bytes without the prefix."""
    if device.type != "cuda":
        return None
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def nvml_index(uuid: str | None, nvml=None) -> int | None:
    """NVML's index of the GPU with this UUID, or None when NVML cannot say.

    CUDA numbers the GPUs it can see (CUDA_VISIBLE_DEVICES under Slurm and on shared hosts renumbers them from 0,
    and CUDA_DEVICE_ORDER may sort them differently); NVML numbers every GPU on the machine by PCI bus. Only the
    UUID names the same GPU in both.
    """
    if uuid is None:
        return None
    if nvml is None:
        from dlbench.nvml.reader import load_pynvml

        nvml = load_pynvml()
        if nvml is None:
            return None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return None
    try:
        for candidate in (uuid, "MIG-" + uuid[4:]) if uuid.startswith("GPU-") else (uuid,):
            try:
                return int(nvml.nvmlDeviceGetIndex(nvml.nvmlDeviceGetHandleByUUID(candidate)))
            except nvml.NVMLError:
                continue
        return None
    finally:
        nvml.nvmlShutdown()


def resolve_precision(requested: str, device: torch.device) -> str:
    """The concrete precision: `auto` is bf16 on GPUs with bf16 tensor cores, fp32 elsewhere."""
    is_cuda = device.type == "cuda"
    major = torch.cuda.get_device_capability(device)[0] if is_cuda else 0
    if requested == "auto":
        return "bf16" if is_cuda and major >= 8 else "fp32"
    if requested == "fp8":  # Float8 linears, bf16 for the rest (the Llama workloads, torchao)
        from dlbench.train.recipe import check_float8

        check_float8(device)
    if requested == "tf32" and not (is_cuda and major >= 8):
        raise UserError("--precision tf32 needs an NVIDIA GPU of the Ampere generation or newer")
    if requested == "bf16" and is_cuda and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(device)
        raise UserError(f"--precision bf16: {name} has no bf16 support; use --precision fp16")
    return requested


def cpu_emulation_warning(precision: str, device: torch.device) -> str | None:
    """A warning when a CPU run asks for bf16 or fp16 that this CPU has no instructions for.

    oneDNN runs those matmuls natively only with AVX512-BF16/AVX512-FP16 or AMX; elsewhere (AVX2 machines) PyTorch
    emulates them, and a GPT-2 step measured here took 50 s in bf16 against 1 s in fp32. The run is still allowed (it
    checks the mixed-precision code path), but its figures are emulation's, not the hardware's. The oneDNN query is
    the one PyTorch's own CPU tests use (torch.testing._internal.common_utils); it is private, so an unknown answer
    gives no warning.
    """
    if device.type != "cpu" or precision not in ("bf16", "fp16"):
        return None
    query = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[precision]
    try:
        native = bool(getattr(torch.ops.mkldnn, query)())
    except (AttributeError, RuntimeError):
        return None
    if native:
        return None
    return (
        f"--precision {precision} on a CPU without {precision} instructions (AVX512 or AMX; this one has "
        f"{torch.backends.cpu.get_cpu_capability()}): PyTorch emulates it, often 10-50x slower than fp32"
    )


@dataclass
class Precision:
    name: str
    device: torch.device

    def configure(self) -> None:
        """Set TF32 explicitly: cuDNN allows TF32 by default, which would make 'fp32' quietly not fp32.

        And switch on cuDNN's autotuner: every workload here has fixed shapes (fixed batch, image size and sequence
        length; real data drops the last partial batch), the case `cudnn.benchmark` is for. It picks the fastest
        convolution algorithms during warm-up, as NVIDIA's DeepLearningExamples and Lambda's benchmark do.
        """
        if self.device.type == "cuda":
            allow = self.name == "tf32"
            torch.backends.cuda.matmul.allow_tf32 = allow
            torch.backends.cudnn.allow_tf32 = allow
            torch.backends.cudnn.benchmark = True

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.bfloat16}.get(self.name)

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

    def backend_flags(self) -> dict:
        """The switches in force that change what the kernels compute or how fast, for the result."""
        cuda = torch.backends.cuda
        return {
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "matmul_allow_tf32": bool(cuda.matmul.allow_tf32),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "sdpa_backends_enabled": {
                "flash": cuda.flash_sdp_enabled(),
                "mem_efficient": cuda.mem_efficient_sdp_enabled(),
                "cudnn": cuda.cudnn_sdp_enabled(),
                "math": cuda.math_sdp_enabled(),
            },
            "autocast_dtype": None if self.autocast_dtype is None else str(self.autocast_dtype).replace("torch.", ""),
            "grad_scaler": self.name == "fp16",
        }

    @property
    def peak_key(self) -> str:
        """Which column of the peak table this precision runs on: Float8 runs against the dense bf16 peak, as
        torchtitan reports them (its MFU is not defined for a mix of Float8 and bf16 matmuls)."""
        return "bf16" if self.name == "fp8" else self.name
