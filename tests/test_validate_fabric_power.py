"""NVLink fabric, power limit and the per-model reference table of `dlbench validate`, on a simulated 8x H100 SXM node.

The simulation (dlbench/nvml/simulated.py) answers as NVML does: NVLink
links and their error counters as field values with the link as scope id, the enforced and default power limits, and
nvmlDeviceGetGpuFabricInfo; the faults below are the states NVML reports on a real node with that fault.
"""

import json

import pynvml
import pytest

from dlbench.validate import baselines, compute, fabric, power
from dlbench.checks import FAIL, INFO, PASS, SKIP, WARN
from validate_support import PCI_H100_NVSWITCH, PCI_H100_SXM, context, pci_bus

H100, EIGHT = "h100-sxm", 8


def node(**faults_by_gpu) -> list[dict]:
    """Eight H100 SXM, GPU N scripted with faults_by_gpu["gpuN"] (scenario "values")."""
    return [{"preset": H100, "values": dict(faults_by_gpu.get(f"gpu{i}", {}))} for i in range(EIGHT)]


def by_id(results):
    return {r.id: r for r in results}


def fabric_after_load(ctx, during=lambda: None, service=lambda: "active"):
    with ctx.under_load("test"):
        during()
    return by_id(fabric.run(ctx, service=service))


def test_a_healthy_h100_node_passes_the_fabric_and_power_checks():
    ctx = context(*node())
    results = {**fabric_after_load(ctx), **by_id(power.run(ctx))}
    links = results["fabric.nvlink_links"]
    assert links.verdict == PASS and links.measured == 18
    assert links.per_gpu == {str(i): "18/18 active" for i in range(EIGHT)}
    assert "Health Validation" in links.source
    assert results["fabric.nvlink_errors"].verdict == PASS
    assert results["fabric.manager"].verdict == PASS and results["fabric.manager"].measured == "8/8 GPUs"
    limit = results["power.limit"]
    assert limit.verdict == PASS and limit.measured == 700 and "700 W TDP" in limit.expected


def test_one_inactive_nvlink_fails_naming_the_gpu_and_the_link():
    ctx = context(*node(gpu3={"nvlink": {"7": {"state": pynvml.NVML_NVLINK_STATE_INACTIVE}}}))
    result = fabric_after_load(ctx)["fabric.nvlink_links"]
    assert result.verdict == FAIL and result.measured == 17
    assert result.per_gpu["3"] == "17/18 active" and result.per_gpu["2"] == "18/18 active"
    assert result.detail.startswith("GPU 3 link 7 inactive")


def test_crc_errors_rising_under_load_fail_with_the_counts():
    ctx = context(*node(gpu5={"nvlink": {"2": {"crc": 40}}}))  # errors from before the run do not count
    fake = ctx.reader.nvml

    def errors_under_load():
        fake.gpus[5].values["nvlink"] = {"2": {"crc": 40 + 250}, "9": {"replay": 3}}

    result = fabric_after_load(ctx, errors_under_load)["fabric.nvlink_errors"]
    assert result.verdict == FAIL and result.measured == 253
    assert result.per_gpu == {"5": {"crc": {"2": 250}, "replay": {"9": 3}}}
    assert "GPU 5: crc +250 on link 2, replay +3 on link 9" in result.detail


def test_a_few_replays_under_load_warn_and_old_errors_pass():
    ctx = context(*node(gpu1={"nvlink": {"0": {"crc": 5000}}}))
    fake = ctx.reader.nvml
    assert fabric_after_load(ctx)["fabric.nvlink_errors"].verdict == PASS  # lifetime errors, none during the run

    def replays():
        fake.gpus[1].values["nvlink"] = {"0": {"crc": 5000, "replay": 2}}

    result = fabric_after_load(ctx, replays)["fabric.nvlink_errors"]
    assert result.verdict == WARN and result.per_gpu == {"1": {"replay": {"0": 2}}}


def test_a_recovery_under_load_fails():
    ctx = context(*node())
    fake = ctx.reader.nvml
    result = fabric_after_load(ctx, lambda: fake.gpus[0].values.update(nvlink={"4": {"recovery": 1}}))[
        "fabric.nvlink_errors"
    ]
    assert result.verdict == FAIL and "recovery +1 on link 4" in result.detail


def test_a_gpu_not_registered_with_fabric_manager_fails():
    ctx = context(*node(gpu6={"fabric_state": pynvml.NVML_GPU_FABRIC_STATE_IN_PROGRESS}))
    result = fabric_after_load(ctx)["fabric.manager"]
    assert result.verdict == FAIL and result.per_gpu["6"] == "in progress"
    assert "GPU 6 not registered" in result.detail


