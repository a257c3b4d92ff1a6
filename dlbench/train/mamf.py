"""The host's measured MAMF ("maximum achievable matmul FLOPS", stas00's mamf-finder) from a `dlbench validate
--json` report, for `dlbench run --mamf-from REPORT.json`: MFU against what this host's GPUs can actually sustain
in a dense bf16 matmul, beside torchtitan's MFU against the datasheet peak.

The figure is the report's `compute.matmul_bf16` check: the best shape's mean rate of each GPU, and the check's
`measured` value is the slowest GPU's. A run's tokens/s per GPU is the job's average and its ranks wait on the
slowest, so the slowest GPU's MAMF is the one used (the report's GPU indices are CUDA ordinals of the validate
process, which need not be the run's, so matching them per rank would be guesswork).
"""

from __future__ import annotations

import json
from pathlib import Path

from dlbench.errors import UserError

CHECK_ID = "compute.matmul_bf16"


def load(path: str) -> dict:
    """The bf16 MAMF of REPORT and the GPU model it was measured on; UserError (one line) for anything else."""
    where = Path(path)
    try:
        report = json.loads(where.read_text())
    except FileNotFoundError:
        raise UserError(f"--mamf-from {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"--mamf-from {path}: not a readable JSON file ({type(error).__name__})") from None
    tool = report.get("tool") if isinstance(report, dict) else None
    if not isinstance(tool, dict) or tool.get("name") != "dlbench validate":
        raise UserError(f"--mamf-from {path}: not a `dlbench validate --json` report")
    check = next((c for c in report.get("checks") or [] if isinstance(c, dict) and c.get("id") == CHECK_ID), None)
    if check is None or not isinstance(check.get("measured"), (int, float)) or check["measured"] <= 0:
        why = (
            "it has no such check" if check is None else f"{CHECK_ID} is {check.get('verdict')}: {check.get('detail')}"
        )
        raise UserError(
            f"--mamf-from {path}: no bf16 matmul measurement ({why}); run `dlbench validate --json` on the GPUs"
        )
    per_gpu = check.get("per_gpu") or {}
    if not per_gpu or "cpu" in per_gpu:
        raise UserError(
            f"--mamf-from {path}: its bf16 matmul was measured on the CPU, not a GPU (dlbench validate "
            "--cpu, or no GPU visible to torch)"
        )
    models = sorted({gpu.get("name") for gpu in (report.get("environment") or {}).get("gpus") or []} - {None})
    if len(models) != 1:
        raise UserError(
            f"--mamf-from {path}: the report names {len(models)} GPU models ({', '.join(models)}); a MAMF needs one"
        )
    slowest = min(per_gpu, key=per_gpu.get)
    return {
        "tflops": float(check["measured"]),
        "gpu_name": models[0],
        "gpu": f"slowest of {len(per_gpu)} GPU(s): index {slowest} of the validate run",
        "report": str(where.resolve()),
        "host": report.get("host"),
        "measured_at": report.get("finished"),
    }


def for_device(path: str | None, device_type: str, device_name: str | None) -> dict | None:
    """The MAMF a run on this device compares with: None without --mamf-from; refused for another GPU model.
    On the CPU the figure is kept with the reason it does not apply (a CPU run has no bf16 tensor-core MFU)."""
    if path is None:
        return None
    mamf = load(path)
    if device_type != "cuda":
        return mamf | {
            "applies": False,
            "reason": f"the run trained on the {device_type.upper()}, the MAMF was measured on {mamf['gpu_name']}",
        }
    if (device_name or "").strip().lower() != mamf["gpu_name"].strip().lower():
        raise UserError(f"--mamf-from {path}: measured on {mamf['gpu_name']}, but this run trains on {device_name}")
    return mamf | {"applies": True, "reason": None}
