"""All-reduce bandwidth: the nccl-tests arithmetic, and the real multi-process code path over gloo on this CPU."""

import pytest

from dlbench.validate import interconnect
from dlbench.validate.report import INFO, PASS
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
