"""NVML readings validation needs beyond the telemetry reader's: persistence, ECC and MIG modes, the link maximum,
retired pages. Read through the same `pynvml` binding the reader uses (`NvmlReader.nvml`), by public pynvml calls.

A reading the GPU does not support is None (consumer cards have no ECC, pre-Ampere GPUs no MIG).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class StaticState:
    persistence_enabled: bool | None = None
    ecc_enabled: bool | None = None  # current mode
    ecc_pending: bool | None = None  # mode after the next reset
    ecc_default: bool | None = None  # the mode the card ships with: on for data-centre cards, off for workstation
    mig_enabled: bool | None = None
    mig_pending: bool | None = None
    pcie_max_generation: int | None = None  # the most the GPU and the slot together can do
    pcie_max_width: int | None = None
    retired_pages: int | None = None  # pre-Ampere page retirement (single- plus double-bit causes)
    retired_pages_pending: bool | None = None
    power_default_limit_watts: float | None = None  # the limit the board ships with (nvidia-smi "Default Power Limit")
    power_enforced_limit_watts: float | None = None  # the limit in force now (after `nvidia-smi -pl`)
    vbios_version: str | None = None
    fabric_state: int | None = None  # nvmlGpuFabricState_t: 1 not started, 2 in progress, 3 completed
    fabric_status: int | None = None  # nvmlReturn_t of the GPU's registration with Fabric Manager (0: success)


@dataclass
class NvLinks:
    """One GPU's NVLink links as NVML reports them through field values, with the link as scope id
    (NVML_FI_DEV_NVLINK_LINK_COUNT, then per link NVML_FI_DEV_NVLINK_GET_STATE and the data-link error counters
    NVML_FI_DEV_NVLINK_ERROR_DL_CRC / _REPLAY / _RECOVERY, cumulative since the driver loaded)."""

    count: int
    state: dict[int, int]  # link -> nvmlNvlinkState (0 inactive, 1 active, 2 sleep, 3 active without traffic)
    errors: dict[str, dict[int, int]]  # "crc" / "replay" / "recovery" -> link -> count


NVLINK_ERROR_FIELDS = {
    "crc": "NVML_FI_DEV_NVLINK_ERROR_DL_CRC",
    "replay": "NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY",
    "recovery": "NVML_FI_DEV_NVLINK_ERROR_DL_RECOVERY",
}


def _fields(nvml: Any, handle, ids: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """(field id, scope) -> value for the fields NVML answers; one NOT_SUPPORTED field leaves only itself out."""
    try:
        values = nvml.nvmlDeviceGetFieldValues(handle, ids)
    except (AttributeError, nvml.NVMLError):
        return {}
    return {(int(v.fieldId), int(v.scopeId)): int(v.value.ullVal) for v in values if v.nvmlReturn == nvml.NVML_SUCCESS}


def read_nvlinks(nvml: Any, index: int) -> NvLinks | None:
    """The GPU's NVLink links, or None when it has none NVML can report (PCIe cards, consumer GPUs)."""
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError:
        return None
    count = _fields(nvml, handle, [(nvml.NVML_FI_DEV_NVLINK_LINK_COUNT, 0)]).get(
        (nvml.NVML_FI_DEV_NVLINK_LINK_COUNT, 0)
    )
    if not count:
        return None
    ids = {
        "state": nvml.NVML_FI_DEV_NVLINK_GET_STATE,
        **{name: getattr(nvml, field) for name, field in NVLINK_ERROR_FIELDS.items()},
    }
    values = _fields(nvml, handle, [(field, link) for field in ids.values() for link in range(count)])
    per_link = {
        name: {link: values[(field, link)] for link in range(count) if (field, link) in values}
        for name, field in ids.items()
    }
    return NvLinks(count, per_link.pop("state"), per_link)


