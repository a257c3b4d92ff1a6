"""Host readings through psutil, in base units, shaped like the GPU readings (one flat dict)."""

from __future__ import annotations

import os

import psutil


class HostReader:
    def __init__(self):
        # cpu_percent(interval=None) measures since the previous call; the first call only sets the baseline
        psutil.cpu_percent(interval=None)

    def read(self) -> dict:
        memory = psutil.virtual_memory()
        reading = {
            "cpu_utilization_ratio": psutil.cpu_percent(interval=None) / 100.0,
            "memory_total_bytes": int(memory.total),
            "memory_available_bytes": int(memory.available),
            "memory_used_bytes": int(memory.total - memory.available),
        }
        try:
            one, five, fifteen = os.getloadavg()
            reading["load_average"] = {"1m": one, "5m": five, "15m": fifteen}
        except OSError:
            pass
        disks = psutil.disk_io_counters()
        if disks is not None:  # None in containers without /proc/diskstats
            reading["disk_read_bytes"], reading["disk_written_bytes"] = int(disks.read_bytes), int(disks.write_bytes)
        nics = psutil.net_io_counters(pernic=True)
        if nics:
            outside = [counters for name, counters in nics.items() if name != "lo"]
            reading["network_received_bytes"] = sum(c.bytes_recv for c in outside)
            reading["network_transmitted_bytes"] = sum(c.bytes_sent for c in outside)
        return reading
