"""NvmlReader and Sampler against a simulated NVML.

Faked: only the pynvml functions that would call libnvidia-ml (there is no GPU here); constants, error classes
and result structures are the real nvidia-ml-py ones, and everything above them is the production code.
"""

import pytest

from dlbench.nvml import simulated
from dlbench.exporter.host import HostReader
from dlbench.nvml.reader import NvmlReader
from dlbench.exporter.sampler import Sampler


def reader_for(spec):
    fake = simulated.from_spec(spec)
    return fake, NvmlReader(fake).start()


def test_h100_reading_converts_nvml_units_to_base_units():
    fake, reader = reader_for("h100-sxm")
    fake.gpus[0].values.update(
        utilization_gpu=97,
        utilization_memory=41,
        power_mw=612_345,
        sm_mhz=1980,
        mem_mhz=2619,
        temperature=71,
        memory_temperature=80,
        pstate=0,
        clocks_event_reasons=0x4 | 0x20,
        ecc_corrected=3,
        remapped=(2, 1, 1, 0),
    )
    r = reader.read_all()[0]
    assert r["up"] == 1
    assert r["utilization_ratio"] == pytest.approx(0.97)
    assert r["memory_copy_utilization_ratio"] == pytest.approx(0.41)
    assert r["power_watts"] == pytest.approx(612.345)
    assert r["power_limit_watts"] == 700.0
    assert r["sm_clock_hertz"] == 1980e6 and r["sm_clock_max_hertz"] == 1980e6
    assert r["memory_clock_hertz"] == 2619e6
    assert r["temperature_celsius"] == 71 and r["memory_temperature_celsius"] == 80
    assert r["memory_total_bytes"] == 81559 * 2**20
    assert r["memory_used_bytes"] + r["memory_free_bytes"] == r["memory_total_bytes"]
    active = {reason for reason, on in r["clocks_event_active"].items() if on}
    assert active == {"sw_power_cap", "sw_thermal_slowdown"}
    assert len(r["clocks_event_active"]) == 9
    assert r["ecc_errors"] == {"corrected": 3, "uncorrected": 0}
    assert r["remapped_rows"] == {"correctable": 2, "uncorrectable": 1}
    assert r["row_remap_pending"] == 1 and r["row_remap_failure"] == 0
    assert r["pcie_link_generation"] == 5 and r["pcie_link_width"] == 16
    assert reader.driver_version == "580.95.05" and reader.cuda_driver_version == "13.0"
    assert reader.gpus[0].pci_bus_id == "00000000:18:00.0"
    assert not reader.errors


def test_consumer_gpu_leaves_unsupported_metrics_out_rather_than_zero():
    fake, reader = reader_for("rtx4090")
    first = reader.read_all()[0]
    for absent in ("memory_temperature_celsius", "ecc_errors", "remapped_rows", "row_remap_pending"):
        assert absent not in first
    assert first["temperature_celsius"] == 35 and first["power_watts"] == 70
    calls = fake.calls
    reader.read_all()
    # unsupported calls are remembered and not retried every sample
    assert fake.calls - calls < calls
    assert not reader.errors  # NOT_SUPPORTED is not an error


def test_energy_counter_is_in_joules_and_follows_power():
    fake, reader = reader_for("a100")
    fake.gpus[0].values["power_mw"] = 300_000
    start = reader.read_energy_joules(0)
    fake.gpus[0].energy_clock -= 2.0  # two seconds at 300 W pass in the simulation
    assert reader.read_energy_joules(0) - start == pytest.approx(600, rel=0.01)


def test_nvml_error_on_one_call_is_counted_and_leaves_only_that_metric_out():
    fake, reader = reader_for("h100-sxm,a100")
    fake.gpus[1].faults = {"nvmlDeviceGetPowerUsage": "TIMEOUT"}
    readings = reader.read_all()
    assert readings[1]["up"] == 1 and "power_watts" not in readings[1]
    assert readings[1]["temperature_celsius"] == 35
    assert readings[0]["power_watts"] == 70
    reader.read_all()
    assert reader.errors == {"nvmlDeviceGetPowerUsage": 2}


