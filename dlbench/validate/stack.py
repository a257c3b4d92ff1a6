"""Stack: the host's software against the declared spec (stack.yml), and whether a real kernel runs.

Checks the driver branch, the driver against the floor of the torch build's CUDA release, torch's version and CUDA
build, cuDNN's major version, NCCL's version (reported: stack.yml pins it only through the torch wheel), that torch
sees every GPU NVML sees, and that a matrix product on every GPU equals the CPU's.
"""

from __future__ import annotations

import os
from pathlib import Path

from dlbench import environment, yamlfile
from dlbench.errors import UserError
from dlbench.validate.context import Context
from dlbench.checks import FAIL, INFO, PASS, WARN, CheckResult, skip

# Minimum Linux driver per CUDA toolkit release: the table "CUDA Toolkit and Corresponding Driver Versions" of the
# CUDA Toolkit release notes, https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/index.html
DRIVER_FLOOR = {
    "11.8": "520.61.05",
    "12.4": "550.54.14",
    "12.6": "560.28.03",
    "12.8": "570.26",
    "12.9": "575.51.03",
    "13.0": "580.65.06",
    "13.1": "590.44.01",
}
# Minor-version compatibility floor per CUDA major: runs, but without PTX JIT for GPUs newer than the binary's code
# (the same release notes, and https://docs.nvidia.com/deploy/cuda-compatibility/, "Minor Version Compatibility").
MINOR_COMPAT_FLOOR = {"12": "525.60.13", "13": "580"}
DRIVER_SOURCE = "NVIDIA CUDA Toolkit release notes: minimum driver per toolkit and minor-version compatibility"
STACK_SOURCE = "stack.yml"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("+")[0].split(".") if part.isdigit())


def default_stack_path() -> Path | None:
    """./stack.yml, else the stack.yml of the checkout dlbench runs from; None when neither exists."""
    for candidate in (Path("stack.yml"), Path(__file__).resolve().parents[2] / "stack.yml"):
        if candidate.is_file():
            return candidate
    return None


def load_stack(path: Path) -> dict[str, str]:
    spec = yamlfile.read(path, f"--stack {path}")
    if not isinstance(spec, dict) or "stack_torch_version" not in spec:
        raise UserError(f"--stack {path} is not a dlbench stack spec (no stack_torch_version)")
    return {key: str(value) for key, value in spec.items()}


def _equal(check_id: str, title: str, measured, expected, source: str = STACK_SOURCE) -> CheckResult:
    verdict = PASS if str(measured) == str(expected) else FAIL
    detail = "" if verdict == PASS else f"the host has {measured}, the spec declares {expected}"
    return CheckResult(check_id, title, verdict, measured, expected=f"== {expected}", source=source, detail=detail)


def driver_floor_check(driver: str, cuda: str) -> CheckResult:
    check_id, title = "stack.driver_floor", f"driver new enough for the torch build's CUDA {cuda}"
    floor = DRIVER_FLOOR.get(cuda)
    compat = MINOR_COMPAT_FLOOR.get(cuda.split(".")[0])
    if floor is None:
        return CheckResult(check_id, title, INFO, driver, detail=f"no driver floor known for CUDA {cuda}")
    if _version(driver) >= _version(floor):
        verdict, detail = PASS, ""
    elif compat and _version(driver) >= _version(compat):
        verdict, detail = (
            WARN,
            (
                f"below {floor}: runs only through minor-version compatibility (no PTX JIT for "
                "GPUs the binary has no code for)"
            ),
        )
    else:
        verdict, detail = FAIL, f"driver {driver} cannot run CUDA {cuda} code (needs {floor})"
    return CheckResult(check_id, title, verdict, driver, expected=f">= {floor}", source=DRIVER_SOURCE, detail=detail)


def _kernel_check(torch, devices) -> CheckResult:
    """A matrix product on every GPU against the CPU's: the driver, runtime and cuBLAS really work."""
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 256, generator=generator), torch.randn(256, 256, generator=generator)
    expected = a @ b
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    failures = {}
    try:
        for device in devices:
            got = (a.to(device) @ b.to(device)).cpu()
            if not torch.allclose(got, expected, rtol=1e-4, atol=1e-3):
                failures[str(device)] = float((got - expected).abs().max())
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    verdict = FAIL if failures else PASS
    return CheckResult(
        "stack.kernel",
        "a fp32 matrix product on every device equals the CPU's",
        verdict,
        len(devices) - len(failures),
        "devices",
        expected=f"== {len(devices)}",
        detail="; ".join(f"{d}: max error {e:.3g}" for d, e in failures.items()),
    )


