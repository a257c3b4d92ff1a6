"""MIG instances as devices: memory per instance, labelled by parent GPU, instance ids and profile.

Faked: NVML only (dlbench.nvml.simulated preset a100-mig: an A100 80GB split 3g.40gb + 2g.20gb + 1g.10gb x2;
h100-mig: the same split on an H100, whose instances also answer GPM; h100-sxm with MIG off; v100 without MIG).
The exposition and promtool are real.
"""

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dlbench.nvml import simulated
from dlbench.exporter.collector import TelemetryCollector
from dlbench.nvml.reader import NvmlReader
from promtool_metrics import promtool_remarks
from tests.test_telemetry_exposition import exposition, find, samples


def mig_exposition():
    def prepare(fake):
        fake.gpus[0].values["mig_memory_used"] = [12 * 2**30, 0, 5 * 2**20, 0]

    return exposition("a100-mig,h100-sxm,v100", prepare=prepare)


def test_each_instance_is_a_device_with_its_memory_and_profile():
    text, _, _ = mig_exposition()
    parsed = samples(text)
    assert find(parsed, "dlbench_gpu_mig_mode", gpu="0") == [1]
    assert find(parsed, "dlbench_gpu_mig_mode", gpu="1") == [0]
    assert find(parsed, "dlbench_gpu_mig_mode", gpu="2") == []  # Volta: no MIG at all
    assert len(find(parsed, "dlbench_mig_memory_total_bytes", gpu="0")) == 4
    assert find(
        parsed,
        "dlbench_mig_memory_used_bytes",
        gpu="0",
        profile="3g.40gb",
        gpu_instance_id="2",
        compute_instance_id="0",
    ) == [12 * 2**30]
    assert find(parsed, "dlbench_mig_memory_total_bytes", profile="1g.10gb", gpu_instance_id="9") == [9728 * 2**20]
    assert sorted(dict(labels)["mig_uuid"] for (name, labels) in parsed if name == "dlbench_mig_memory_used_bytes") == [
        f"MIG-fa4e0000-0000-4000-8000-61313030{slot:04d}" for slot in range(4)
    ]
    assert find(parsed, "dlbench_mig_memory_used_bytes", gpu="1") == []
    assert find(parsed, "dlbench_gpu_utilization_ratio", gpu="0") == []  # NVML has no whole-GPU figure in MIG mode


@pytest.mark.integration
def test_promtool_finds_nothing_to_say_about_mig_series():
    text, _, _ = mig_exposition()
    assert promtool_remarks(text) == ""
    _, _, sampler = exposition("h100-mig", prepare=_mig_activity)
    sampler.sample_now()  # GPM per instance needs a second sample
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="node1"))
    text = generate_latest(registry).decode()
    assert "dlbench_mig_sm_active_ratio{" in text and "dlbench_mig_process_memory_used_bytes{" in text
    assert promtool_remarks(text) == ""


MIG_BUSY = {"SM_UTIL": 91, "SM_OCCUPANCY": 30, "ANY_TENSOR_UTIL": 74, "DRAM_BW_UTIL": 40, "FP16_UTIL": 5}


def _mig_activity(fake):
    # h100-mig: GPU instance 2 (3g.40gb) busy, instance 9 idle; pids 4101/4102 in the 3g, 4201 in slot 2's 1g
    gpu = fake.gpus[0]
    gpu.values["mig_gpm"] = {"2": MIG_BUSY, "9": {"SM_UTIL": 0}}
    gpu.values["mig_processes"] = {"0": [[4101, 9 * 2**30], [4102, 2**30]], "2": [[4201, None]]}
    gpu.values["processes"] = [[4101, 9 * 2**30, None], [4102, 2**30, None], [4201, None, None]]


def test_each_hopper_instance_has_its_own_gpm_activity_and_processes():
    text, _, sampler = exposition("h100-mig,a100-mig", prepare=_mig_activity)
    parsed = samples(text)
    assert find(parsed, "dlbench_mig_sm_active_ratio") == [], "one GPM sample cannot give an average"
    sampler.sample_now()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="node1"))
    parsed = samples(generate_latest(registry).decode())
    three_g = dict(gpu="0", gpu_instance_id="2", profile="3g.40gb")
    assert find(parsed, "dlbench_mig_sm_active_ratio", **three_g) == [pytest.approx(0.91)]
    assert find(parsed, "dlbench_mig_tensor_active_ratio", **three_g) == [pytest.approx(0.74)]
    assert find(parsed, "dlbench_mig_pipe_active_ratio", pipe="fp16", **three_g) == [pytest.approx(0.05)]
    assert find(parsed, "dlbench_mig_sm_active_ratio", gpu="0", gpu_instance_id="9") == [0.0]
    # instance 3 has no scripted activity: idle, 0 as on a real Hopper (the simulation used to answer NOT_SUPPORTED)
    assert find(parsed, "dlbench_mig_sm_active_ratio", gpu="0", gpu_instance_id="3") == [0.0]
    assert find(parsed, "dlbench_mig_processes", **three_g) == [2]
    assert find(parsed, "dlbench_mig_processes", gpu="0", gpu_instance_id="3") == [0]
    assert find(parsed, "dlbench_mig_process_memory_used_bytes", pid="4101", **three_g) == [9 * 2**30]
    assert find(parsed, "dlbench_mig_process_memory_used_bytes", pid="4102", gpu_instance_id="2") == [2**30]
    assert find(parsed, "dlbench_mig_processes", gpu="0", gpu_instance_id="9", profile="1g.10gb") == [1]
    assert find(parsed, "dlbench_mig_process_memory_used_bytes", pid="4201") == []  # memory not available
    # an A100 in MIG mode: instances and their processes, but no GPM before Hopper
    assert len(find(parsed, "dlbench_mig_processes", gpu="1")) == 4
    assert [
        name
        for (name, labels) in parsed
        if name.startswith("dlbench_mig_") and name.endswith("active_ratio") and dict(labels)["gpu"] == "1"
    ] == []
    assert not sampler.nvml.errors