def test_gpu_lost_mid_run_is_reported_down_while_the_others_keep_reading_and_can_return():
    fake, reader = reader_for("h100-sxm*3")
    assert all(r["up"] == 1 for r in reader.read_all().values())
    fake.gpus[1].lost = True
    readings = reader.read_all()
    assert readings[1] == {"up": 0, "late": 0}
    assert readings[0]["up"] == 1 and readings[2]["power_watts"] == 70
    assert reader.errors["nvmlDeviceGetUtilizationRates"] == 1
    fake.gpus[1].lost = False
    assert reader.read_all()[1]["up"] == 1


@pytest.mark.parametrize("error", ["GPU_IS_LOST", "RESET_REQUIRED"])
def test_only_gpu_lost_class_errors_mark_the_gpu_down(error):
    # NVML's nvmlReturn_t: GPU_IS_LOST "fallen off the bus", RESET_REQUIRED "requires a reset before it can be used"
    fake, reader = reader_for("a100")
    fake.gpus[0].faults = {"nvmlDeviceGetMemoryInfo": error}
    assert reader.read_all()[0] == {"up": 0, "late": 0}


@pytest.mark.parametrize("error", ["UNKNOWN", "UNKNOWN*1", "TIMEOUT", "NO_PERMISSION"])
def test_a_failing_query_drops_that_series_only_and_is_counted(error):
    fake, reader = reader_for("a100")
    fake.gpus[0].faults = {"nvmlDeviceGetPcieReplayCounter": error}
    reading = reader.read_all()[0]
    assert reading["up"] == 1 and reading["late"] == 0 and "pcie_replay_errors" not in reading
    assert reading["power_watts"] == 70 and reading["temperature_celsius"] == 35
    assert reader.errors == {"nvmlDeviceGetPcieReplayCounter": 1}


def test_memory_comes_from_the_v2_call_without_driver_reserved_memory():
    fake, reader = reader_for("h100-sxm")
    fake.gpus[0].values.update(memory_used=0, memory_reserved=600 * 2**20)  # an idle H100
    r = reader.read_all()[0]
    assert r["memory_used_bytes"] == 0 and r["memory_reserved_bytes"] == 600 * 2**20
    assert r["memory_used_bytes"] + r["memory_free_bytes"] + r["memory_reserved_bytes"] == r["memory_total_bytes"]


def test_drivers_without_the_v2_memory_call_fall_back_to_v1(monkeypatch):
    fake, reader = reader_for("h100-sxm")
    fake.gpus[0].values.update(memory_used=2**30, memory_reserved=600 * 2**20)
    original = simulated.SimulatedNvml.nvmlDeviceGetMemoryInfo

    def before_r510(self, handle, version=None):
        if version:  # pynvml looks up nvmlDeviceGetMemoryInfo_v2, which such a libnvidia-ml lacks
            raise simulated._error("FUNCTION_NOT_FOUND")
        return original(self, handle, version)

    monkeypatch.setattr(simulated.SimulatedNvml, "nvmlDeviceGetMemoryInfo", before_r510)
    r = reader.read_all()[0]
    assert r["memory_used_bytes"] == 2**30 + 600 * 2**20 and "memory_reserved_bytes" not in r
    assert not reader.errors


def test_power_limit_is_read_every_sample():
    fake, reader = reader_for("h100-sxm")
    assert reader.read_all()[0]["power_limit_watts"] == 700
    fake.gpus[0].values["power_limit_mw"] = 500_000  # nvidia-smi -pl 500
    assert reader.read_all()[0]["power_limit_watts"] == 500


def test_unsupported_is_forgotten_after_a_while(monkeypatch):
    from dlbench.nvml import calls

    fake, reader = reader_for("a100")
    fake.gpus[0].faults = {"nvmlDeviceGetTotalEccErrors": "NOT_SUPPORTED"}  # e.g. while MIG is being set up
    assert "ecc_errors" not in reader.read_all()[0]
    del fake.gpus[0].faults["nvmlDeviceGetTotalEccErrors"]
    assert "ecc_errors" not in reader.read_all()[0]  # remembered: not asked again at once
    monkeypatch.setattr(calls, "UNSUPPORTED_RETRY_SECONDS", 0.0)
    reader.unsupported = {key: 0.0 for key in reader.unsupported}  # the retry time has come
    assert reader.read_all()[0]["ecc_errors"] == {"corrected": 0, "uncorrected": 0}


