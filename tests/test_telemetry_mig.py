"""MIG instances as devices: memory per instance, labelled by parent GPU, instance ids and profile.

Faked: NVML only (dlbench.telemetry.fake_nvml preset a100-mig: an A100 80GB split 3g.40gb + 2g.20gb + 1g.10gb x2;
h100-sxm with MIG off; v100 without MIG). The exposition and promtool are real.
"""

import pytest

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