@pytest.mark.parametrize("state,verdict", [("active", PASS), ("failed", FAIL), ("inactive", FAIL), (None, SKIP)])
def test_without_nvml_fabric_state_the_service_is_asked_where_nvswitches_are_on_the_bus(tmp_path, state, verdict):
    from dlbench.hostspec.reader import HostReader

    host = HostReader(pci_bus(tmp_path / "host", PCI_H100_SXM, PCI_H100_NVSWITCH))
    from validate_support import simulated_nvml
    from dlbench.validate.context import Context, Options

    ctx = Context(Options(cpu=True, interval_seconds=0.05), nvml=simulated_nvml({"preset": "a100"}), host=host)
    assert ctx.pci_nvswitches == ["0000:07:00.0"]
    result = fabric_after_load(ctx, service=lambda: state)["fabric.manager"]
    assert result.verdict == verdict
    if verdict == FAIL:
        assert f"nvidia-fabricmanager is {state}" in result.detail and "systemctl enable --now" in result.detail


def test_no_nvswitch_and_no_fabric_state_skips_fabric_manager(tmp_path):
    ctx = context({"preset": "a100"})
    ctx.pci_nvswitches = []
    assert fabric_after_load(ctx, service=lambda: "failed")["fabric.manager"].verdict == SKIP


def test_a_350_w_cap_on_a_700_w_h100_fails_with_the_command_that_restores_it():
    ctx = context(*node(gpu1={"power_limit_mw": 350_000}))
    result = by_id(power.run(ctx))["power.limit"]
    assert result.verdict == FAIL and result.measured == 350
    assert result.per_gpu["1"] == {"enforced_watts": 350.0, "default_watts": 700.0}
    assert "GPU 1 capped at 350 W of its default 700 W" in result.detail
    assert "`sudo nvidia-smi -i 1 -pl 700`" in result.detail


def test_a_gpu_without_a_reference_is_measured_not_judged():
    """The RTX 6000 Ada is in neither table: its limits are reported, its links SKIP, no verdict is invented."""
    ctx = context({"preset": "rtx6000-ada"}, {"preset": "rtx6000-ada"})
    limit = by_id(power.run(ctx))["power.limit"]
    assert limit.verdict == PASS  # enforced = default: the one rule that needs no reference
    assert "no reference for NVIDIA RTX 6000 Ada Generation x2 (TDP)" in limit.detail
    assert fabric_after_load(ctx)["fabric.nvlink_links"].verdict == SKIP


def test_a_gpu_with_nvlink_but_no_link_reference_gets_info_naming_model_and_count():
    ctx = context({"preset": "v100"}, {"preset": "v100"})
    result = fabric_after_load(ctx)["fabric.nvlink_links"]
    assert result.verdict == INFO and result.per_gpu == {"0": "6/6 active", "1": "6/6 active"}
    assert "no reference for V100 SXM2 x2 (NVLink links per GPU)" in result.detail


@pytest.mark.parametrize(
    "name,links,tdp,allreduce8",
    [
        ("NVIDIA H100 80GB HBM3", 18, 700, 460),
        ("NVIDIA H200", 18, 700, 431),
        ("NVIDIA B200", 18, 1000, None),
        ("NVIDIA A100-SXM4-80GB", 12, 400, 230),
        ("NVIDIA H100 PCIe", None, 350, None),
        ("NVIDIA L40S", 0, 350, None),
    ],
)
def test_the_reference_table_per_model_and_count(name, links, tdp, allreduce8):
    link_ref, tdp_ref = baselines.nvlinks_reference(name), baselines.tdp_reference(name)
    assert (link_ref.value if link_ref else None) == links
    assert tdp_ref.value == tdp and tdp_ref.source
    reference = baselines.allreduce_reference(name, 8)
    assert (reference.value if reference else None) == allreduce8
    assert baselines.allreduce_reference(name, 4) is None  # no count but 8 has a published figure yet


def test_every_reference_in_the_table_carries_its_source():
    table = baselines._table()["gpus"]
    for model, entry in table.items():
        for key, source in (
            ("allreduce_busbw_gbs", "allreduce_source"),
            ("nvlinks_per_gpu", "nvlink_source"),
            ("tdp_watts", "tdp_source"),
            ("p2p_gbs", "p2p_source"),
        ):
            if key in entry:
                assert entry.get(source), f"{model}: {key} without {source}"
    json.dumps(table)