def test_an_expired_unsupported_entry_read_from_two_threads_at_once_is_no_error():
    """The run's thread (read_energy_joules) and the GPU's read thread both find the energy counter's retry time
    passed; the other thread's removal lands between this one's lookup and removal."""

    class RemovedByTheOtherThread(dict):
        def get(self, key, default=None):
            value = super().get(key, default)
            self.pop(key, None)
            return value

    fake, reader = reader_for("h100-sxm")
    reader.unsupported = RemovedByTheOtherThread({(0, "nvmlDeviceGetTotalEnergyConsumption"): 0.0})
    assert reader.read_energy_joules(0) == pytest.approx(1000.0, rel=0.01)
    reader.unsupported = RemovedByTheOtherThread({(0, "nvmlDeviceGetPowerUsage"): 0.0})
    reading = reader.read_all()[0]
    assert reading["up"] == 1 and reading["power_watts"] == 70


def test_a_transient_error_on_the_maximum_clocks_is_not_kept_until_nvml_restarts():
    fake, reader = reader_for("h100-sxm")
    fake.gpus[0].faults = {"nvmlDeviceGetMaxClockInfo": "UNKNOWN*1"}  # the first sample's SM maximum fails once
    assert "sm_clock_max_hertz" not in reader.read_all()[0]
    assert reader.read_all()[0]["sm_clock_max_hertz"] == 1980e6