def test_compute_instances_of_one_gpu_instance_share_one_gpm_stream():
    """nvmlGpmMigSampleGet samples a GPU instance: two MIG devices in it must not each take a sample per read."""
    fake = simulated.from_spec("h100-mig")
    _mig_activity(fake)
    fake.gpus[0].spec = {**fake.gpus[0].spec, "mig": [("3g.40gb", 2, 40192), ("3g.40gb", 2, 40192)]}
    taken = []
    real = fake.nvmlGpmMigSampleGet

    def counting(device, gpu_instance_id, sample):
        taken.append(gpu_instance_id)
        return real(device, gpu_instance_id, sample)

    fake.nvmlGpmMigSampleGet = counting
    reader = NvmlReader(fake).start()
    reader.read_all()
    second = reader.read_all()[0]
    assert taken == [2, 2]
    assert [d["gpm_sm_active_ratio"] for d in second["mig_devices"]] == [pytest.approx(0.91)] * 2


def test_a_changed_mig_layout_frees_the_streams_and_owners_of_instances_gone():
    """Destroying and re-creating MIG instances (no NVML restart) must neither keep the GPM buffers and process owners
    of instances that are gone, nor average a new GPU instance against a sample of the old one that had its id."""
    fake = simulated.from_spec("h100-mig")
    _mig_activity(fake)
    fake.gpus[0].values["mig_gpm"]["9"] = {"SM_UTIL": 40.0}
    reader = NvmlReader(fake).start()
    reader.read_all()
    reader.read_all()
    assert fake.live_gpm_samples() == 2 * (1 + 4)
    assert len(_instance_owners(reader)) == 4
    # 1g.10gb instances 9 and 10 destroyed, a 2g.20gb created in their place that gets id 9 again
    fake.gpus[0].spec = {
        **fake.gpus[0].spec,
        "mig": [("3g.40gb", 2, 40192), ("2g.20gb", 3, 19968), ("2g.20gb", 9, 19968)],
    }
    devices = {d["gpu_instance_id"]: d for d in reader.read_all()[0]["mig_devices"]}
    assert fake.live_gpm_samples() == 2 * (1 + 3)
    assert len(_instance_owners(reader)) == 3
    assert "gpm_sm_active_ratio" not in devices[9], "a new instance's first sample has nothing to average against"
    assert devices[2]["gpm_sm_active_ratio"] == pytest.approx(0.91)  # the instance kept keeps its stream
    devices = {d["gpu_instance_id"]: d for d in reader.read_all()[0]["mig_devices"]}
    assert devices[9]["gpm_sm_active_ratio"] == pytest.approx(0.40)
    fake.gpus[0].spec = {key: value for key, value in fake.gpus[0].spec.items() if key != "mig"}  # MIG mode off
    assert reader.read_all()[0]["mig_mode"] == 0
    assert fake.live_gpm_samples() == 2 and _instance_owners(reader) == []
    reader.close()
    assert fake.live_gpm_samples() == 0


def _instance_owners(reader):
    """The per-MIG-instance process-owner caches the reader holds."""
    return [
        key for key in reader.static if isinstance(key, tuple) and key[1:2] == ("process_owners",) and len(key) == 3
    ]


def test_mig_help_texts_compare_only_with_series_served_in_mig_mode():
    """NVML has no whole-GPU utilisation in MIG mode, so a MIG series' help must not tell users to compare it with
    dlbench_gpu_utilization_ratio, which is absent there."""
    from dlbench.exporter.catalogue import specs

    assert [spec.name for spec in specs("mig") if "dlbench_gpu_utilization_ratio" in spec.help] == []


