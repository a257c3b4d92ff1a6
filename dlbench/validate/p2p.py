"""Peer-to-peer: the copy bandwidth between every ordered pair of local GPUs, as a matrix (the `-p2p` matrix of
CUDA's p2pBandwidthLatencyTest and nvbandwidth's device_to_device_memcpy_read_ce test).

Each copy is timed with CUDA events on the source GPU's current stream: PyTorch performs a copy between two GPUs on
the source device's current stream (aten/src/ATen/native/cuda/Copy.cu, copy_device_to_device), so the events frame
the copy itself. Pairs are judged against the median of all pairs: on NVLink/NVSwitch every pair should match, and
a pair far below is a degraded link. On PCIe hosts pairs across CPU sockets are slower by design, so a pair below
its peers is a WARN (a link to look at), not a FAIL.
"""

from __future__ import annotations

from dlbench.validate import baselines, judge
from dlbench.validate.context import Context
from dlbench.checks import INFO, PASS, WARN, CheckResult, skip
from dlbench.validate.timing import iteration_seconds

BYTES = {"quick": 256 * 2**20, "long": 2**30}
ITERATIONS = {"quick": (3, 10), "long": (5, 30)}  # (warm-up, timed)
SOURCE = (
    "every pair of an NVLink/NVSwitch node runs at the same rate (nvbandwidth, p2pBandwidthLatencyTest); "
    "pairs across CPU sockets of a PCIe host are slower by design"
)
CHECK_ID, TITLE = "interconnect.p2p_bandwidth", "GPU-to-GPU copy bandwidth of every pair against the median pair"


def pair_bandwidth(torch, source, destination, nbytes: int, level: str) -> float:
    """GB/s of one copy of `nbytes` from `source` to `destination`, fastest iteration."""
    sent = torch.empty(nbytes, dtype=torch.uint8, device=source)
    received = torch.empty(nbytes, dtype=torch.uint8, device=destination)
    warmup, iterations = ITERATIONS[level]
    seconds = iteration_seconds(torch, source, lambda: received.copy_(sent), warmup, iterations)
    return nbytes / min(seconds) / 1e9


def run(ctx: Context) -> list[CheckResult]:
    torch = ctx.torch()
    if torch is None:
        return [skip(CHECK_ID, TITLE, ctx.no_torch_reason())]
    if not ctx.on_gpu():
        return [skip(CHECK_ID, TITLE, "no GPU: peer-to-peer copies need two GPUs")]
    devices = ctx.compute_devices()
    if len(devices) < 2:
        return [skip(CHECK_ID, TITLE, "one GPU: no pair to copy between")]
    level = ctx.options.level
    matrix, direct = {}, {}
    with ctx.under_load(CHECK_ID):
        for source in devices:
            for destination in devices:
                if source != destination:
                    pair = f"{source.index}->{destination.index}"
                    direct[pair] = bool(torch.cuda.can_device_access_peer(source.index, destination.index))
                    matrix[pair] = round(pair_bandwidth(torch, source, destination, BYTES[level], level), 2)
    data = {"bytes": BYTES[level], "peer_access": direct}
    if not any(direct.values()):
        return [
            CheckResult(
                CHECK_ID,
                TITLE,
                INFO,
                min(matrix.values()),
                "GB/s",
                per_gpu=matrix,
                data=data,
                detail="no pair has peer access (copies go through host memory): no comparison",
            )
        ]
    result = judge.peers(CHECK_ID, TITLE, matrix, "GB/s", ctx.options.peer_tolerance, source=SOURCE)
    result.data = {**data, "gbs": matrix}
    if result.verdict != PASS:
        result.verdict = WARN  # a PCIe topology makes some pairs slower by design: worth a look, not a rejection
    if not all(direct.values()):
        result.verdict = WARN
        result.detail += "; no peer access between " + ", ".join(p for p, ok in direct.items() if not ok)
    return [result] + _against_reference(ctx, matrix)


def _against_reference(ctx: Context, matrix: dict[str, float]) -> list[CheckResult]:
    """The slowest pair against the model's published GPU-to-GPU figure, where the table has one (WARN only: the
    published figure comes from another copy engine tool, nvbandwidth); no check where it has none."""
    model = ctx.gpus[0].name if ctx.gpus else None
    reference = baselines.p2p_reference(model) if model else None
    if reference is None:
        return []
    pair, low = judge.slowest(matrix)
    result = judge.against_reference(
        "interconnect.p2p_reference",
        "slowest GPU pair's copy bandwidth against the model's published figure",
        low,
        "GB/s",
        reference,
        ctx.options.peer_tolerance,
        can_fail=False,
        no_reference="",
        per_gpu=matrix,
    )
    return [judge.name_slowest(result, pair)]
