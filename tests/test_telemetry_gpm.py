"""GPM profiling activity (Hopper and newer): ratios over the sampling interval, absent before Hopper, DCGM names.

Faked: NVML only (dlbench.nvml.simulated: h100-sxm offers GPM, a100 and v100 answer isSupportedDevice = 0, as
nvmlGpmQueryDeviceSupport does before Hopper). The exposition is prometheus_client's real one.
"""

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dlbench.nvml import simulated
from dlbench.exporter.collector import TelemetryCollector
from dlbench.exporter.host import HostReader
from dlbench.nvml.reader import NvmlReader
from dlbench.exporter.sampler import Sampler
from tests.test_telemetry_exposition import find, samples

BUSY = {
    "GRAPHICS_UTIL": 100,
    "SM_UTIL": 83,
    "SM_OCCUPANCY": 41,
    "ANY_TENSOR_UTIL": 67,
    "DRAM_BW_UTIL": 52,
    "FP32_UTIL": 12,
    "FP16_UTIL": 3,
}


def test_gpm_ratios_cover_the_interval_between_two_reads_and_only_on_hopper():
    fake = simulated.from_spec("h100-sxm,a100,v100")
    reader = NvmlReader(fake).start()
    # FP64_UTIL scripted null: a metric this GPU does not offer (NVML_ERROR_NOT_SUPPORTED in its slot)
    fake.gpus[0].values["gpm"] = {**BUSY, "FP64_UTIL": None}
    first = reader.read_all()
    assert not [key for key in first[0] if key.startswith("gpm_")], "one sample cannot give an average"
    second = reader.read_all()
    r = second[0]
    assert r["gpm_sm_active_ratio"] == pytest.approx(0.83)
    assert r["gpm_sm_occupancy_ratio"] == pytest.approx(0.41)
    assert r["gpm_tensor_active_ratio"] == pytest.approx(0.67)
    assert r["gpm_dram_active_ratio"] == pytest.approx(0.52)
    assert r["gpm_graphics_engine_active_ratio"] == 1.0
    assert r["gpm_pipe_active_ratio"] == pytest.approx({"fp32": 0.12, "fp16": 0.03})  # FP64 not supported: absent
    for older in (1, 2):
        assert not [key for key in second[older] if key.startswith("gpm_")]
    assert not reader.errors


def test_gpm_costs_one_sample_call_per_read_and_no_support_query_after_the_first():
    fake = simulated.from_spec("h100-sxm,a100")
    reader = NvmlReader(fake).start()
    counts = {"nvmlGpmSampleGet": 0, "nvmlGpmQueryDeviceSupport": 0}
    for name in counts:
        real = getattr(fake, name)

        def counting(*args, real=real, name=name):
            counts[name] += 1
            return real(*args)

        setattr(fake, name, counting)
    for _ in range(4):
        reader.read_all()
    assert counts == {"nvmlGpmSampleGet": 4, "nvmlGpmQueryDeviceSupport": 2}


def test_dcgm_compat_serves_the_profiling_names_as_ratios():
    fake = simulated.from_spec("h100-sxm,a100")
    fake.gpus[0].values["gpm"] = BUSY
    sampler = Sampler(NvmlReader(fake).start(), HostReader(), interval=1)
    sampler.sample_now()
    sampler.sample_now()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="node1", dcgm_compat=True))
    parsed = samples(generate_latest(registry).decode())
    assert find(parsed, "DCGM_FI_PROF_SM_ACTIVE", gpu="0") == [pytest.approx(0.83)]
    assert find(parsed, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", gpu="0") == [pytest.approx(0.67)]
    assert find(parsed, "DCGM_FI_PROF_PIPE_FP16_ACTIVE", gpu="0") == [pytest.approx(0.03)]
    # no FP64 work scripted: 0, as a real H100 reads an idle pipe (the simulation used to answer NOT_SUPPORTED, which
    # left the activity panels of the simulated mode empty)
    assert find(parsed, "DCGM_FI_PROF_PIPE_FP64_ACTIVE", gpu="0") == [0.0]
    assert find(parsed, "DCGM_FI_PROF_SM_ACTIVE", gpu="1") == []  # A100: no GPM, absent rather than 0
    assert find(parsed, "dlbench_gpu_pipe_active_ratio", gpu="0", pipe="fp32") == [pytest.approx(0.12)]


def test_nvml_restarts_free_the_gpm_sample_buffers_instead_of_leaking_them():
    """A recovery loop (driver unloaded and back, again and again) must not allocate two new buffers per GPU and per
    MIG GPU instance at every restart without freeing the old ones (nvmlGpmSampleFree)."""
    fake = simulated.from_spec("h100-sxm,h100-mig,a100")
    reader = NvmlReader(fake).start()
    reader.read_all()
    streams = fake.live_gpm_samples()
    assert streams == 2 * (1 + 1 + 4)  # H100, H100 in MIG mode and its 4 GPU instances; none on the A100
    for _ in range(5):
        fake.gpus[2].faults = {"nvmlDeviceGetUtilizationRates": "DRIVER_NOT_LOADED"}
        assert reader.read_all() == {} and not reader.up  # NVML down: the reader shuts it down
        assert fake.live_gpm_samples() == 0
        fake.gpus[2].faults = {}
        assert reader.retry_start(now=float("inf"))
        reader.read_all()
        assert fake.live_gpm_samples() == streams
    reader.close()
    assert fake.live_gpm_samples() == 0
    assert not reader.errors.get("nvmlGpmSampleGet")


def test_a_gpu_hung_in_a_call_keeps_its_gpm_buffers_across_a_restart():
    """Freeing a buffer that a hung call may still write into would be a use after free: that GPU's two are left."""
    fake = simulated.from_spec("h100-sxm*2")
    reader = NvmlReader(fake).start()
    reader.read_all()
    fake.gpus[1].faults = {"nvmlDeviceGetPowerUsage": "HANG"}
    try:
        assert reader.read_all(timeout=0.2)[1] == {"up": 0, "late": 1}
        fake.gpus[0].faults = {"nvmlDeviceGetUtilizationRates": "DRIVER_NOT_LOADED"}
        assert reader.read_all(timeout=0.5) == {}
        assert fake.live_gpm_samples() == 2
    finally:
        fake.gpus[1].faults = {}
        reader.close()
