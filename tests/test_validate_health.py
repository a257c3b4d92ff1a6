"""Every health and inventory state `dlbench validate` judges, driven through the simulated NVML.

The simulation (dlbench/nvml/simulated.py) answers as NVML does; the
values below are the states NVML reports on a real fault (NVML API reference, Device Queries).
"""

import os

import pynvml
import pytest

from dlbench.validate import health, inventory
from dlbench.validate.context import LoadWindow
from dlbench.checks import FAIL, INFO, PASS, SKIP, WARN
from validate_support import context

H100 = "h100-sxm"


def by_id(results):
    return {r.id: r for r in results}


def health_after_load(ctx, during=lambda: None, on_gpu=True):
    ctx.on_gpu = lambda: on_gpu  # the load "ran on the GPUs" (the simulated ones): what the link check needs
    with ctx.under_load("test"):
        during()
    return by_id(health.run(ctx) + [inventory.pcie_link(ctx)])


def test_a_healthy_host_passes_every_health_check():
    ctx = context({"preset": H100}, {"preset": H100})
    results = health_after_load(ctx)
    for check_id in (
        "health.ecc_uncorrected",
        "health.ecc_corrected_during_run",
        "health.row_remap",
        "health.retired_pages",
        "health.xid",
        "health.slowdown",
        "inventory.pcie_link",
    ):
        assert results[check_id].verdict == PASS, results[check_id]
    assert results["health.temperature"].verdict == INFO
    series = results["health.temperature"].data["series"]["0"]
    assert series and series[-1]["temperature_celsius"] == 35


def test_uncorrectable_ecc_fails_and_names_the_gpu():
    ctx = context({"preset": H100}, {"preset": H100, "values": {"ecc_uncorrected": 2}})
    result = health_after_load(ctx)["health.ecc_uncorrected"]
    assert result.verdict == FAIL
    assert result.per_gpu == {"0": 0, "1": 2}
    assert "GPU 1: 2 uncorrectable" in result.detail


def test_corrected_errors_growing_under_load_warn():
    ctx = context({"preset": H100})
    fake = ctx.reader.nvml

    def errors_appear():
        fake.gpus[0].values["ecc_corrected"] = 5

    result = health_after_load(ctx, errors_appear)["health.ecc_corrected_during_run"]
    assert result.verdict == WARN and result.measured == 5


@pytest.mark.parametrize("remapped,expected", [((0, 0, 1, 0), "remap pending"), ((0, 3, 0, 1), "remap failed")])
def test_pending_remap_and_remap_failure_fail(remapped, expected):
    ctx = context({"preset": "a100", "values": {"remapped": remapped}})
    result = health_after_load(ctx)["health.row_remap"]
    assert result.verdict == FAIL and expected in result.detail


def test_retired_pages_warn_and_pending_retirement_fails():
    assert (
        health_after_load(context({"preset": H100, "values": {"retired_pages": [2, 0]}}))[
            "health.retired_pages"
        ].verdict
        == WARN
    )
    pending = context({"preset": H100, "values": {"retired_pages_pending": 1}})
    result = health_after_load(pending)["health.retired_pages"]
    assert result.verdict == FAIL and "reload the driver" in result.detail


def test_a_downtrained_link_under_load_fails():
    ctx = context({"preset": H100}, {"preset": H100, "values": {"pcie_width_current": 8}})
    result = health_after_load(ctx)["inventory.pcie_link"]
    assert result.verdict == FAIL
    assert result.per_gpu["1"] == "Gen5 x8 of Gen5 x16"
    assert "GPU 1" in result.detail


def test_the_link_is_not_judged_without_gpu_load():
    ctx = context({"preset": H100, "values": {"pcie_gen_current": 1}})
    assert inventory.pcie_link(ctx).verdict == SKIP  # idle GPUs train down to Gen1: no load, no verdict
    # nor under a load that ran on the CPU (--cpu, or torch without CUDA)
    assert health_after_load(ctx, on_gpu=False)["inventory.pcie_link"].verdict == SKIP


def _load_with_reasons(ctx, *reasons):
    """A load window whose NVML samples (read through the real reader) carry these clock-event reasons in turn."""
    window = LoadWindow("test", gpu_load=True)
    for t, reason in enumerate(reasons):
        ctx.reader.nvml.gpus[0].values["clocks_event_reasons"] = reason
        window.samples.append((float(t), ctx.reader.read_all()))
    ctx.windows.append(window)
    return by_id(health.run(ctx))["health.slowdown"]


