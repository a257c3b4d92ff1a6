"""PCIe errors under load and the NICs' and drives' links, read from a PCI bus laid out as Linux's sysfs shows it
(tests/validate_support.py: AER statistics as drivers/pci/pcie/aer.c prints them, links as pci-sysfs.c does)."""

import pytest

from dlbench.hostspec.reader import RecordedHost
from dlbench.validate import pcie, runner
from dlbench.checks import FAIL, PASS, SKIP, WARN
from validate_support import (
    PCI_CONNECTX7,
    PCI_H100_SXM,
    PCI_INTEL_VTD,
    PCI_NVME,
    aer_stats,
    context,
    link_files,
    pci_bus,
)

GPU, NIC, NVME = PCI_H100_SXM[0].rsplit("/", 1)[1], PCI_CONNECTX7[0].rsplit("/", 1)[1], PCI_NVME[0].rsplit("/", 1)[1]


def _host(tmp_path, nic_width=16, gen="32.0 GT/s PCIe"):
    """An HGX-like bus: one H100, a ConnectX-7 (x16 Gen5) and an NVMe drive (x4 Gen4), all AER-capable and clean."""
    root = pci_bus(
        tmp_path / "host",
        PCI_INTEL_VTD,
        (*PCI_H100_SXM, aer_stats()),
        (*PCI_CONNECTX7, {**aer_stats(), **link_files(nic_width, 16, speed=gen)}),
        (*PCI_NVME, {**aer_stats(), **link_files(4, 4, "16.0 GT/s PCIe", "16.0 GT/s PCIe")}),
    )
    return RecordedHost(root)


def _errors_during_load(tmp_path, address, **counts):
    """What a load that upsets one device leaves behind: its AER files rewritten with the counts since boot."""
    folder = tmp_path / "host/sys/bus/pci/devices" / address
    for name, text in aer_stats(**counts).items():
        (folder / name).write_text(text)


def _checks(ctx):
    return {c.id: c for c in pcie.run(ctx)}


def test_the_bus_lists_gpus_nics_and_nvme_drives_but_not_other_functions(tmp_path):
    found = pcie.functions(_host(tmp_path))
    assert [(f.address, f.kind) for f in found] == [(GPU, "GPU"), (NIC, "NIC"), (NVME, "NVMe")]


def test_a_clean_node_passes_both_checks(tmp_path):
    checks = _checks(context(host=_host(tmp_path)))
    assert checks["link.pcie_aer"].verdict == PASS and checks["link.pcie_aer"].measured == 0
    assert checks["link.pcie_aer"].data["devices"] == {GPU: "GPU", NIC: "NIC", NVME: "NVMe"}
    links = checks["link.pcie_nic_nvme"]
    assert links.verdict == PASS and links.data["links"] == {
        f"NIC {NIC}": "Gen5 x16 of Gen5 x16",
        f"NVMe {NVME}": "Gen4 x4 of Gen4 x4",
    }


def test_uncorrectable_aer_errors_rising_under_load_fail_with_the_counts(tmp_path):
    host = _host(tmp_path)
    ctx = context(host=host)
    _errors_during_load(tmp_path, GPU, correctable=3, nonfatal=2)
    check = _checks(ctx)["link.pcie_aer"]
    assert check.verdict == FAIL and check.measured == 5
    assert f"GPU {GPU}: +3 correctable, +2 nonfatal" in check.detail and "reseat" in check.detail


def test_correctable_errors_warn_and_errors_from_before_the_run_do_not_count(tmp_path):
    root = pci_bus(tmp_path / "host", (*PCI_CONNECTX7, aer_stats(correctable=40, fatal=1)))
    ctx = context(host=RecordedHost(root))
    assert _checks(ctx)["link.pcie_aer"].verdict == PASS  # counts since boot, none during the run
    _errors_during_load(tmp_path, NIC, correctable=47, fatal=1)
    check = _checks(ctx)["link.pcie_aer"]
    assert check.verdict == WARN and check.detail.startswith(f"NIC {NIC}: +7 correctable")


