"""What the metric families (fields, gpm, health, interconnect, mig, processes) may use of the NVML reader.

The families read one part of a GPU each; the reader (reader.py) owns the NVML session, the per-GPU threads and the
error model. They meet at this interface, typed, so that a family depends on these few names rather than on the
reader's internals, and so that this module, not the reader, is what the families import: no cycle.
"""

from __future__ import annotations

from typing import Any, Protocol

# a call NVML answered NOT_SUPPORTED (or a function the driver lacks) is not made again for that GPU for this long:
# MIG mode or a driver update can make it supported
UNSUPPORTED_RETRY_SECONDS = 300.0


class GpuCalls(Protocol):
    nvml: Any  # the pynvml binding (or the simulated one): constants, structs, functions not tied to one GPU
    cuda_driver_version: str  # "12.4"; "" when NVML does not say
    handles: dict[int, Any]  # GPU index -> NVML device handle
    # (index, call) -> monotonic time to try again; a family that batches calls (field values) keeps its entries here
    unsupported: dict[tuple[int, str], float]
    # readings that cannot change while the driver is loaded, keyed by index or (index, part); cleared on each start
    static: dict[Any, Any]
    counter_totals: dict  # counters kept across NVML restarts (interconnect.LinkTotal)

    def call(self, index: int, call: str, *args: Any, variant: str = "") -> Any:
        """One NVML call for GPU `index`: its value, or None when unsupported (cached) or failed (counted)."""
        ...

    def count_error(self, call: str) -> None:
        """Count a failure of `call` the family saw itself (a field value's own return code)."""
        ...