def test_thermal_slowdown_held_under_load_fails_but_the_power_cap_does_not():
    thermal, cap = pynvml.nvmlClocksEventReasonHwThermalSlowdown, pynvml.nvmlClocksEventReasonSwPowerCap
    result = _load_with_reasons(context({"preset": H100}), cap, thermal, thermal, cap)
    assert result.verdict == FAIL and result.per_gpu == {"0": {"hw_thermal_slowdown": 0.5}}
    assert _load_with_reasons(context({"preset": H100}), cap, cap, cap).verdict == PASS


def test_a_slowdown_in_one_sample_only_warns():
    # nvml.h: HW slowdown "may be also reported during PState or clock change"; one sample of it is not a fault
    cap, slow = pynvml.nvmlClocksEventReasonSwPowerCap, pynvml.nvmlClocksEventReasonHwSlowdown
    result = _load_with_reasons(context({"preset": H100}), cap, slow, cap, cap, slow, cap)
    assert result.verdict == WARN and "hw_slowdown 33% of samples" in result.detail


# 46, 143, 158 (RESET_GPU) and 171 (uncorrectable DRAM error, XID 48's workflow) were missing from validate's own
# list; 154 (follow the recovery action) and 157 (IGNORE) are not critical in the catalogue
@pytest.mark.parametrize(
    "code,verdict",
    [
        (79, FAIL),
        (48, FAIL),
        (46, FAIL),
        (143, FAIL),
        (158, FAIL),
        (171, FAIL),
        (13, WARN),
        (94, WARN),
        (154, WARN),
        (157, WARN),
    ],
)
def test_an_xid_during_the_run_is_judged_by_its_code(code, verdict):
    ctx = context({"preset": H100}, {"preset": H100})
    result = health_after_load(ctx, lambda: ctx.reader.nvml.inject_xid(1, code))["health.xid"]
    assert result.verdict == verdict
    assert result.per_gpu == {"1": [code]}


def test_a_gpu_lost_during_the_run_fails():
    ctx = context({"preset": H100}, {"preset": H100})

    def fall_off_the_bus():
        ctx.reader.nvml.gpus[1].lost = True

    result = health_after_load(ctx, fall_off_the_bus)["health.gpus_answer"]
    assert result.verdict == FAIL and "GPU 1" in result.detail


def test_inventory_modes():
    ctx = context(
        {"preset": H100, "values": {"persistence": 0}},
        {"preset": H100, "values": {"ecc_mode": [0, 0], "mig_mode": [1, 1]}},
    )
    results = by_id(inventory.run(ctx))
    assert results["inventory.persistence_mode"].verdict == WARN
    assert results["inventory.ecc_mode"].verdict == FAIL
    assert "ECC is off on GPU 1, a card that ships with it on" in results["inventory.ecc_mode"].detail
    assert results["inventory.mig_mode"].verdict == WARN


def test_a_pending_ecc_change_asks_for_a_reset():
    ctx = context({"preset": H100, "values": {"ecc_mode": [1, 0]}})
    assert by_id(inventory.run(ctx))["inventory.pending_mode_change"].verdict == WARN


def test_ecc_turned_off_on_a_data_centre_card_fails_with_the_command_that_turns_it_on():
    result = by_id(inventory.run(context({"preset": H100}, {"preset": "a100", "values": {"ecc_mode": [0, 0]}})))
    ecc = result["inventory.ecc_mode"]
    assert ecc.verdict == FAIL and ecc.measured == "1/2 GPUs with ECC" and ecc.per_gpu == {"0": "on", "1": "off"}
    assert "sudo nvidia-smi -i 1 -e 1, then reboot" in ecc.detail


def test_a_workstation_card_as_it_ships_warns_that_ecc_is_off():
    # RTX 6000 Ada / RTX A6000: ECC present, off from the factory (nvmlDeviceGetDefaultEccMode: DISABLED)
    results = by_id(inventory.run(context({"preset": "rtx6000-ada"}, {"preset": "rtx6000-ada"})))
    ecc = results["inventory.ecc_mode"]
    assert ecc.verdict == WARN and ecc.per_gpu == {"0": "off (ships off)", "1": "off (ships off)"}
    assert "as this workstation card ships" in ecc.detail
    assert "turn it on with: sudo nvidia-smi -e 1, then reboot" in ecc.detail  # every GPU: no -i
    assert results["inventory.mig_mode"].verdict == SKIP  # no MIG on workstation cards
    # with ECC off NVML keeps no ECC counts ("Requires ECC Mode to be enabled"): nothing to judge, not a clean PASS
    assert health_after_load(context({"preset": "rtx6000-ada"}))["health.ecc_uncorrected"].verdict == SKIP


