"""Helpers for the `dlbench validate` tests: a simulated NVML in-process, a Context over it, and a PCI bus in sysfs
layout."""

from __future__ import annotations

import os

from dlbench.nvml import simulated
from dlbench.validate.context import Context, Options


def simulated_nvml(*gpus: dict):
    """A simulated NVML (dlbench/nvml/simulated.py, with the calls validate reads once per start) with one GPU per dict:
    {"preset": "h100-sxm", "values": {...}, "faults": {...}} as in a scenario file."""
    return simulated.SimulatedNvmlWithStatic(
        [
            simulated.SimulatedGpu(i, g["preset"], dict(g.get("values", {})), dict(g.get("faults", {})))
            for i, g in enumerate(gpus)
        ]
    )


def context(*gpus: dict, host=None, **options) -> Context:
    """A Context over simulated GPUs and, where `host` is given (a RecordedHost over pci_bus), that PCI bus."""
    options.setdefault("cpu", True)
    options.setdefault("interval_seconds", 0.05)
    return Context(Options(**options), nvml=simulated_nvml(*gpus) if gpus else None, host=host)


# PCI functions as sysfs shows them (/sys/bus/pci/devices/ADDRESS -> ../../../devices/pciDOMAIN:BUS/.../ADDRESS,
# with `vendor`, `device` and `class` files printed "0x%04x\n", "0x%04x\n" and "0x%06x\n" by Linux's
# drivers/pci/pci-sysfs.c, pci_config_attr).
# Ids from pci.ids (https://pci-ids.ucw.cz): 10de:2330 GH100 [H100 SXM5 80GB] (3D controller, 0x030200) and
# 10de:22a3 GH100 [H100 NVSwitch] (bridge, 0x068000) at their HGX H100 baseboard slots (tests/ansible/pci_bus.py; the parent bridges are illustrative);
# 8086:09a2 Ice Lake Memory Map/VT-d (system peripheral, 0x088000), a function every Xeon host has.
PCI_H100_SXM = ("pci0000:17/0000:17:01.0/0000:18:00.0", "0x10de", "0x2330", "0x030200")
PCI_H100_NVSWITCH = ("pci0000:05/0000:05:01.0/0000:07:00.0", "0x10de", "0x22a3", "0x068000")
PCI_INTEL_VTD = ("pci0000:00/0000:00:05.0", "0x8086", "0x09a2", "0x088000")
# 15b3:1021 MT2910 Family [ConnectX-7] as InfiniBand (0x020700) and 144d:a80a Samsung NVMe SSD Controller
# PM9A1/PM9A3/980PRO (NVM Express, 0x010802), slots illustrative.
PCI_CONNECTX7 = ("pci0000:17/0000:17:02.0/0000:19:00.0", "0x15b3", "0x1021", "0x020700")
PCI_NVME = ("pci0000:80/0000:80:01.1/0000:81:00.0", "0x144d", "0xa80a", "0x010802")


def aer_stats(correctable=0, nonfatal=0, fatal=0) -> dict[str, str]:
    """The AER statistics files as Linux prints them (drivers/pci/pcie/aer.c, aer_stats_dev_attr: one "NAME COUNT"
    line per error type of aer_correctable_error_string / aer_uncorrectable_error_string, then the total; the
    counts here all sit on the first type)."""
    correctable_names = ["RxErr", "BadTLP", "BadDLLP", "Rollover", "Timeout", "NonFatalErr", "CorrIntErr", "HeaderOF"]
    uncorrectable_names = [
        "Undefined",
        "DLP",
        "SDES",
        "TLP",
        "FCP",
        "CmpltTO",
        "CmpltAbrt",
        "UnxCmplt",
        "RxOF",
        "MalfTLP",
        "ECRC",
        "UnsupReq",
        "ACSViol",
        "UncorrIntErr",
        "BlockedTLP",
        "AtomicOpBlocked",
        "TLPBlockedErr",
        "PoisonTLPBlocked",
    ]

    def lines(names, count, total):
        return "".join(f"{name} {count if i == 0 else 0}\n" for i, name in enumerate(names)) + f"{total} {count}\n"

    return {
        "aer_dev_correctable": lines(correctable_names, correctable, "TOTAL_ERR_COR"),
        "aer_dev_nonfatal": lines(uncorrectable_names, nonfatal, "TOTAL_ERR_NONFATAL"),
        "aer_dev_fatal": lines(uncorrectable_names, fatal, "TOTAL_ERR_FATAL"),
    }


def link_files(width: int, max_width: int, speed="32.0 GT/s PCIe", max_speed="32.0 GT/s PCIe") -> dict[str, str]:
    """The link attributes as drivers/pci/pci-sysfs.c prints them: the width a number, the speed
    pci_speed_string()'s text."""
    return {
        "current_link_width": f"{width}\n",
        "max_link_width": f"{max_width}\n",
        "current_link_speed": f"{speed}\n",
        "max_link_speed": f"{max_speed}\n",
    }


def pci_bus(root, *functions) -> str:
    """A host root whose /sys/bus/pci/devices lists FUNCTIONS ((path, vendor, device, class[, {attribute: text}])),
    laid out as the kernel lays them out, for DLBENCH_RECORDED_HOST (dlbench/hostspec/reader.py): a run then sees
    this bus, not the machine's own."""
    bus = root / "sys/bus/pci/devices"
    bus.mkdir(parents=True, exist_ok=True)
    for path, vendor, device, pci_class, *more in functions:
        folder = root / "sys/devices" / path
        folder.mkdir(parents=True)
        for name, value in (("vendor", vendor), ("device", device), ("class", pci_class)):
            (folder / name).write_text(value + "\n")
        for name, text in (more[0] if more else {}).items():  # further attributes: AER counters, the link
            (folder / name).write_text(text)
        (bus / folder.name).symlink_to(os.path.relpath(folder, bus))
    return str(root)