def test_matmul_rate_is_the_mean_of_the_timed_iterations_not_the_fastest():
    # 2·m·n·k = 2e12 FLOP per iteration: 1 s, 2 s and 3 s iterations average 2 s, i.e. 1 TFLOP/s (fastest: 2)
    assert compute.shape_tflops(10_000, 10_000, 10_000, [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert compute.SWEEPS["long"].warmup_seconds == 30  # mamf-finder warms the accelerator up for 30 s


def _run_node(monkeypatch, gpus, during_load=lambda fake: None):
    """`dlbench validate`'s runner over the simulated node, with the families these checks need: a load phase (the
    GPUs' counters move as `during_load` scripts them), then power, link, fabric and health, as the runner orders them."""
    from dlbench.validate import health, inventory, runner

    def load(ctx):
        with ctx.under_load("load"):
            during_load(ctx.reader.nvml)
        return []

    monkeypatch.setattr(
        runner,
        "families",
        lambda ctx: [
            ("power", power.run),
            ("compute", load),
            ("link", lambda c: [inventory.pcie_link(c)]),
            ("fabric", lambda c: fabric.run(c, service=lambda: "active")),
            ("health", health.run),
        ],
    )
    ctx = context(*gpus)
    ctx.on_gpu = lambda: True  # the load "ran on the GPUs" (the simulated ones)
    return runner.validate(ctx)


def test_a_healthy_simulated_node_exits_0(monkeypatch):
    report = _run_node(monkeypatch, node())
    assert (report.verdict, report.exit_code) == (PASS, 0), [(c.id, c.verdict, c.detail) for c in report.checks]


@pytest.mark.parametrize(
    "gpus,during_load,check_id",
    [
        (node(gpu3={"nvlink": {"7": {"state": 0}}}), lambda fake: None, "fabric.nvlink_links"),
        (node(), lambda fake: fake.gpus[4].values.update(nvlink={"11": {"crc": 1000}}), "fabric.nvlink_errors"),
        (node(gpu1={"power_limit_mw": 350_000}), lambda fake: None, "power.limit"),
    ],
)
def test_each_fault_fails_the_node_with_exit_code_1(monkeypatch, gpus, during_load, check_id):
    report = _run_node(monkeypatch, gpus, during_load)
    failed = [c.id for c in report.checks if c.verdict == FAIL]
    assert failed == [check_id] and report.exit_code == 1


def test_an_h200_node_is_judged_by_the_h200_row_of_the_table():
    ctx = context(*[{"preset": "h200"}] * EIGHT)
    results = {**fabric_after_load(ctx), **by_id(power.run(ctx))}
    assert results["fabric.nvlink_links"].verdict == PASS and results["fabric.nvlink_links"].measured == 18
    assert results["power.limit"].verdict == PASS and "H200 Tensor Core GPU datasheet" in results["power.limit"].source
    assert baselines.allreduce_reference(ctx.gpus[0].name, EIGHT).value == 431


def _sustained(monkeypatch, watts: dict[int, int], sm_mhz=lambda index, t: 1980, gpus=None):
    """The sustained phase over the simulated node: the GEMM load (which needs a GPU) replaced by scripting what NVML
    reports under it: each GPU's board power and SM clock while it runs."""
    import time

    monkeypatch.setattr(power, "SUSTAINED_SECONDS", 0.8)
    ctx = context(*(gpus or node()), level="long")
    ctx.on_gpu = lambda: True
    fake = ctx.reader.nvml

    def load(torch, devices, seconds):
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            for index, gpu in enumerate(fake.gpus):
                gpu.values.update(power_mw=watts.get(index, 650) * 1000, sm_mhz=sm_mhz(index, time.monotonic() - start))
            time.sleep(0.02)

    return power.sustained(ctx, load=load)[0]


def test_a_node_holding_power_near_tdp_passes_the_sustained_phase(monkeypatch):
    result = _sustained(monkeypatch, {})
    assert result.verdict == PASS and result.measured == pytest.approx(650 / 700, abs=0.01)
    assert "120 s" in result.source and result.per_gpu["0"]["mean_watts"] == 650


def test_a_gpu_that_cannot_hold_power_or_collapses_its_clock_fails_the_sustained_phase(monkeypatch):
    result = _sustained(monkeypatch, {2: 400})
    assert result.verdict == FAIL and "GPU 2 held 400 W, 57% of 700 W" in result.detail
    collapse = _sustained(monkeypatch, {}, sm_mhz=lambda index, t: 600 if index == 6 and t > 0.5 else 1980)
    assert collapse.verdict == FAIL and "GPU 6 SM clock fell to 600 MHz from 1980" in collapse.detail


def test_the_sustained_phase_runs_at_long_only():
    assert power.sustained(context(*node()))[0].verdict == SKIP