def test_a_workstation_card_with_ecc_turned_on_passes():
    results = by_id(inventory.run(context({"preset": "rtx6000-ada", "values": {"ecc_mode": [1, 1]}})))
    assert results["inventory.ecc_mode"].verdict == PASS and results["inventory.ecc_mode"].detail == ""


def test_ecc_off_where_nvml_cannot_say_how_the_card_ships_is_judged_as_a_data_centre_card():
    gpu = {"preset": "rtx6000-ada", "faults": {"nvmlDeviceGetDefaultEccMode": "NOT_SUPPORTED"}}
    assert by_id(inventory.run(context(gpu)))["inventory.ecc_mode"].verdict == FAIL


def test_a_card_without_ecc_beside_cards_with_it_is_named_not_judged():
    ecc = by_id(inventory.run(context({"preset": "rtx4090"}, {"preset": H100})))["inventory.ecc_mode"]
    assert ecc.verdict == PASS and ecc.per_gpu == {"0": "no ECC", "1": "on"}
    assert ecc.detail == "GPU 0 has no ECC"
    ecc = by_id(inventory.run(context({"preset": "rtx4090"}, {"preset": "rtx6000-ada"})))["inventory.ecc_mode"]
    assert ecc.verdict == WARN and "turn it on with: sudo nvidia-smi -i 1 -e 1, then reboot" in ecc.detail  # not GPU 0


def test_a_geforce_card_has_no_ecc_or_mig_to_judge():
    ctx = context({"preset": "rtx4090"})
    results = by_id(inventory.run(ctx))
    assert results["inventory.ecc_mode"].verdict == SKIP
    assert results["inventory.mig_mode"].verdict == SKIP
    assert health_after_load(ctx)["health.ecc_uncorrected"].verdict == SKIP


def test_count_and_model_against_the_order():
    ctx = context({"preset": H100}, {"preset": "a100"}, expect_gpus=8, expect_model="H100 80GB HBM3")
    results = by_id(inventory.run(ctx))
    assert results["inventory.gpu_count"].verdict == FAIL and results["inventory.gpu_count"].measured == 2
    assert results["inventory.gpu_model"].verdict == FAIL
    assert "GPU 1 is NVIDIA A100-SXM4-80GB" in results["inventory.gpu_model"].detail


def test_a_host_without_nvml_skips_with_the_reason():
    ctx = context()  # no simulation: this machine's real NVML, which has no driver here
    if ctx.reader.up:
        pytest.skip("this machine has a real NVIDIA driver")
    assert by_id(inventory.run(ctx))["inventory.gpu_count"].verdict == SKIP
    assert "NVML" in by_id(health.run(ctx))["health.gpus"].detail


def test_torch_numbers_the_gpus_as_nvml_does(monkeypatch):
    # per-GPU figures are judged against the NVML state of the same index: torch must count in PCI bus order too
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    context({"preset": H100})
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_docs_name_each_xid_code_under_the_class_validate_and_the_alerts_use():
    """docs/telemetry.md lists XID codes per class and says which ones page: each named code must be in that class of
    dlbench/nvml/xid.py, the one table the exporter, the alert rules and `dlbench validate` use."""
    import re
    from pathlib import Path

    from dlbench.nvml.xid import xid_class

    text = " ".join((Path(__file__).parents[1] / "docs" / "telemetry.md").read_text().split())
    start = text.index("Each XID series carries `xid_class`")
    paragraph = text[start : text.index("###", start)]

    def codes(pattern: str) -> list[int]:
        listed = re.search(pattern, paragraph).group(1)
        return [
            code
            for first, last in re.findall(r"\b(\d+)(?:-(\d+))?\b", listed)
            for code in range(int(first), int(last or first) + 1)
        ]

    for cls in ("critical", "application", "informational"):
        named = codes(rf"`{cls}` \(([^)]*)\)")
        assert named and {code: xid_class(code) for code in named} == dict.fromkeys(named, cls), cls
    never = codes(r"never alert on `application` or `informational` codes \(([^)]*)\)")
    assert never and {xid_class(code) for code in never} <= {"application", "informational"}
    warned = codes(r"`DlbenchGPUXidWarning`: ([^)]*)\)")
    assert warned and {xid_class(code) for code in warned} == {"warning"}
    assert "a `critical` XID during the run is a FAIL" in paragraph


def test_validate_docs_name_only_critical_xids_as_failures():
    import re
    from pathlib import Path

    from dlbench.nvml.xid import xid_class

    row = next(
        line
        for line in (Path(__file__).parents[1] / "docs" / "validate.md").read_text().splitlines()
        if line.startswith("| `health.xid`")
    )
    named = [int(code) for code in re.findall(r"\b(\d+)\b", row.split("|")[3])]
    assert named and {xid_class(code) for code in named} == {"critical"}