def run(ctx: Context) -> list[CheckResult]:
    spec = ctx.options.stack
    build = environment.collect()["torch"]  # version and CUDA build without importing torch
    results = []
    driver = ctx.reader.driver_version if ctx.reader.up else ""
    if spec is None:
        results.append(skip("stack.spec", "host against stack.yml", "no stack.yml found: pass --stack FILE"))
    else:
        if driver:
            results.append(
                _equal("stack.driver_branch", "driver branch", driver.split(".")[0], spec["stack_driver_branch"])
            )
        else:
            results.append(skip("stack.driver_branch", "driver branch", f"no NVIDIA driver ({ctx.nvml_problem})"))
        if build["version"]:
            results.append(
                _equal(
                    "stack.torch_version", "torch version", build["version"].split("+")[0], spec["stack_torch_version"]
                )
            )
            variant = spec.get("stack_torch_cuda_variant", "")
            declared_cuda = f"{variant[2:-1]}.{variant[-1]}" if variant.startswith("cu") else spec["stack_cuda_version"]
            if ctx.gpus:
                results.append(
                    _equal("stack.torch_cuda", f"torch CUDA build ({variant})", build["cuda"] or "cpu", declared_cuda)
                )
            else:
                results.append(
                    skip(
                        "stack.torch_cuda",
                        f"torch CUDA build ({variant})",
                        f"no GPU on this host: torch's build is {build['cuda'] or 'CPU-only'}",
                    )
                )
    if build["version"] is None:
        results.append(skip("stack.torch", "torch installed", ctx.no_torch_reason()))
        return results
    if driver and build["cuda"]:
        results.append(driver_floor_check(driver, build["cuda"]))
    torch = ctx.torch()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if spec is not None:
        if cudnn:
            major = cudnn // 10000 if cudnn >= 10000 else cudnn // 1000  # 91002 is 9.10.2, 8902 is 8.9.2
            results.append(_equal("stack.cudnn", "cuDNN major version", major, spec["stack_cudnn_major"]))
        else:
            results.append(skip("stack.cudnn", "cuDNN major version", "this torch build has no cuDNN (CPU build)"))
    if torch.cuda.is_available():
        nccl = ".".join(map(str, torch.cuda.nccl.version())) if hasattr(torch.cuda, "nccl") else None
        results.append(
            CheckResult(
                "stack.nccl",
                "NCCL version torch ships",
                INFO,
                nccl,
                detail="pinned through the torch wheel's nvidia-nccl dependency",
            )
        )
    results.append(_visible_check(ctx, torch))
    gpu_devices = [d for d in ctx.compute_devices() if d.type == "cuda"]
    if gpu_devices:
        results.append(_kernel_check(torch, gpu_devices))
    else:
        results.append(skip("stack.kernel", "a kernel runs on every GPU", "no GPU visible to torch"))
    return results


def _visible_check(ctx: Context, torch) -> CheckResult:
    nvml_count = len(ctx.gpus)
    torch_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    title = "torch sees every GPU NVML sees"
    if nvml_count == 0:
        return skip("stack.gpus_visible", title, f"no GPU: {ctx.nvml_problem or 'NVML lists none'}")
    verdict = PASS if torch_count == nvml_count else FAIL
    detail = (
        ""
        if verdict == PASS
        else (
            f"NVML lists {nvml_count} GPU(s), torch sees {torch_count}: check CUDA_VISIBLE_DEVICES "
            f"({os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}) and torch's CUDA build "
            f"({torch.version.cuda or 'CPU-only'})"
        )
    )
    return CheckResult(
        "stack.gpus_visible",
        title,
        verdict,
        torch_count,
        "GPUs",
        expected=f"== {nvml_count} (NVML)",
        source="NVML device count",
        detail=detail,
    )
