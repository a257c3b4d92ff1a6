"""PCIe from the kernel's side: AER error counters of the GPUs, NICs and NVMe drives as deltas across the load, and
the link width and generation of the NICs and NVMe drives (the GPUs' links are judged under load through NVML, in
inventory.pcie_link: an idle GPU trains its link down to save power, so sysfs at rest would accuse a healthy one).

What the kernel shows (Linux Documentation/ABI/testing/sysfs-bus-pci-devices-aer-stats, drivers/pci/pcie/aer.c,
aer_stats_dev_attr): under /sys/bus/pci/devices/ADDRESS, on every AER-capable function, `aer_dev_correctable`,
`aer_dev_nonfatal` and `aer_dev_fatal`, one "NAME COUNT" line per error type and a last line "TOTAL_ERR_COR N",
"TOTAL_ERR_NONFATAL N" or "TOTAL_ERR_FATAL N": counts since boot. The link (drivers/pci/pci-sysfs.c):
`current_link_width`/`max_link_width` print the lane count ("16"), `current_link_speed`/`max_link_speed` the rate as
pci_speed_string() names it ("32.0 GT/s PCIe"; kernels before 4.20 printed "8 GT/s"); `max_*` is what the device can
do (its Link Capabilities), `current_*` what the link trained to.

The verdicts: an uncorrectable error (nonfatal or fatal) during the run FAILs: the transaction was lost and the
driver had to recover, or could not. Correctable errors are the link replaying a bad packet; DCGM's PCIe test
tolerates a few replays (pcie plugin, max_pcie_replays), so a rise WARNs with the counts. A NIC or NVMe drive on
fewer lanes than it has FAILs (an x16 NIC trained x8 moves half its bandwidth, for good: it does not retrain under
load); a lower generation WARNs (the slot may be older than the card, which the spec decides, not this check).

The GPUs' side of their links: NVML's PCIe replay counter (nvmlDeviceGetPcieReplayCounter, the same count
nvidia-smi -q shows as "Replays Since Reset"), read before any load and after the last, judged as DCGM's PCIe test
judges it: more than 80 replays on one GPU FAIL, fewer WARN.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbench.hostspec import facts
from dlbench.hostspec.reader import HostReader, Unanswered
from dlbench.checks import FAIL, PASS, WARN, CheckResult, skip

PCI_DEVICES = facts.PCI_DEVICES
# PCI-SIG class codes (PCI Code and ID Assignment Specification): 0x0200 Ethernet, 0x0207 InfiniBand, 0x010802 NVM
# Express (mass storage, non-volatile memory, NVMe programming interface); GPUs as facts.GPU_CLASS_PREFIXES.
NIC_CLASS_PREFIXES = ("0x0200", "0x0207")
NVME_CLASS = "0x010802"
AER_FILES = {"correctable": "aer_dev_correctable", "nonfatal": "aer_dev_nonfatal", "fatal": "aer_dev_fatal"}
AER_TOTALS = {"correctable": "TOTAL_ERR_COR", "nonfatal": "TOTAL_ERR_NONFATAL", "fatal": "TOTAL_ERR_FATAL"}
# pci_speed_string() rates to the PCIe generation that introduced them (PCI-SIG base specifications 1.0 to 6.0)
GENERATION_OF_RATE = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}
AER_SOURCE = (
    "Linux AER statistics (sysfs aer_dev_correctable/nonfatal/fatal, Documentation/ABI/testing/"
    "sysfs-bus-pci-devices-aer-stats) before and after the load; DCGM PCIe test: replays tolerated, "
    "uncorrectable errors not"
)
REPLAY_SOURCE = (
    "NVML nvmlDeviceGetPcieReplayCounter before and after the load; DCGM PCIe test: more than 80 replays per GPU "
    "fail (NVIDIA/DCGM nvvs/plugin_src/pcie, max_pcie_replays)"
)
MAX_REPLAYS = 80
LINK_SOURCE = "Linux sysfs current_link_width/speed against max_link_width/speed (drivers/pci/pci-sysfs.c)"


@dataclass(frozen=True)
class Function:
    address: str
    kind: str  # "GPU", "NIC" or "NVMe"


def _kind(vendor: str, pci_class: str) -> str | None:
    if vendor == facts.NVIDIA_VENDOR and pci_class.startswith(facts.GPU_CLASS_PREFIXES):
        return "GPU"
    if pci_class.startswith(NIC_CLASS_PREFIXES):
        return "NIC"
    if pci_class == NVME_CLASS:
        return "NVMe"
    return None


def functions(host: HostReader) -> list[Function]:
    """The GPUs, NICs and NVMe drives on the PCI bus, in bus order (none where there is no /sys to read)."""
    return [
        Function(address, kind)
        for address, vendor, pci_class in facts.pci_functions(host)
        if (kind := _kind(vendor, pci_class))
    ]


def read_aer(host: HostReader, address: str) -> dict[str, int] | None:
    """The three AER totals of one function, or None where the kernel keeps none (no AER capability, AER off)."""
    totals = {}
    for severity, name in AER_FILES.items():
        try:
            text = host.read(f"{PCI_DEVICES}/{address}/{name}")
        except Unanswered:
            return None
        for line in text.splitlines():
            key, _, count = line.partition(" ")
            if key == AER_TOTALS[severity] and count.strip().isdigit():
                totals[severity] = int(count)
        if severity not in totals:
            return None
    return totals


def read_all_aer(host: HostReader, found: list[Function]) -> dict[str, dict[str, int]]:
    counts = {f.address: read_aer(host, f.address) for f in found}
    return {address: totals for address, totals in counts.items() if totals is not None}


def generation(speed: str) -> int | None:
    """ "32.0 GT/s PCIe" (or the older "8 GT/s") -> 5; None for "Unknown" or text this does not know."""
    try:
        return GENERATION_OF_RATE.get(float(speed.split()[0]))
    except (ValueError, IndexError):
        return None


def read_link(host: HostReader, address: str) -> tuple[int, int, int, int] | None:
    """(current generation, current width, maximum generation, maximum width), None where sysfs cannot tell."""
    try:
        values = [
            host.read(f"{PCI_DEVICES}/{address}/{name}").strip()
            for name in ("current_link_speed", "current_link_width", "max_link_speed", "max_link_width")
        ]
    except Unanswered:
        return None
    gen, max_gen = generation(values[0]), generation(values[2])
    if gen is None or max_gen is None or not values[1].isdigit() or not values[3].isdigit():
        return None
    return gen, int(values[1]), max_gen, int(values[3])


def aer_errors(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], found: list[Function]
) -> CheckResult:
    check_id, title = "link.pcie_aer", "No PCIe AER errors on the GPUs, NICs and NVMe drives during the run"
    kinds = {f.address: f.kind for f in found}
    watched = sorted(set(before) & set(after))
    if not watched:
        return skip(
            check_id,
            title,
            "no AER counters in sysfs (kernel older than 4.19, AER off, or no PCIe device of interest)"
            if found
            else "no GPU, NIC or NVMe drive on the PCI bus",
        )
    rises = {}
    for address in watched:
        delta = {s: after[address][s] - before[address][s] for s in AER_FILES}
        if any(delta.values()):
            rises[address] = delta
    uncorrectable = [a for a, d in rises.items() if d["nonfatal"] or d["fatal"]]
    verdict = FAIL if uncorrectable else WARN if rises else PASS
    detail = "; ".join(
        f"{kinds[a]} {a}: " + ", ".join(f"+{n} {s}" for s, n in d.items() if n) for a, d in rises.items()
    )
    if uncorrectable:
        detail += (
            ": uncorrectable errors under load: reseat the device, check the riser or cable, and look for "
            "AER lines in dmesg"
        )
    elif rises:
        detail += ": the link replayed packets under load (signal integrity): watch it, reseat if it keeps rising"
    return CheckResult(
        check_id,
        title,
        verdict,
        sum(sum(d.values()) for d in rises.values()),
        "errors",
        expected="no uncorrectable AER error during the run; correctable ones warn",
        source=AER_SOURCE,
        detail=detail,
        data={"devices": {a: kinds[a] for a in watched}, "rises": rises},
    )


def links(host: HostReader, found: list[Function]) -> CheckResult:
    check_id, title = "link.pcie_nic_nvme", "NICs and NVMe drives at their maximum PCIe width and generation"
    per_device, narrow, slow = {}, [], []
    for function in found:
        if function.kind == "GPU":
            continue
        link = read_link(host, function.address)
        if link is None:
            continue
        gen, width, max_gen, max_width = link
        name = f"{function.kind} {function.address}"
        per_device[name] = f"Gen{gen} x{width} of Gen{max_gen} x{max_width}"
        if width < max_width:
            narrow.append(f"{name} x{width} of x{max_width}")
        elif gen < max_gen:
            slow.append(f"{name} Gen{gen} of Gen{max_gen}")
    if not per_device:
        return skip(check_id, title, "no NIC or NVMe drive with a readable PCIe link in sysfs")
    verdict = FAIL if narrow else WARN if slow else PASS
    detail = ""
    if narrow:
        detail = (
            f"fewer lanes than the device has: {', '.join(narrow)}: move it to a slot wired for its full "
            "width or reseat it"
        )
    if slow:
        detail += ("; " if detail else "") + (
            f"below the device's generation: {', '.join(slow)}: check the slot's "
            "generation and the BIOS link-speed setting"
        )
    return CheckResult(
        check_id,
        title,
        verdict,
        f"{len(per_device) - len(narrow) - len(slow)}/{len(per_device)} at maximum",
        expected="current link = maximum link (width and generation)",
        source=LINK_SOURCE,
        detail=detail,
        data={"links": per_device},
    )


def gpu_replays(before: dict[int, dict], after: dict[int, dict]) -> CheckResult:
    """The GPUs' own count of PCIe replays (the link layer resending a packet the other end NAKed or never
    acknowledged), as NVML keeps it, grown across the load: DCGM's PCIe test fails a GPU above 80."""
    check_id, title = "link.gpu_pcie_replays", "GPU PCIe replays during the run within DCGM's limit"
    rises = {
        index: after[index]["pcie_replay_errors"] - before[index]["pcie_replay_errors"]
        for index in sorted(set(before) & set(after))
        if "pcie_replay_errors" in before[index] and "pcie_replay_errors" in after[index]
    }
    if not rises:
        return skip(check_id, title, "NVML reports no PCIe replay counter (no GPU, or not supported)")
    over = {i: n for i, n in rises.items() if n > MAX_REPLAYS}
    rising = {i: n for i, n in rises.items() if n}
    detail = "; ".join(f"GPU {i}: +{n} replays" for i, n in rising.items())
    if over:
        detail += ": more replays than DCGM allows: reseat the GPU or its riser, check the slot, and look for AER lines"
    elif rising:
        detail += ": the link resent packets under load (signal integrity): watch it, reseat if it keeps rising"
    return CheckResult(
        check_id,
        title,
        FAIL if over else WARN if rising else PASS,
        max(rises.values()),
        "replays",
        expected=f"no replay during the run; more than {MAX_REPLAYS} on one GPU fail",
        source=REPLAY_SOURCE,
        detail=detail,
        per_gpu={str(i): n for i, n in rises.items()},
    )


def run(ctx) -> list[CheckResult]:
    """After the load: the AER deltas since the context read them at the start, the GPUs' PCIe replays since NVML's
    baseline, and the NICs' and drives' links."""
    after = read_all_aer(ctx.host, ctx.pci_functions)
    results = [aer_errors(ctx.aer_before, after, ctx.pci_functions)]
    if ctx.reader.up:
        results.append(gpu_replays(ctx.baseline, ctx.reader.read_all()))
    return results + [links(ctx.host, ctx.pci_functions)]
