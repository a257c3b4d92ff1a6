"""Health beyond XID and interconnect families: what NVML reports, converted to base units, absent where unsupported.

Faked: NVML only (dlbench.nvml.simulated presets h100-sxm with 18 NVLink links to NVSwitch, a100, v100 before
Ampere, rtx4090 consumer card; no GPU here). promtool is the real one.
"""

import pytest

from dlbench.nvml import interconnect, simulated
from dlbench.nvml.reader import NvmlReader
from promtool_metrics import promtool_remarks
from tests.test_telemetry_exposition import exposition, find, samples


def reader_for(spec):
    fake = simulated.from_spec(spec)
    return fake, NvmlReader(fake).start()


def test_h100_health_readings_in_base_units():
    fake, reader = reader_for("h100-sxm")
    fake.gpus[0].values.update(
        recovery_action=2,
        ecc_volatile_corrected=7,
        ecc_volatile_uncorrected=1,
        clocks_event_ns={"sw_power_cap": 2_500_000_000, "hw_thermal_slowdown": 1_000},
        encoder_percent=12,
        decoder_percent=40,
    )
    r = reader.read_all()[0]
    assert r["recovery_action"] == 2
    assert r["ecc_volatile_errors"] == {"corrected": 7, "uncorrected": 1}
    durations = r["clocks_event_duration_seconds"]
    assert durations["sw_power_cap"] == pytest.approx(2.5) and durations["hw_thermal_slowdown"] == pytest.approx(1e-6)
    assert set(durations) == {
        "sw_power_cap",
        "sync_boost",
        "sw_thermal_slowdown",
        "hw_thermal_slowdown",
        "hw_power_brake_slowdown",
    }
    assert r["encoder_utilization_ratio"] == pytest.approx(0.12)
    assert r["decoder_utilization_ratio"] == pytest.approx(0.40)
    assert (r["power_default_limit_watts"], r["power_min_limit_watts"], r["power_max_limit_watts"]) == (700, 200, 700)
    for absent in ("fan_speed_ratio", "retired_pages", "retired_pages_pending"):  # passive cooling; row remapping
        assert absent not in r
    assert not reader.errors


# a Blackwell board with power smoothing on: values the power-smoothing fields answer, large enough that read as
# nanoseconds of throttling they would show (profile 2, 50 % floor, a 10 W/s ramp, 1000 W ceiling)
POWER_SMOOTHING = {
    "enabled": 1,
    "active_preset_profile": 2,
    "admin_override_percent_tmp_floor": 50,
    "admin_override_ramp_up_rate": 10_000,
    "applied_tmp_ceil": 1000,
    "priv_lvl": 1,
    "imm_ramp_down_enabled": 1,
}
SLOWDOWN = {
    "sw_thermal_slowdown": 3_000_000_000,
    "hw_thermal_slowdown": 2_000_000_000,
    "hw_power_brake_slowdown": 1_000_000_000,
}


@pytest.mark.parametrize(
    "cuda_driver_version, expected",
    [
        (
            13000,
            {"sw_thermal_slowdown": 3.0, "hw_thermal_slowdown": 2.0, "hw_power_brake_slowdown": 1.0},
        ),  # R580: 251-253
        (
            12090,
            {"sw_thermal_slowdown": 3.0, "hw_thermal_slowdown": 2.0, "hw_power_brake_slowdown": 1.0},
        ),  # R575: 251-253
        (
            13010,
            {"sw_thermal_slowdown": 3.0, "hw_thermal_slowdown": 2.0, "hw_power_brake_slowdown": 1.0},
        ),  # R590: 269-271
        (12080, {}),  # R570: 251-268 are power smoothing, no slowdown counters at all
    ],
)
def test_slowdown_counters_follow_the_driver_generation_not_the_binding(cuda_driver_version, expected):
    """The installed nvidia-ml-py names one generation's field ids; the driver answering may be of the other. Whatever
    the pairing, power-smoothing values must never come out as throttle time."""
    fake, _ = reader_for("h100-sxm")
    fake.cuda_driver_version = cuda_driver_version
    fake.gpus[0].values.update(
        power_smoothing=POWER_SMOOTHING, clocks_event_ns={"sw_power_cap": 5_000_000_000, **SLOWDOWN}
    )
    reader = NvmlReader(fake).start()
    durations = reader.read_all()[0]["clocks_event_duration_seconds"]
    assert {k: v for k, v in durations.items() if k in SLOWDOWN} == pytest.approx(expected)
    assert durations["sw_power_cap"] == pytest.approx(5.0) and durations["sync_boost"] == 0
    assert not reader.errors


def test_v100_retires_pages_and_lacks_what_came_later():
    fake, reader = reader_for("v100")
    fake.gpus[0].values.update(retired_sbe=3, retired_dbe=1, retired_pending=1)
    r = reader.read_all()[0]
    assert r["retired_pages"] == {"single_bit_ecc": 3, "double_bit_ecc": 1}
    assert r["retired_pages_pending"] == 1
    for absent in ("recovery_action", "remapped_rows", "pcie_transmitted_bytes", "pcie_received_bytes"):
        assert absent not in r
    assert len(r["nvlink_link_state"]) == 6