def test_an_x8_nic_in_its_x16_link_fails_with_the_evidence(tmp_path):
    check = _checks(context(host=_host(tmp_path, nic_width=8)))["link.pcie_nic_nvme"]
    assert check.verdict == FAIL and f"NIC {NIC} x8 of x16" in check.detail
    assert check.data["links"][f"NIC {NIC}"] == "Gen5 x8 of Gen5 x16"


def test_a_nic_below_its_generation_warns(tmp_path):
    check = _checks(context(host=_host(tmp_path, gen="16.0 GT/s PCIe")))["link.pcie_nic_nvme"]
    assert check.verdict == WARN and f"NIC {NIC} Gen4 of Gen5" in check.detail


@pytest.mark.parametrize(
    "speed,gen", [("32.0 GT/s PCIe", 5), ("8 GT/s", 3), ("2.5 GT/s PCIe", 1), ("Unknown", None), ("", None)]
)
def test_link_speed_text_to_generation(speed, gen):
    assert pcie.generation(speed) == gen


def test_without_aer_counters_or_links_both_checks_skip(tmp_path):
    checks = _checks(context(host=RecordedHost(pci_bus(tmp_path / "host", PCI_H100_SXM, PCI_CONNECTX7))))
    assert checks["link.pcie_aer"].verdict == SKIP and "AER off" in checks["link.pcie_aer"].detail
    assert checks["link.pcie_nic_nvme"].verdict == SKIP


def test_rising_aer_fails_a_whole_run_with_exit_code_1(monkeypatch, tmp_path):
    host = _host(tmp_path)

    def load(ctx):
        _errors_during_load(tmp_path, NVME, fatal=1)
        return []

    monkeypatch.setattr(runner, "families", lambda ctx: [("compute", load), ("link", pcie.run)])
    report = runner.validate(context(host=host))
    assert [c.id for c in report.checks if c.verdict == FAIL] == ["link.pcie_aer"] and report.exit_code == 1


def _gpus_with_replays(tmp_path, **replays_before):
    """Two simulated H100s (their replay counters scripted as the simulated NVML's "pcie_replay" value) on the bus."""
    gpus = [{"preset": "h100-sxm", "values": {"pcie_replay": replays_before.get(f"gpu{i}", 0)}} for i in range(2)]
    return context(*gpus, host=_host(tmp_path))


def test_gpu_pcie_replays_rising_under_load_warn_and_beyond_dcgms_80_fail(tmp_path):
    ctx = _gpus_with_replays(tmp_path, gpu1=500)  # replays from before the run do not count
    assert _checks(ctx)["link.gpu_pcie_replays"].verdict == PASS
    ctx.reader.nvml.gpus[0].values["pcie_replay"] = 12
    check = _checks(ctx)["link.gpu_pcie_replays"]
    assert check.verdict == WARN and check.per_gpu == {"0": 12, "1": 0} and "GPU 0: +12 replays" in check.detail
    ctx.reader.nvml.gpus[1].values["pcie_replay"] = 500 + 81
    check = _checks(ctx)["link.gpu_pcie_replays"]
    assert check.verdict == FAIL and check.measured == 81 and "DCGM" in check.source and "reseat" in check.detail


def test_gpu_pcie_replays_fail_a_whole_run_with_exit_code_1(monkeypatch, tmp_path):
    ctx = _gpus_with_replays(tmp_path)

    def load(ctx):
        ctx.reader.nvml.gpus[1].values["pcie_replay"] = 200
        return []

    monkeypatch.setattr(runner, "families", lambda ctx: [("compute", load), ("link", pcie.run)])
    report = runner.validate(ctx)
    assert [c.id for c in report.checks if c.verdict == FAIL] == ["link.gpu_pcie_replays"] and report.exit_code == 1
