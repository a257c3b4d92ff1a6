"""Container (--image TAG): the pinned image, run through the Docker Engine API (Docker SDK for Python) with every
GPU requested, sees the GPUs NVML sees, carries the torch and CUDA build it declares and the spec names, and
multiplies matrices as fast as the host does.

The probe inside is `python -m dlbench.validate.probe` from this dlbench, mounted read-only over the image's own, so
host and container are measured by the same code. The container has no network.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlbench.validate.context import DEVICE_ORDER, Context
from dlbench.checks import FAIL, INFO, PASS, CheckResult, at_least, skip

MOUNT = "/opt/dlbench-validate"
TIMEOUT_SECONDS = 900
LABEL_TORCH, LABEL_VARIANT = "io.dlbench.stack.torch", "io.dlbench.stack.torch-variant"  # images/Dockerfile


def _client():
    import docker

    return docker.from_env(timeout=60)


def run_probe(client, image: str, with_gpus: bool) -> tuple[dict | None, str]:
    """(what the probe printed, or None; the error or the output when it did not work)."""
    import docker
    from docker.types import DeviceRequest

    package = Path(__file__).resolve().parents[1]
    requests = [DeviceRequest(count=-1, capabilities=[["gpu"]])] if with_gpus else []
    try:
        container = client.containers.run(
            image,
            ["python3", "-m", "dlbench.validate.probe"],
            detach=True,
            network_mode="none",
            environment={"PYTHONPATH": MOUNT, **DEVICE_ORDER},
            volumes={str(package): {"bind": f"{MOUNT}/dlbench", "mode": "ro"}},
            device_requests=requests,
            ipc_mode="host" if with_gpus else None,
        )
    except docker.errors.DockerException as error:
        return None, f"the engine could not start the container: {error}"
    try:
        status = container.wait(timeout=TIMEOUT_SECONDS)
        output = container.logs(stdout=True, stderr=False).decode(errors="replace").strip()
        errors = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
    except Exception as error:  # noqa: BLE001 - a timeout from the engine's HTTP client, among others
        return None, f"the probe did not finish: {error}"
    finally:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            pass
    if status.get("StatusCode") != 0:
        return None, f"the probe exited with {status.get('StatusCode')}: {(errors or output)[-500:]}"
    try:
        return json.loads(output.splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, f"the probe printed no result: {(errors or output)[-500:]}"


def run(ctx: Context, client=None) -> list[CheckResult]:
    image = ctx.options.image
    if client is None:
        import docker

        try:
            client = _client()
            client.ping()
        except docker.errors.DockerException as error:
            return [CheckResult("container.engine", "the Docker Engine answers", FAIL, detail=str(error))]
    import docker

    try:
        labels = client.images.get(image).labels or {}
    except docker.errors.ImageNotFound:
        try:
            labels = client.images.pull(image).labels or {}
        except docker.errors.DockerException as error:
            return [
                CheckResult(
                    "container.image",
                    f"image {image} is present",
                    FAIL,
                    detail=f"not on this host and the pull failed: {error}",
                )
            ]
    with_gpus = bool(ctx.gpus)
    with ctx.under_load("container"):
        probe, problem = run_probe(client, image, with_gpus)
    if probe is None or "error" in probe:
        return [CheckResult("container.probe", f"torch runs in {image}", FAIL, detail=problem or probe["error"])]
    return [_gpus(ctx, probe), _torch(ctx, probe, labels), _matmul(ctx, probe)]


def _gpus(ctx: Context, probe: dict) -> CheckResult:
    title = "the container sees every GPU of the host"
    if not ctx.gpus:
        return skip("container.gpus", title, "no GPU on this host to hand to the container")
    host = [gpu.name for gpu in ctx.gpus]
    verdict = PASS if probe["gpus"] == host else FAIL
    return CheckResult(
        "container.gpus",
        title,
        verdict,
        len(probe["gpus"]),
        "GPUs",
        expected=f"== {host}",
        source="NVML on the host",
        per_gpu={str(i): n for i, n in enumerate(probe["gpus"])},
        detail="" if verdict == PASS else "check the NVIDIA Container Toolkit and the device request",
    )


def _torch(ctx: Context, probe: dict, labels: dict) -> CheckResult:
    """torch and its CUDA build inside: as the image's labels declare, and as stack.yml names them."""
    found = f"{probe['torch']} (CUDA {probe['cuda'] or 'none'})"
    wanted = []
    if labels.get(LABEL_TORCH):
        wanted.append(("image label", labels[LABEL_TORCH], labels.get(LABEL_VARIANT, "")))
    spec = ctx.options.stack
    if spec:
        wanted.append(("stack.yml", spec["stack_torch_version"], spec.get("stack_torch_cuda_variant", "")))
    if not wanted:
        return CheckResult(
            "container.torch",
            "torch in the image as declared",
            INFO,
            found,
            detail="the image declares no torch version and no stack.yml was given",
        )
    variant = "cpu" if not probe["cuda"] else "cu" + probe["cuda"].replace(".", "")
    wrong = [
        f"{where} says {torch} {v}" for where, torch, v in wanted if torch != probe["torch"] or (v and v != variant)
    ]
    return CheckResult(
        "container.torch",
        "torch in the image as declared",
        FAIL if wrong else PASS,
        found,
        expected=" and ".join(f"{t} {v}".strip() for _, t, v in wanted),
        source=", ".join(where for where, _, _ in wanted),
        detail="; ".join(wrong),
    )


def _matmul(ctx: Context, probe: dict) -> CheckResult:
    """The container's matmul rate per device against the host's, from this run's compute check."""
    title = f"{probe['matmul_precision']} matmul rate in the container, against the host's"
    inside = probe["matmul_tflops"]
    host_check = next((c for c in ctx.results if c.id == f"compute.matmul_{probe['matmul_precision']}"), None)
    if host_check is None or not ctx.on_gpu():
        return CheckResult(
            "container.matmul",
            title,
            INFO,
            min(inside.values()),
            "TFLOP/s",
            per_gpu=inside,
            detail="CPU path or no host figure: nothing to compare",
        )
    ratios = {d: inside[d] / host_check.per_gpu[d] for d in inside if host_check.per_gpu.get(d)}
    if not ratios:
        return CheckResult("container.matmul", title, FAIL, detail="the container measured no GPU the host did")
    worst = min(ratios, key=ratios.get)
    result = at_least(
        "container.matmul",
        title,
        round(ratios[worst], 4),
        "of the host's",
        1 - ctx.options.peer_tolerance,
        "the host's compute check in this run",
        per_gpu={d: round(r, 4) for d, r in ratios.items()},
    )
    result.detail = f"GPU {worst}: {inside[worst]:.4g} TFLOP/s inside, {host_check.per_gpu[worst]:.4g} on the host"
    return result
