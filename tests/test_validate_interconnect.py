"""All-reduce bandwidth: the nccl-tests arithmetic, and the real multi-process code path over gloo on this CPU;
the peer-to-peer matrix at the CUDA boundary."""

import pytest
import torch

from dlbench.validate import interconnect
from dlbench.checks import INFO, PASS, SKIP, WARN
from validate_support import context


def test_bus_bandwidth_is_nccl_tests_formula():
    # nccl-tests doc/PERFORMANCE.md: busbw = algbw * 2(n-1)/n for all-reduce; 8 ranks: factor 1.75
    algbw, busbw = interconnect.bus_bandwidth(1_000_000_000, 0.01, 8)
    assert algbw == pytest.approx(100.0)
    assert busbw == pytest.approx(175.0)
    assert interconnect.bus_bandwidth(10**9, 1.0, 2) == pytest.approx((1.0, 1.0))


@pytest.mark.integration
def test_all_reduce_across_two_local_processes_with_gloo():
    results = {r.id: r for r in interconnect.run(context())}
    assert results["interconnect.allreduce_correct"].verdict == PASS
    busbw = results["interconnect.allreduce_busbw"]
    assert busbw.verdict == INFO and busbw.measured > 0
    assert busbw.data["ranks"] == 2 and busbw.data["backend"] == "gloo"
    assert set(busbw.data["sweep"]) == {str(n) for n in interconnect.SIZES["cpu"]}


def test_gpu_sweeps_reach_the_message_sizes_of_the_published_bus_bandwidth():
    # the references are nccl-tests plateaus at GiB-sized messages; 256 MiB on 8 NVLink GPUs reads below them
    assert all(max(interconnect.SIZES[level]) >= 2**30 for level in ("quick", "long"))


def test_a_peer_copy_is_timed_on_the_source_gpu(monkeypatch):
    # PyTorch copies between two GPUs on the source's current stream (ATen cuda/Copy.cu): the events belong there
    from dlbench.validate import p2p

    timed_on = []

    def seconds(torch_, device, fn, warmup, iterations):
        timed_on.append(device)
        return [0.004, 0.002]

    monkeypatch.setattr(p2p, "iteration_seconds", seconds)
    source, destination = torch.device("cpu"), torch.device("meta")
    assert p2p.pair_bandwidth(torch, source, destination, 2**20, "quick") == pytest.approx(2**20 / 0.002 / 1e9)
    assert timed_on == [source]


@pytest.fixture
def three_gpus(monkeypatch):
    """torch sees three GPUs with peer access as scripted; each pair copies at the scripted rate."""
    from dlbench.validate import p2p

    def install(ctx, rates, no_access=()):
        monkeypatch.setattr(type(ctx), "compute_devices", lambda self: [torch.device("cuda", i) for i in range(3)])
        monkeypatch.setattr(torch.cuda, "can_device_access_peer", lambda i, j: (i, j) not in no_access)
        monkeypatch.setattr(
            p2p, "pair_bandwidth", lambda torch_, s, d, nbytes, level: rates.get((s.index, d.index), 380.0)
        )

    return install


def test_a_pair_far_below_the_others_is_named(three_gpus):
    from dlbench.validate import p2p

    ctx = context()
    three_gpus(ctx, {(2, 0): 150.0})  # one direction of one NVLink pair degraded
    (result,) = p2p.run(ctx)
    assert result.verdict == WARN and "slowest 2->0" in result.detail
    assert result.data["gbs"]["2->0"] == 150.0 and len(result.data["gbs"]) == 6
    three_gpus(ctx, {})
    assert p2p.run(ctx)[0].verdict == PASS


def test_pairs_without_peer_access_are_named(three_gpus):
    from dlbench.validate import p2p

    ctx = context()
    three_gpus(ctx, {}, no_access={(0, 1), (1, 0)})
    (result,) = p2p.run(ctx)
    assert result.verdict == WARN and "no peer access between 0->1, 1->0" in result.detail


def test_the_cpu_path_skips_the_peer_matrix():
    from dlbench.validate import p2p

    assert p2p.run(context())[0].verdict == SKIP


def test_h200_pairs_are_held_to_azures_published_copy_bandwidth(three_gpus):
    """8x H200: Azure's nd96isr_h200_v5 health check wants GPU-to-GPU copies of at least 335 GB/s (WARN only here)."""
    from dlbench.validate import p2p

    ctx = context({"preset": "h200"}, {"preset": "h200"}, {"preset": "h200"})
    three_gpus(ctx, {})
    peers, reference = p2p.run(ctx)
    assert (peers.verdict, reference.verdict, reference.id) == (PASS, PASS, "interconnect.p2p_reference")
    assert "check_gpu_bw 48 335" in reference.source
    three_gpus(ctx, {(pair, other): 280.0 for pair in range(3) for other in range(3)})  # every pair slow alike
    peers, reference = p2p.run(ctx)
    assert peers.verdict == PASS and reference.verdict == WARN and reference.measured == 280.0
