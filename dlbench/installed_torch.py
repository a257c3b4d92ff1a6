"""The installed torch: its version, its CUDA build and the cuDNN wheel's version, read without importing torch.
(Which torch build to install on a machine is scripts/torch-build.sh's job, before dlbench is installed.)

Standard library only, so that it also runs as a script under another environment's Python:
`python dlbench/installed_torch.py` prints the JSON of that environment (what `dlbench env --write-spec --python`
uses to describe the conda environment the work runs in, from a dlbench installed elsewhere).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path


def collect() -> dict:
    """torch's version, CUDA build and the cuDNN wheel's version, without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {"version": None, "cuda": None, "cudnn": None}
    namespace: dict = {}
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        # torch/version.py is a generated file of plain assignments; executing it does not import torch.
        exec(compile(version_file.read_text(), str(version_file), "exec"), namespace)
    except (OSError, SyntaxError):
        pass
    return {"version": namespace.get("__version__"), "cuda": namespace.get("cuda"), "cudnn": _cudnn_wheel_version()}


def _cudnn_wheel_version() -> str | None:
    for distribution in ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn-cu11"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


if __name__ == "__main__":
    print(json.dumps(collect()))