def test_dcgm_compat_serves_each_gpu_instance_under_the_profiling_names_with_dcgm_exporters_mig_labels():
    """dcgm-exporter labels a MIG GPU instance's series GPU_I_PROFILE and GPU_I_ID beside the parent GPU's labels (its
    metrics template: `{{if $metric.MigProfile}},GPU_I_PROFILE="...",GPU_I_ID="..."{{end}}`), in the same family as
    the whole GPUs' series; MIG dashboards built on dcgm-exporter select on them."""

    def prepare(fake):
        _mig_activity(fake)
        fake.gpus[1].values["gpm"] = {"SM_UTIL": 50.0}

    text, _, sampler = exposition("h100-mig,h100-sxm", dcgm=True, prepare=prepare)
    sampler.sample_now()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="node1", dcgm_compat=True))
    text = generate_latest(registry).decode()
    parsed = samples(text)
    three_g = find(parsed, "DCGM_FI_PROF_SM_ACTIVE", gpu="0", GPU_I_PROFILE="3g.40gb", GPU_I_ID="2")
    assert three_g == [pytest.approx(0.91)]
    assert find(parsed, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", GPU_I_ID="2") == [pytest.approx(0.74)]
    assert find(parsed, "DCGM_FI_PROF_SM_ACTIVE", GPU_I_ID="3") == [0.0]  # no activity scripted: idle, 0
    labels = [dict(ls) for (name, ls) in parsed if name == "DCGM_FI_PROF_SM_ACTIVE" and dict(ls).get("GPU_I_ID")]
    assert {label["GPU_I_ID"] for label in labels} == {"2", "3", "9", "10"}  # one series per GPU instance
    assert {label["UUID"] for label in labels} == {sampler.nvml.gpus[0].uuid}  # the parent's, as dcgm-exporter
    assert set(labels[0]) == {
        "gpu",
        "UUID",
        "pci_bus_id",
        "device",
        "modelName",
        "Hostname",
        "DCGM_FI_DRIVER_VERSION",
        "GPU_I_PROFILE",
        "GPU_I_ID",
    }
    whole = [v for (name, ls), v in parsed.items() if name == "DCGM_FI_PROF_SM_ACTIVE" and "GPU_I_ID" not in dict(ls)]
    assert whole == [pytest.approx(0.5)]  # the whole GPU not in MIG mode, in the same family
    assert text.count("# TYPE DCGM_FI_PROF_SM_ACTIVE ") == 1


def test_instance_memory_leaves_reserved_memory_out_of_used():
    """nvmlDeviceGetMemoryInfo v1's used is "Sum of Reserved and Allocated" (NVML API reference, nvmlMemory_t): an
    idle instance looked partly used. v2 on the MIG device handle, as for whole GPUs."""

    def prepare(fake):
        fake.gpus[0].values.update(mig_memory_used=[12 * 2**30, 0, 0, 0], mig_memory_reserved=[300 * 2**20] * 4)

    parsed = samples(exposition("a100-mig", prepare=prepare)[0])
    assert find(parsed, "dlbench_mig_memory_used_bytes", gpu_instance_id="2") == [12 * 2**30]
    assert find(parsed, "dlbench_mig_memory_used_bytes", gpu_instance_id="3") == [0]  # idle: nothing used
    assert find(parsed, "dlbench_mig_memory_free_bytes", gpu_instance_id="3") == [(19968 - 300) * 2**20]


def test_dcgm_compat_serves_each_gpu_instances_framebuffer():
    """dcgm-exporter serves DCGM_FI_DEV_FB_USED/FREE for each GPU instance entity with GPU_I_PROFILE and GPU_I_ID
    (internal/pkg/devicemonitoring/device_monitoring.go watches GPU instances; its issue #317 shows the series), in
    MiB, beside the whole GPU's; on an A100 as on an H100 (memory needs no GPM)."""

    def prepare(fake):
        fake.gpus[0].values.update(mig_memory_used=[12 * 2**30, 5 * 2**20, 0, 0], mig_memory_reserved=[2**20] * 4)

    parsed = samples(exposition("a100-mig", dcgm=True, prepare=prepare)[0])
    assert find(parsed, "DCGM_FI_DEV_FB_USED", gpu="0", GPU_I_PROFILE="3g.40gb", GPU_I_ID="2") == [12 * 1024]
    assert find(parsed, "DCGM_FI_DEV_FB_FREE", gpu="0", GPU_I_PROFILE="3g.40gb", GPU_I_ID="2") == [
        40192 - 12 * 1024 - 1
    ]
    assert find(parsed, "DCGM_FI_DEV_FB_USED", GPU_I_PROFILE="2g.20gb", GPU_I_ID="3") == [5]
    per_instance = [dict(ls)["GPU_I_ID"] for (n, ls) in parsed if n == "DCGM_FI_DEV_FB_USED" and "GPU_I_ID" in dict(ls)]
    assert sorted(per_instance, key=int) == ["2", "3", "9", "10"]
    whole = [v for (n, ls), v in parsed.items() if n == "DCGM_FI_DEV_FB_USED" and "GPU_I_ID" not in dict(ls)]
    assert len(whole) == 1  # the parent GPU's own series stays
    assert find(parsed, "DCGM_FI_PROF_SM_ACTIVE") == []  # an A100: no GPM, no profiling names promised