def test_consumer_card_has_a_fan_and_no_nvlink():
    fake, reader = reader_for("rtx4090")
    fake.gpus[0].values.update(fan_percent=65)
    r = reader.read_all()[0]
    assert r["fan_speed_ratio"] == pytest.approx(0.65)
    assert not [key for key in r if key.startswith("nvlink_")]


def test_h100_interconnect_per_link_and_pcie_against_its_maximum():
    fake, reader = reader_for("h100-sxm")
    fake.gpus[0].values.update(
        pcie_tx_kbps=1000,
        pcie_rx_kbps=250,
        pcie_tx_bytes=10**12,
        pcie_rx_bytes=5 * 10**11,
        pcie_width_now=8,
        pcie_gen_now=4,
        nvlink={
            "3": {"state": 0, "replay": 4, "crc": 2, "recovery": 1},
            "0": {"tx_kib": 1_000_000, "rx_kib": 2_000_000},
        },
    )
    r = reader.read_all()[0]
    assert r["pcie_throughput_bytes_per_second"] == {"tx": 1000 * 1024, "rx": 250 * 1024}
    assert r["pcie_transmitted_bytes"] == 10**12 and r["pcie_received_bytes"] == 5 * 10**11
    assert (r["pcie_link_width"], r["pcie_link_max_width"]) == (8, 16)
    assert (r["pcie_link_generation"], r["pcie_link_max_generation"]) == (4, 5)
    states = r["nvlink_link_state"]
    assert len(states) == 18 and states["3"] == 0 and set(states.values()) == {0, 1}
    assert r["nvlink_link_replay_errors"]["3"] == 4 and r["nvlink_link_crc_errors"]["3"] == 2
    assert r["nvlink_link_recovery_errors"]["3"] == 1 and r["nvlink_link_replay_errors"]["2"] == 0
    assert r["nvlink_link_transmitted_bytes"]["0"] == 1_000_000 * 1024
    assert r["nvlink_link_received_bytes"]["0"] == 2_000_000 * 1024
    # the per-GPU totals served by default: counters summed over links, links counted by state
    assert (r["nvlink_links"], r["nvlink_links_active"]) == (18, 17)
    assert (r["nvlink_replay_errors"], r["nvlink_crc_errors"], r["nvlink_recovery_errors"]) == (4, 2, 1)
    assert r["nvlink_transmitted_bytes"] == 1_000_000 * 1024 and r["nvlink_received_bytes"] == 2_000_000 * 1024


def record_field_batches(fake):
    asked = []
    real_call = fake.nvmlDeviceGetFieldValues

    def recording(handle, field_ids):
        asked.append({f if isinstance(f, int) else f[0] for f in field_ids})
        return real_call(handle, field_ids)

    fake.nvmlDeviceGetFieldValues = recording
    return asked


def test_field_values_are_batched_and_unsupported_fields_are_not_asked_again(monkeypatch):
    monkeypatch.setattr(interconnect, "NVLINK_INTERVAL_SECONDS", 0.0)
    fake, reader = reader_for("v100")
    asked = record_field_batches(fake)
    reader.read_all()
    # memory temperature, health, NVLink link count (once per start), PCIe byte counters, all NVLink links
    assert len(asked) == 5
    asked.clear()
    reader.read_all()
    # the V100 answered NOT_SUPPORTED for its PCIe byte counters: that batch is no longer sent at all
    assert len(asked) == 3
    flat = set().union(*asked)
    assert simulated._real.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION not in flat
    assert simulated._real.NVML_FI_DEV_PCIE_COUNT_TX_BYTES not in flat
    assert simulated._real.NVML_FI_DEV_NVLINK_GET_STATE in flat


def test_nvlink_links_are_read_on_a_slower_cadence_and_repeated_between(monkeypatch):
    fake, reader = reader_for("h100-sxm")
    asked = record_field_batches(fake)
    assert reader.read_all()[0]["nvlink_link_state"]["7"] == 1
    fake.gpus[0].values["nvlink"] = {"7": {"state": 0}}
    reading = reader.read_all()[0]
    assert reading["nvlink_link_state"]["7"] == 1, "read again before NVLINK_INTERVAL_SECONDS"
    assert sum(simulated._real.NVML_FI_DEV_NVLINK_GET_STATE in batch for batch in asked) == 1
    monkeypatch.setattr(interconnect, "NVLINK_INTERVAL_SECONDS", 0.0)
    assert reader.read_all()[0]["nvlink_link_state"]["7"] == 0


