"""NVML field values read in one batch: many counters for one GPU in a single nvmlDeviceGetFieldValues call.

A field is (field id, scope id); the scope is the NVLink link for per-link fields and 0 otherwise. Each value carries
its own return code: a field the GPU lacks answers NVML_ERROR_NOT_SUPPORTED on its own, and is then left out of the
batch for UNSUPPORTED_RETRY_SECONDS (calls.py) as any unsupported call is (NVML API reference, nvmlDeviceGetFieldValues and
nvmlFieldValue_t; https://docs.nvidia.com/deploy/nvml-api/). Field ids are taken from the installed binding by name,
never as numbers: NVML has renumbered some between header versions.
"""

from __future__ import annotations

import time
from typing import Any

from dlbench.nvml import calls
from dlbench.nvml.calls import GpuCalls

Field = tuple[int, int]  # (field id, scope id)


def field_ids(nvml: Any, names: dict[str, str]) -> dict[str, int]:
    """label -> field id for each NVML_FI_* name the binding knows (an older binding simply has fewer)."""
    return {label: getattr(nvml, name) for label, name in names.items() if hasattr(nvml, name)}


def _members(nvml: Any) -> dict[int, str]:
    """valueType -> the c_nvmlFieldValue_t union member holding the number."""
    return {
        nvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
        nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
        nvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
        nvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    }


def _cache_key(field: Field) -> str:
    field_id, scope = field
    return f"field:{field_id}" if not scope else f"field:{field_id}@{scope}"


def read_fields(reader: GpuCalls, index: int, wanted: list[Field]) -> dict[Field, float]:
    """Values of the supported fields among `wanted` for GPU `index` (an NvmlReader), in one NVML call."""
    nvml, now = reader.nvml, time.monotonic()
    unsupported = reader.unsupported
    batch = []
    for field in wanted:
        key = (index, _cache_key(field))
        retry_at = unsupported.get(key)
        if retry_at is None:
            batch.append(field)
        elif now >= retry_at:
            del unsupported[key]
            batch.append(field)
    if not batch:
        return {}
    values = reader.call(index, "nvmlDeviceGetFieldValues", [f if f[1] else f[0] for f in batch])
    if values is None:
        return {}
    found: dict[Field, float] = {}
    # looked up once per batch: an NVLink batch holds a hundred values
    members, success, not_supported = _members(nvml), nvml.NVML_SUCCESS, nvml.NVML_ERROR_NOT_SUPPORTED
    for field, value in zip(batch, values):
        code = value.nvmlReturn
        if code == success:
            found[field] = getattr(value.value, members.get(value.valueType, "uiVal"))
        elif code == not_supported:
            unsupported[(index, _cache_key(field))] = now + calls.UNSUPPORTED_RETRY_SECONDS
        else:
            reader.count_error("nvmlDeviceGetFieldValues")
    return found


def once_per_start(reader: GpuCalls, index: int, part: str, compute) -> dict:
    """`compute()` for GPU `index`, kept until NVML is initialised again (board properties: limits, max link)."""
    key = (index, part)  # beside the reader's own per-index entries; the reader clears them all on start
    if key not in reader.static:
        reader.static[key] = compute()
    return reader.static[key]
