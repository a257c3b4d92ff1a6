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
    pages = [_value(nvml, "nvmlDeviceGetRetiredPages", handle, cause)
             for cause in (nvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS,
                           nvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR)]
    if all(p is not None for p in pages):
        state.retired_pages = sum(len(p) for p in pages)
    pending = _value(nvml, "nvmlDeviceGetRetiredPagesPendingStatus", handle)
    if pending is not None:
        state.retired_pages_pending = pending == nvml.NVML_FEATURE_ENABLED
    return state


def extend_simulation(nvml: Any) -> Any:
    """When `nvml` is the test-only simulated NVML (DLBENCH_FAKE_NVML), give it the calls above as well.

    The telemetry simulation covers what the exporter reads; validation reads a few more. Rather than change that
    module, its instance is switched to the subclass in `dlbench.validate.fake_nvml_extra`, which adds them.
    """
    from dlbench.telemetry import fake_nvml

    if isinstance(nvml, fake_nvml.FakeNvml) and not getattr(nvml, "validation_calls", False):
        from dlbench.validate.fake_nvml_extra import ValidationFakeNvml

        nvml.__class__ = ValidationFakeNvml
    return nvml