def read_c2c_links(nvml: Any, index: int) -> int | None:
    """Active NVLink-C2C links between the GPU and its CPU (Grace Hopper, Grace Blackwell), read as NCCL reads them
    (NVIDIA/nccl src/graph/xml.cc, for compute capability 9.0 and newer: NVML_FI_DEV_C2C_LINK_COUNT, then
    NVML_FI_DEV_C2C_LINK_GET_STATUS per link with the link as scope, 1 = active); None where NVML does not answer the
    count (an older driver or binding, or a GPU without the field)."""
    if not hasattr(nvml, "NVML_FI_DEV_C2C_LINK_COUNT"):
        return None
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError:
        return None
    count = _fields(nvml, handle, [(nvml.NVML_FI_DEV_C2C_LINK_COUNT, 0)]).get((nvml.NVML_FI_DEV_C2C_LINK_COUNT, 0))
    if count is None or not count:
        return count
    status = _fields(nvml, handle, [(nvml.NVML_FI_DEV_C2C_LINK_GET_STATUS, link) for link in range(count)])
    return sum(1 for value in status.values() if value == 1)


def _value(nvml: Any, call: str, *args):
    try:
        return getattr(nvml, call)(*args)
    except (AttributeError, nvml.NVMLError):  # AttributeError: a binding too old to have the call
        return None


def read_static(nvml: Any, index: int) -> StaticState:
    state = StaticState()
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError:
        return state
    persistence = _value(nvml, "nvmlDeviceGetPersistenceMode", handle)
    if persistence is not None:
        state.persistence_enabled = persistence == nvml.NVML_FEATURE_ENABLED
    ecc = _value(nvml, "nvmlDeviceGetEccMode", handle)
    if ecc is not None:
        state.ecc_enabled, state.ecc_pending = (mode == nvml.NVML_FEATURE_ENABLED for mode in ecc)
    default_ecc = _value(nvml, "nvmlDeviceGetDefaultEccMode", handle)  # pynvml answers a one-element list
    if default_ecc is not None:
        state.ecc_default = default_ecc[0] == nvml.NVML_FEATURE_ENABLED
    mig = _value(nvml, "nvmlDeviceGetMigMode", handle)
    if mig is not None:
        state.mig_enabled, state.mig_pending = (mode == nvml.NVML_DEVICE_MIG_ENABLE for mode in mig)
    state.pcie_max_generation = _value(nvml, "nvmlDeviceGetMaxPcieLinkGeneration", handle)
    state.pcie_max_width = _value(nvml, "nvmlDeviceGetMaxPcieLinkWidth", handle)
    pages = [
        _value(nvml, "nvmlDeviceGetRetiredPages", handle, cause)
        for cause in (
            nvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS,
            nvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR,
        )
    ]
    if all(p is not None for p in pages):
        state.retired_pages = sum(len(p) for p in pages)
    pending = _value(nvml, "nvmlDeviceGetRetiredPagesPendingStatus", handle)
    if pending is not None:
        state.retired_pages_pending = pending == nvml.NVML_FEATURE_ENABLED
    for attribute, call in (
        ("power_default_limit_watts", "nvmlDeviceGetPowerManagementDefaultLimit"),
        ("power_enforced_limit_watts", "nvmlDeviceGetEnforcedPowerLimit"),
    ):
        milliwatts = _value(nvml, call, handle)
        if milliwatts is not None:
            setattr(state, attribute, milliwatts / 1000.0)
    vbios = _value(nvml, "nvmlDeviceGetVbiosVersion", handle)
    state.vbios_version = vbios.decode() if isinstance(vbios, bytes) else vbios
    _read_fabric(nvml, handle, state)
    return state


def _read_fabric(nvml: Any, handle, state: StaticState) -> None:
    """The GPU's registration with the NVSwitch fabric (nvmlDeviceGetGpuFabricInfo, Hopper and newer: NVML API
    reference; NOT_SUPPORTED on GPUs without an NVSwitch fabric and on older generations)."""
    if not hasattr(nvml, "c_nvmlGpuFabricInfo_t"):
        return
    import ctypes

    info = nvml.c_nvmlGpuFabricInfo_t()
    if _value(nvml, "nvmlDeviceGetGpuFabricInfo", handle, ctypes.byref(info)) is None:
        return
    if info.state != nvml.NVML_GPU_FABRIC_STATE_NOT_SUPPORTED:
        state.fabric_state, state.fabric_status = int(info.state), int(info.status)