def test_a_hung_call_marks_that_gpu_late_within_the_deadline_and_not_the_others():
    import time

    fake, reader = reader_for("h100-sxm*3")
    fake.gpus[1].faults = {"nvmlDeviceGetPowerUsage": "HANG"}
    started = time.monotonic()
    readings = reader.read_all(timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert readings[1] == {"up": 0, "late": 1}
    assert readings[0]["up"] == 1 and readings[2]["power_watts"] == 70
    assert reader.read_all(timeout=0.1)[1] == {"up": 0, "late": 1}  # still hung: not asked twice
    del fake.gpus[1].faults["nvmlDeviceGetPowerUsage"]
    time.sleep(0.1)
    assert reader.read_all(timeout=2)[1]["up"] == 1


def test_a_call_hung_for_good_holds_one_thread_across_nvml_restarts():
    """NVML re-initialised (driver reloaded) while a GPU's call never returns: the hung thread is reused, not joined
    by one more hung thread per restart."""
    import threading

    def hung_threads():
        return sum(1 for t in threading.enumerate() if t.name == "dlbench-nvml-gpu1" and t.is_alive())

    before = hung_threads()  # other tests' readers may still have theirs
    fake, reader = reader_for("h100-sxm*2")
    fake.gpus[1].faults = {"nvmlDeviceGetPowerUsage": "HANG"}
    try:
        for _ in range(3):
            assert reader.read_all(timeout=0.2)[1] == {"up": 0, "late": 1}
            fake.gpus[0].faults = {"nvmlDeviceGetUtilizationRates": "DRIVER_NOT_LOADED"}
            assert reader.read_all(timeout=0.5) == {} and not reader.up  # NVML down: the reader starts over
            fake.gpus[0].faults = {}
            assert reader.retry_start(now=float("inf"))
        assert reader.read_all(timeout=0.2)[1] == {"up": 0, "late": 1}
        assert hung_threads() - before == 1
    finally:
        fake.gpus[1].faults = {}
        reader.close()


def test_nvml_initialisation_is_retried_with_backoff(tmp_path):
    scenario = tmp_path / "s.json"
    scenario.write_text('{"init_error": "DRIVER_NOT_LOADED", "gpus": [{"preset": "a100"}]}')
    reader = NvmlReader(simulated.from_spec(str(scenario))).start()
    assert not reader.up and reader.read_all() == {}
    assert not reader.retry_start()  # the backoff has not passed
    scenario.write_text('{"gpus": [{"preset": "a100"}]}')  # modprobe nvidia
    assert not reader.retry_start()
    assert reader.retry_start(now=reader._next_init)
    assert reader.up and reader.read_all()[0]["up"] == 1 and reader.problem is None


def test_old_bindings_fall_back_to_the_throttle_reasons_call(monkeypatch):
    fake, reader = reader_for("h100-sxm")
    fake.gpus[0].values["clocks_event_reasons"] = 0x40
    # an nvidia-ml-py older than 12.535 has only the deprecated name
    monkeypatch.setattr(
        type(fake),
        "nvmlDeviceGetCurrentClocksThrottleReasons",
        simulated.SimulatedNvml.nvmlDeviceGetCurrentClocksEventReasons,
        raising=False,
    )
    monkeypatch.delattr(simulated.SimulatedNvml, "nvmlDeviceGetCurrentClocksEventReasons")
    real = simulated._real
    monkeypatch.delattr(real, "nvmlDeviceGetCurrentClocksEventReasons")
    assert not hasattr(fake, "nvmlDeviceGetCurrentClocksEventReasons")
    active = reader.read_all()[0]["clocks_event_active"]
    assert active["hw_thermal_slowdown"] == 1 and sum(active.values()) == 1


def test_without_nvml_the_reader_is_down_and_reads_nothing():
    # the real nvidia-ml-py on this GPU-less machine: libnvidia-ml is missing
    reader = NvmlReader().start()
    assert not reader.up and "NVML" in reader.problem
    assert reader.read_all() == {} and reader.read_energy_joules(0) is None
    reader.close()


def test_init_failure_from_scenario(tmp_path):
    scenario = tmp_path / "s.json"
    scenario.write_text('{"init_error": "DRIVER_NOT_LOADED"}')
    reader = NvmlReader(simulated.from_spec(str(scenario))).start()
    assert not reader.up and "Driver Not Loaded" in reader.problem


def test_xid_events_are_counted_per_code_and_kept_while_the_gpu_is_down():
    fake, reader = reader_for("h100-sxm,a100")
    sampler = Sampler(reader, None, interval=1)
    first = sampler.sample_now()
    assert first.gpus[0]["xid_errors"] == {} and first.gpus[0]["last_xid_code"] == 0
    fake.inject_xid(1, 79)
    fake.inject_xid(1, 79)
    fake.inject_xid(0, 94)
    fake.gpus[1].lost = True
    snapshot = sampler.sample_now()
    assert snapshot.gpus[1]["up"] == 0
    # keyed by code and NVIDIA's catalogue class: 79 reboot (critical), 94 contained ECC: restart the app
    assert snapshot.gpus[1]["xid_errors"] == {("79", "critical"): 2} and snapshot.gpus[1]["last_xid_code"] == 79
    assert snapshot.gpus[0]["xid_errors"] == {("94", "application"): 1}


def test_sampler_thread_samples_and_windows_aggregate():
    fake, reader = reader_for("a100")
    sampler = Sampler(reader, HostReader(), interval=0.05).start()
    try:
        window = sampler.open_window()
        fake.gpus[0].values.update(utilization_gpu=50, clocks_event_reasons=0x4)
        sampler.sample_now()
        fake.gpus[0].values.update(utilization_gpu=100, clocks_event_reasons=0x0)
        sampler.sample_now()
        sampler.close_window(window)
        assert sampler.alive
    finally:
        sampler.stop()
    assert not sampler.alive
    assert window.samples >= 2
    stats = window.gpu[0]["utilization_ratio"]
    assert stats.max == 1.0 and 0.5 <= stats.mean < 1.0
    fraction = window.clocks_event_fraction(0)
    assert 0 < fraction["sw_power_cap"] < 1 and fraction["hw_slowdown"] == 0
    assert window.host["cpu_utilization_ratio"].count == window.samples


def test_fake_spec_rejects_unknown_presets():
    with pytest.raises(ValueError, match="unknown preset 'h900'"):
        simulated.from_spec("h900")


def test_the_simulated_nvml_keeps_the_real_pynvml_signatures():
    # the fake is only useful while it looks like the binding: same function names, same parameters
    import inspect

    import pynvml

    faked = [name for name in vars(simulated.SimulatedNvml) if name.startswith("nvml")]
    assert len(faked) > 25
    for name in faked:
        real = getattr(pynvml, name, None)
        assert real is not None, f"pynvml has no {name}"
        ours = list(inspect.signature(getattr(simulated.SimulatedNvml, name)).parameters)[1:]  # minus self
        theirs = list(inspect.signature(inspect.unwrap(real)).parameters)
        assert len(ours) == len(theirs), f"{name}{tuple(ours)} vs pynvml {name}{tuple(theirs)}"


def test_every_nvml_call_the_reader_makes_exists_in_the_binding():
    import pynvml

    fake, reader = reader_for("h100-sxm")
    called = set()
    original = reader.call

    def spy(index, call, *args, **kwargs):
        called.add(call)
        return original(index, call, *args, **kwargs)

    reader.call = spy
    reader.read_all()
    assert len(called) >= 15
    for call in called:
        assert hasattr(pynvml, call), call
