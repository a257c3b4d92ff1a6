"""PCIe and NVLink: traffic, link state against what the link can do, and link error counters.

Adds keys to one GPU's reading (see NvmlReader._read_into). Names and signatures are nvidia-ml-py's (pynvml.py 13.x):
nvmlDeviceGetPcieThroughput(device, NVML_PCIE_UTIL_TX_BYTES | NVML_PCIE_UTIL_RX_BYTES) in KB/s over a 20 ms window
the driver samples, nvmlDeviceGetMaxPcieLinkGeneration / nvmlDeviceGetMaxPcieLinkWidth (the best the GPU *and* the
slot allow, so a Gen4 slot is not reported as a degraded Gen5 GPU), and NVML field values with the NVLink link as
scope id: NVML_FI_DEV_NVLINK_GET_STATE (nvmlNvlinkState: 0 inactive, 1 active, 2 sleep, 3 active with traffic
disabled), NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX/RX ("NVLink TX/RX Data throughput in KiB", cumulative) and
NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY/RECOVERY/CRC.
"""

from __future__ import annotations

import time

from dlbench.nvml.calls import GpuCalls

from dlbench.nvml.fields import field_ids, once_per_start, read_fields

PCIE_BYTE_FIELDS = {
    "pcie_transmitted_bytes": "NVML_FI_DEV_PCIE_COUNT_TX_BYTES",
    "pcie_received_bytes": "NVML_FI_DEV_PCIE_COUNT_RX_BYTES",
}
# reading key of the per-link dict (link -> value) and of its per-GPU total
NVLINK_FIELDS = {
    "nvlink_state": "NVML_FI_DEV_NVLINK_GET_STATE",
    "nvlink_transmitted_bytes": "NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX",
    "nvlink_received_bytes": "NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX",
    "nvlink_replay_errors": "NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY",
    "nvlink_recovery_errors": "NVML_FI_DEV_NVLINK_ERROR_DL_RECOVERY",
    "nvlink_crc_errors": "NVML_FI_DEV_NVLINK_ERROR_DL_CRC",
}
NVLINK_STATE_ACTIVE = 1  # nvmlNvlinkState NVML_NVLINK_STATE_ACTIVE
# NVML_NVLINK_STATE_INACTIVE: the link is down. SLEEP (2, a power-saving state) and ACTIVE_TRAFFIC_DISABLED (3) are not
NVLINK_STATE_INACTIVE = 0
NVLINK_INTERVAL_SECONDS = 5.0
KIB = 1024  # NVML reports PCIe throughput in KB/s and NVLink data in KiB; both taken as 1024 bytes


def read_interconnect(reader: GpuCalls, index: int, r: dict) -> None:
    nvml, call = reader.nvml, reader.call
    static = once_per_start(reader, index, "interconnect", lambda: _link_limits(reader, index))
    r.update(static)
    throughput = {}
    for direction, counter in (("tx", "NVML_PCIE_UTIL_TX_BYTES"), ("rx", "NVML_PCIE_UTIL_RX_BYTES")):
        kilobytes = call(index, "nvmlDeviceGetPcieThroughput", getattr(nvml, counter), variant="_" + direction)
        if kilobytes is not None:
            throughput[direction] = kilobytes * KIB
    if throughput:
        r["pcie_throughput_bytes_per_second"] = throughput
    pcie = field_ids(nvml, PCIE_BYTE_FIELDS)
    values = read_fields(reader, index, [(f, 0) for f in pcie.values()]) if pcie else {}
    for key, f in pcie.items():
        if (f, 0) in values:
            r[key] = int(values[(f, 0)])
    r.update(_nvlinks(reader, index, static.get("nvlink_links", 0)))


def _nvlinks(reader: GpuCalls, index: int, links: int) -> dict:
    """NVLink readings, read at most every NVLINK_INTERVAL_SECONDS and repeated from the last read between.

    Six fields for each of up to 18 links is the largest batch of a sample; counters read every few seconds still
    give exact rate()s, and a link going down shows within NVLINK_INTERVAL_SECONDS. Each field is kept per link
    ("nvlink_link_" keys, link -> value, served only with --nvlink-per-link) and as the GPU's total over its links
    (counters summed, links counted by state), which is what is served by default.
    """
    if not links:
        return {}
    cache = reader.static.setdefault((index, "nvlink_last"), {"at": None, "reading": {}})
    now = time.monotonic()
    if cache["at"] is not None and now - cache["at"] < NVLINK_INTERVAL_SECONDS:
        return cache["reading"]
    nvlink = field_ids(reader.nvml, NVLINK_FIELDS)
    values = read_fields(reader, index, [(f, link) for f in nvlink.values() for link in range(links)])
    reading = {}
    for key, f in nvlink.items():
        per_link = {str(link): values[(f, link)] for link in range(links) if (f, link) in values}
        if per_link:
            scale = KIB if key.endswith("_bytes") else 1
            per_link = {link: int(value) * scale for link, value in per_link.items()}
            reading[key.replace("nvlink_", "nvlink_link_", 1)] = per_link
            if key == "nvlink_state":
                reading["nvlink_links_active"] = sum(state == NVLINK_STATE_ACTIVE for state in per_link.values())
                reading["nvlink_links_inactive"] = sum(state == NVLINK_STATE_INACTIVE for state in per_link.values())
            else:
                reading[key] = gpu_total(reader.counter_totals.setdefault((index, key), LinkTotal()), per_link)
    cache["at"], cache["reading"] = now, reading
    return reading


class LinkTotal:
    """A GPU's counter total over its links that only goes up: the sum of each link's increases.

    Summing the links' raw counters would make one link's reset (a retrain, `nvidia-smi nvlink -r`) lower the total,
    which Prometheus's rate() reads as a reset of the whole counter: a spike of the total's full value. A link whose
    counter went down is taken to have started again from 0. Kept by the reader across NVML restarts, so that a
    driver hiccup does not drop the total back to the raw sum either.
    """

    def __init__(self):
        self.last: dict[str, int] = {}
        self.total: int | None = None


def gpu_total(state: LinkTotal, per_link: dict[str, int]) -> int:
    if state.total is None:
        state.total = sum(per_link.values())
    else:
        for link, value in per_link.items():
            before = state.last.get(link)
            state.total += value if before is None or value < before else value - before
    state.last.update(per_link)  # a link missing from this read keeps its last value
    return state.total


def _link_limits(reader: GpuCalls, index: int) -> dict:
    """What the links can do at best: a property of the board and slot, read once per NVML initialisation."""
    nvml, call, limits = reader.nvml, reader.call, {}
    generation = call(index, "nvmlDeviceGetMaxPcieLinkGeneration")
    if generation is not None:
        limits["pcie_link_max_generation"] = int(generation)
    width = call(index, "nvmlDeviceGetMaxPcieLinkWidth")
    if width is not None:
        limits["pcie_link_max_width"] = int(width)
    if hasattr(nvml, "NVML_FI_DEV_NVLINK_LINK_COUNT"):
        count = read_fields(reader, index, [(nvml.NVML_FI_DEV_NVLINK_LINK_COUNT, 0)])
        links = int(count.get((nvml.NVML_FI_DEV_NVLINK_LINK_COUNT, 0), 0))
        if links:  # GPUs without NVLink get no link count, as no other NVLink series
            limits["nvlink_links"] = min(links, getattr(nvml, "NVML_NVLINK_MAX_LINKS", links))
    return limits
