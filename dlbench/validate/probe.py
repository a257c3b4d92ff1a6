"""Run inside a container by the container check: what torch sees there, and its best bf16 matmul rate per device,
measured with the same code as the host's compute check. Prints one JSON object on stdout.

    python -m dlbench.validate.probe
"""

from __future__ import annotations

import json
import sys


def measure() -> dict:
    result: dict = {"python": sys.version.split()[0]}
    try:
        import torch
    except ImportError as error:
        return {**result, "error": f"cannot import torch: {error}"}
    from dlbench.validate.compute import SWEEPS, best_matmul_tflops, device_label

    cuda = torch.cuda.is_available()
    devices = [torch.device("cuda", i) for i in range(torch.cuda.device_count())] if cuda else [torch.device("cpu")]
    result.update(
        torch=torch.__version__.split("+")[0],
        cuda=torch.version.cuda,
        cuda_available=cuda,
        gpus=[torch.cuda.get_device_name(d) for d in devices] if cuda else [],
    )
    precision = "bf16" if not cuda or torch.cuda.get_device_capability(devices[0])[0] >= 8 else "fp32"
    sweep = SWEEPS["quick" if cuda else "cpu"]
    result["matmul_precision"] = precision
    result["matmul_tflops"] = {
        device_label(d): round(best_matmul_tflops(torch, d, precision, sweep)[0], 3) for d in devices
    }
    return result


if __name__ == "__main__":
    print(json.dumps(measure()))
