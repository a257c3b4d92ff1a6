"""TEST-ONLY: the NVML calls `dlbench validate` reads on top of those dlbench/nvml/simulated.py simulates.

Scripted through the same scenario "values" as the telemetry simulation (see that module), with these keys:
  persistence (1/0), ecc_mode ([current, pending], 1 = enabled; default: both the preset's ecc_default, itself 1
  unless the preset says otherwise), mig_mode ([current, pending]),
  pcie_gen_current / pcie_width_current (the link as trained now; default the preset's maximum),
  retired_pages ([single-bit-cause count, double-bit-cause count]), retired_pages_pending (1/0),
  vbios (the VBIOS version string; default VBIOS below), fabric_state / fabric_status (nvmlGpuFabricState_t and
  nvmlReturn_t of the fabric registration; default 3 COMPLETED / 0 SUCCESS on Hopper presets (h100*, h200), NOT_SUPPORTED on others).
The NVLink links (state, CRC / replay / recovery counters) and the power limits are the telemetry simulation's
("nvlink" and "power_limit_mw" values; the default limit is the preset's).
What each reproduces (pynvml from nvidia-ml-py, NVML API reference "Device Queries",
https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html):
  nvmlDeviceGetPersistenceMode -> NVML_FEATURE_ENABLED/DISABLED;
  nvmlDeviceGetEccMode -> (current, pending), NOT_SUPPORTED on GeForce cards;
  nvmlDeviceGetDefaultEccMode -> [the mode the card ships with]: enabled on data-centre cards, disabled on
  workstation cards (RTX / Quadro), NOT_SUPPORTED without ECC;
  nvmlDeviceGetMigMode -> (current, pending) NVML_DEVICE_MIG_ENABLE/DISABLE, NOT_SUPPORTED before Ampere A100/A30
  and on GeForce;
  nvmlDeviceGetMaxPcieLinkGeneration/Width -> the best link the GPU and the system can train (the preset's);
  nvmlDeviceGetCurrPcieLinkGeneration/Width -> the link now (idle GPUs train down to save power);
  nvmlDeviceGetRetiredPages(cause) -> list of page addresses; NOT_SUPPORTED on GPUs with row remapping only
  (the simulation answers for every ECC card, with zero pages by default);
  nvmlDeviceGetVbiosVersion -> text such as nvidia-smi prints under "VBIOS Version";
  nvmlDeviceGetGpuFabricInfo(device, byref(c_nvmlGpuFabricInfo_t)) -> fills state and status; "For Hopper or
  newer fully supported devices" (NVML API reference), NOT_SUPPORTED before.
"""

from __future__ import annotations

import pynvml as _real

from dlbench.nvml.simulated import FakeNvml, _error


# The VBIOS an HGX H100 fleet was held to in imbue-ai/cluster-health (health_checks/config.json: 96.00.99.00.01);
# the others are illustrative values in the same printed form.
VBIOS = {
    "h100-sxm": "96.00.99.00.01",
    "h100-mig": "96.00.99.00.01",
    "h200": "96.00.b3.00.01",
    "a100": "92.00.45.00.06",
    "a100-mig": "92.00.45.00.06",
    "v100": "88.00.43.00.01",
    "rtx4090": "95.02.18.80.5f",
    "rtx6000-ada": "95.02.5d.00.01",
}


class ValidationFakeNvml(FakeNvml):
    validation_calls = True

    def _ecc_card(self, gpu) -> bool:
        return "nvmlDeviceGetTotalEccErrors" not in gpu.spec["unsupported"]

    def nvmlDeviceGetPersistenceMode(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetPersistenceMode").values.get("persistence", 1))

    def nvmlDeviceGetEccMode(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetEccMode")
        if not self._ecc_card(gpu):
            raise _error("NOT_SUPPORTED")
        default = gpu.spec.get("ecc_default", 1)
        return list(gpu.values.get("ecc_mode", [default, default]))

    def nvmlDeviceGetDefaultEccMode(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetDefaultEccMode")
        if not self._ecc_card(gpu):
            raise _error("NOT_SUPPORTED")
        return [gpu.spec.get("ecc_default", 1)]

    def nvmlDeviceGetMigMode(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")  # NOT_SUPPORTED where the preset lists it (workstation cards)
        if not self._ecc_card(gpu):  # the GeForce preset: no MIG either
            raise _error("NOT_SUPPORTED")
        return list(gpu.values.get("mig_mode", [0, 0]))

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle):
        return self._gpu(handle, "nvmlDeviceGetMaxPcieLinkGeneration").spec["pcie_gen"]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle):
        return self._gpu(handle, "nvmlDeviceGetMaxPcieLinkWidth").spec["pcie_width"]

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetCurrPcieLinkGeneration")
        return int(gpu.values.get("pcie_gen_current", gpu.spec["pcie_gen"]))

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetCurrPcieLinkWidth")
        return int(gpu.values.get("pcie_width_current", gpu.spec["pcie_width"]))

    def nvmlDeviceGetRetiredPages(self, handle, cause):
        gpu = self._gpu(handle, "nvmlDeviceGetRetiredPages")
        if not self._ecc_card(gpu):
            raise _error("NOT_SUPPORTED")
        single, double = gpu.values.get("retired_pages", [0, 0])
        count = single if cause == _real.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS else double
        return [0x1000 * (i + 1) for i in range(int(count))]

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetRetiredPagesPendingStatus")
        if not self._ecc_card(gpu):
            raise _error("NOT_SUPPORTED")
        return int(gpu.values.get("retired_pages_pending", 0))

    def nvmlDeviceGetVbiosVersion(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetVbiosVersion")
        return gpu.values.get("vbios", VBIOS[gpu.preset])

    def nvmlDeviceGetGpuFabricInfo(self, handle, info_pointer):
        gpu = self._gpu(handle, "nvmlDeviceGetGpuFabricInfo")
        if not gpu.preset.startswith(("h100", "h200")):
            raise _error("NOT_SUPPORTED")
        info = info_pointer._obj  # ctypes.byref(c_nvmlGpuFabricInfo_t()), as the real binding is called
        info.state = int(gpu.values.get("fabric_state", _real.NVML_GPU_FABRIC_STATE_COMPLETED))
        info.status = int(gpu.values.get("fabric_status", _real.NVML_SUCCESS))
        return _real.NVML_SUCCESS