def test_one_links_counter_reset_does_not_lower_the_gpus_total(monkeypatch):
    """A link retrained or reset (`nvidia-smi nvlink -r`) starts its counters at 0 again; the per-GPU total must not
    fall, or rate() sees the whole total as new (a spike of its full value). Across an NVML restart too."""
    monkeypatch.setattr(interconnect, "NVLINK_INTERVAL_SECONDS", 0.0)
    fake, reader = reader_for("h100-sxm")
    links = fake.gpus[0].values["nvlink"] = {"3": {"replay": 40, "tx_kib": 1000}, "9": {"replay": 2, "tx_kib": 500}}
    first = reader.read_all()[0]
    assert (first["nvlink_replay_errors"], first["nvlink_transmitted_bytes"]) == (42, 1500 * 1024)
    links["3"].update(replay=1, tx_kib=10)  # link 3 reset, then counted 1 replay and 10 KiB
    links["9"].update(replay=3, tx_kib=600)
    second = reader.read_all()[0]
    assert second["nvlink_replay_errors"] == 42 + 1 + 1
    assert second["nvlink_transmitted_bytes"] == (1500 + 10 + 100) * 1024
    assert second["nvlink_link_replay_errors"]["3"] == 1  # the per-link series shows the link's own reset
    reader.close()
    reader.start()  # NVML initialised again: the total goes on from where it was
    links["3"].update(replay=2)
    assert reader.read_all()[0]["nvlink_replay_errors"] == 44 + 1


def test_board_limits_are_read_once_per_nvml_start():
    fake, reader = reader_for("h100-sxm")
    calls = []
    for name in ("nvmlDeviceGetPowerManagementDefaultLimit", "nvmlDeviceGetMaxPcieLinkWidth"):
        real = getattr(fake, name)
        setattr(fake, name, lambda handle, real=real, name=name: calls.append(name) or real(handle))
    for _ in range(3):
        assert reader.read_all()[0]["pcie_link_max_width"] == 16
    assert sorted(calls) == ["nvmlDeviceGetMaxPcieLinkWidth", "nvmlDeviceGetPowerManagementDefaultLimit"]


def test_exposition_labels_links_reasons_and_directions():
    def prepare(fake):
        fake.gpus[0].values.update(
            recovery_action=1, nvlink={"5": {"state": 0}}, clocks_event_ns={"sw_thermal_slowdown": 3_000_000_000}
        )

    text, _, _ = exposition("h100-sxm,v100,rtx4090", prepare=prepare, nvlink_per_link=True)
    parsed = samples(text)
    assert find(parsed, "dlbench_gpu_recovery_action", gpu="0") == [1]
    assert find(parsed, "dlbench_gpu_recovery_action", gpu="1") == []  # V100: absent, not 0
    assert find(parsed, "dlbench_gpu_nvlink_link_state", gpu="0", link="5") == [0]
    assert len(find(parsed, "dlbench_gpu_nvlink_link_state", gpu="0")) == 18
    assert len(find(parsed, "dlbench_gpu_nvlink_link_crc_errors_total", gpu="1")) == 6
    assert find(parsed, "dlbench_gpu_nvlink_link_state", gpu="2") == []
    assert find(parsed, "dlbench_gpu_clocks_event_duration_seconds_total", gpu="0", reason="sw_thermal_slowdown") == [
        3.0
    ]
    assert find(parsed, "dlbench_gpu_retired_pages", gpu="1", cause="double_bit_ecc") == [0]
    assert sorted(find(parsed, "dlbench_gpu_pcie_throughput_bytes_per_second", gpu="0")) == [0, 0]
    assert find(parsed, "dlbench_gpu_fan_speed_ratio", gpu="2") == [0.3]


def test_nvlink_is_served_as_per_gpu_totals_by_default():
    def prepare(fake):
        fake.gpus[0].values.update(nvlink={"5": {"state": 0, "crc": 3}, "6": {"crc": 2, "tx_kib": 10}})

    parsed = samples(exposition("h100-sxm,v100,rtx4090", prepare=prepare)[0])
    assert not [name for name, _ in parsed if "nvlink_link_" in name or "link" in dict(_)]
    assert find(parsed, "dlbench_gpu_nvlink_links", gpu="0") == [18]
    assert find(parsed, "dlbench_gpu_nvlink_links_active", gpu="0") == [17]
    assert find(parsed, "dlbench_gpu_nvlink_crc_errors_total", gpu="0") == [5]
    assert find(parsed, "dlbench_gpu_nvlink_transmitted_bytes_total", gpu="0") == [10 * 1024]
    assert find(parsed, "dlbench_gpu_nvlink_links_active", gpu="1") == [6]  # V100: 6 NVLink 2 links
    assert not [name for name, labels in parsed if "nvlink" in name and dict(labels)["gpu"] == "2"]  # no NVLink


@pytest.mark.integration
def test_promtool_finds_nothing_to_say_with_every_new_family_served():
    text, _, _ = exposition("h100-sxm,a100,v100,rtx4090", nvlink_per_link=True)
    for family in (
        "dlbench_gpu_nvlink_crc_errors_total",
        "dlbench_gpu_nvlink_links_active",
        "dlbench_gpu_nvlink_link_crc_errors_total",
        "dlbench_gpu_nvlink_link_state",
        "dlbench_gpu_retired_pages",
        "dlbench_gpu_fan_speed_ratio",
        "dlbench_gpu_clocks_event_duration_seconds_total",
        "dlbench_gpu_pcie_received_bytes_total",
    ):
        assert f"\n{family}" in text, family
    assert promtool_remarks(text) == ""
