"""What /metrics says: catalogue names, absence rules, dcgm-exporter units, and `promtool check metrics`.

Faked: NVML only (simulated GPUs through dlbench.nvml.simulated; no GPU here). promtool is the real one.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from dlbench.exporter import catalogue
from dlbench.nvml import simulated
from dlbench.exporter.collector import TelemetryCollector
from dlbench.exporter.host import HostReader
from dlbench.exporter.http import PROMETHEUS_ACCEPT, PrerenderedMetrics
from dlbench.nvml.reader import NvmlReader
from dlbench.exporter.sampler import Sampler

REPO = Path(__file__).resolve().parent.parent


def exposition(spec="h100-sxm,a100,rtx4090", dcgm=False, prepare=None, nvlink_per_link=False):
    fake = simulated.from_spec(spec)
    if prepare:
        prepare(fake)
    sampler = Sampler(NvmlReader(fake).start(), HostReader(), interval=1)
    sampler.sample_now()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="node1", dcgm_compat=dcgm, nvlink_per_link=nvlink_per_link))
    return generate_latest(registry).decode(), fake, sampler


def samples(text):
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def find(parsed, name, **labels):
    return [
        v for (n, ls), v in parsed.items() if n == name and all(dict(ls).get(k) == val for k, val in labels.items())
    ]


@pytest.mark.integration
def test_promtool_finds_nothing_to_say_about_the_default_output(tmp_path):
    text, fake, _ = exposition(prepare=lambda f: f.inject_xid(0, 79))
    result = subprocess.run(
        [shutil.which("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


@pytest.mark.integration
def test_promtool_only_objects_to_dcgm_exporters_own_label_names():
    text, _, _ = exposition(dcgm=True)
    result = subprocess.run(
        [shutil.which("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert complaints, "expected promtool to flag modelName/Hostname/UUID"
    for line in complaints:
        assert line.startswith(("DCGM_FI_DEV_", "DCGM_FI_PROF_")), line
        assert "camelCase" in line or "should not include type 'counter'" in line, line


def test_every_exposed_name_is_in_the_catalogue_with_its_labels():
    text, _, _ = exposition(dcgm=True, prepare=lambda f: f.inject_xid(1, 48), nvlink_per_link=True)
    known = {spec.name: spec for spec in catalogue.CATALOGUE}
    seen = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            spec = known.get(sample.name)
            assert spec is not None, f"{sample.name} is served but not in the catalogue"
            assert set(sample.labels) == set(spec.labels), sample
            seen.add(sample.name)
    for required in (
        "dlbench_gpu_info",
        "dlbench_gpu_up",
        "dlbench_gpu_energy_joules_total",
        "dlbench_gpu_clocks_event_active",
        "dlbench_gpu_xid_errors_total",
        "dlbench_host_load_average",
        "dlbench_exporter_nvml_up",
        "DCGM_FI_DEV_GPU_UTIL",
        "dlbench_gpu_nvlink_links_active",
        "dlbench_gpu_nvlink_link_state",
    ):
        assert required in seen


def test_unsupported_metrics_are_absent_for_the_consumer_card_only():
    parsed = samples(exposition()[0])
    assert len(find(parsed, "dlbench_gpu_memory_temperature_celsius")) == 2
    assert find(parsed, "dlbench_gpu_memory_temperature_celsius", gpu="2") == []
    assert find(parsed, "dlbench_gpu_ecc_errors_total", gpu="2") == []
    assert find(parsed, "dlbench_gpu_remapped_rows", gpu="2") == []
    assert find(parsed, "dlbench_gpu_power_watts", gpu="2") == [70.0]
    info = [dict(ls) for (n, ls), _ in parsed.items() if n == "dlbench_gpu_info" and dict(ls)["gpu"] == "2"]
    assert info[0]["name"] == "NVIDIA GeForce RTX 4090" and info[0]["hostname"] == "node1"


def test_dcgm_compat_uses_dcgm_exporter_units_and_labels():
    def prepare(fake):
        fake.gpus[0].values.update(
            utilization_gpu=87,
            memory_used=4096 * 2**20 + 777_777,
            sm_mhz=1755,
            power_mw=455_500,
            memory_reserved=571 * 2**20,
        )
        fake.inject_xid(0, 79)

    text = exposition("h100-sxm", dcgm=True, prepare=prepare)[0]
    parsed = samples(text)
    # DCGM's integers: 87 (not 87.00000000000001), whole MiB rounded down as DCGM divides bytes
    utilization = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith("DCGM_FI_DEV_GPU_UTIL{")]
    assert utilization == ["87.0"]
    assert find(parsed, "DCGM_FI_DEV_GPU_UTIL", gpu="0") == [87.0]
    assert find(parsed, "DCGM_FI_DEV_FB_USED", gpu="0") == [4096.0]
    assert find(parsed, "DCGM_FI_DEV_FB_RESERVED", gpu="0") == [571.0]
    used, free, reserved = (find(parsed, f"DCGM_FI_DEV_FB_{k}", gpu="0")[0] for k in ("USED", "FREE", "RESERVED"))
    assert used + free + reserved in (81559.0, 81558.0)  # the H100's total, less at most one MiB of rounding
    assert find(parsed, "dlbench_gpu_memory_reserved_bytes", gpu="0") == [571.0 * 2**20]
    assert find(parsed, "DCGM_FI_DEV_SM_CLOCK", gpu="0") == [pytest.approx(1755.0)]
    assert find(parsed, "DCGM_FI_DEV_POWER_USAGE", gpu="0") == [pytest.approx(455.5)]
    assert find(parsed, "DCGM_FI_DEV_XID_ERRORS", gpu="0") == [79.0]
    energy_mj = find(parsed, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")[0]
    assert energy_mj == pytest.approx(find(parsed, "dlbench_gpu_energy_joules_total")[0] * 1000, rel=1e-3)
    labels = dict(next(ls for (n, ls) in parsed if n == "DCGM_FI_DEV_GPU_UTIL"))
    assert labels["device"] == "nvidia0" and labels["modelName"] == "NVIDIA H100 80GB HBM3"
    assert labels["Hostname"] == "node1" and labels["DCGM_FI_DRIVER_VERSION"] == "580.95.05"
    assert labels["UUID"].startswith("GPU-")


def test_dcgm_compat_names_the_newer_families_in_dcgms_units():
    """PCIe, NVLink, ECC, retired pages, throttle durations, video engines, fan and power limits under the field
    names of dcgm_fields.h, scaled to DCGM's units (guards the scale factors: us, KB/s, %, W)."""

    def prepare(fake):
        fake.gpus[0].values.update(
            pcie_tx_kbps=12_000_000,
            pcie_rx_kbps=3_000,
            pcie_width_now=8,
            pstate=2,
            ecc_volatile_corrected=5,
            ecc_volatile_uncorrected=1,
            ecc_corrected=40,
            ecc_uncorrected=2,
            encoder_percent=35,
            decoder_percent=12,
            clocks_event_ns={"sw_power_cap": 2_500_000_000, "sync_boost": 7_000},
            nvlink={"3": {"replay": 4, "recovery": 1}, "9": {"replay": 2}},
        )
        fake.gpus[1].values.update(retired_sbe=3, retired_dbe=1, retired_pending=1)
        fake.gpus[2].values.update(fan_percent=47)
        fake.inject_xid(0, 79)

    parsed = samples(exposition("h100-sxm,v100,rtx4090", dcgm=True, prepare=prepare)[0])

    def one(name, gpu="0"):
        values = find(parsed, name, gpu=gpu)
        assert len(values) == 1, (name, gpu, values)
        return values[0]

    assert one("DCGM_FI_PROF_PCIE_TX_BYTES") == 12_000_000 * 1024  # bytes per second
    assert one("DCGM_FI_DEV_PCIE_TX_THROUGHPUT") == 12_000_000 and one("DCGM_FI_DEV_PCIE_RX_THROUGHPUT") == 3_000
    assert (one("DCGM_FI_DEV_PCIE_LINK_WIDTH"), one("DCGM_FI_DEV_PCIE_MAX_LINK_WIDTH")) == (8, 16)
    assert (one("DCGM_FI_DEV_PCIE_LINK_GEN"), one("DCGM_FI_DEV_PCIE_MAX_LINK_GEN")) == (5, 5)
    assert one("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL") == 6
    assert one("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL") == 1
    assert find(parsed, "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", gpu="2") == []  # no NVLink: absent
    assert [one(f"DCGM_FI_DEV_ECC_{k}_TOTAL") for k in ("SBE_VOL", "DBE_VOL", "SBE_AGG", "DBE_AGG")] == [5, 1, 40, 2]
    assert [one(f"DCGM_FI_DEV_RETIRED_{k}", gpu="1") for k in ("SBE", "DBE", "PENDING")] == [3, 1, 1]
    assert find(parsed, "DCGM_FI_DEV_RETIRED_SBE", gpu="0") == []  # Hopper remaps rows instead
    # nanoseconds, as DCGM passes on nvmlViolationTime_t.violationTime (NVML: "violationTime in Nanoseconds");
    # dcgm-exporter's "(in us)" help text was a documentation error, corrected to ns in its PR #589
    assert one("DCGM_FI_DEV_POWER_VIOLATION") == 2_500_000_000
    assert one("DCGM_FI_DEV_SYNC_BOOST_VIOLATION") == 7_000
    assert (one("DCGM_FI_DEV_ENC_UTIL"), one("DCGM_FI_DEV_DEC_UTIL")) == (35, 12)
    assert one("DCGM_FI_DEV_FAN_SPEED", gpu="2") == 47 and find(parsed, "DCGM_FI_DEV_FAN_SPEED", gpu="0") == []
    assert one("DCGM_FI_DEV_PSTATE") == 2
    assert one("DCGM_FI_DEV_ENFORCED_POWER_LIMIT") == 700.0
    assert [one(f"DCGM_FI_DEV_POWER_MGMT_LIMIT_{k}") for k in ("DEF", "MIN", "MAX")] == [700.0, 200.0, 700.0]
    # the owed err_code label: the last XID code, as label and value, as dcgm-exporter serves it since its #309
    assert find(parsed, "DCGM_FI_DEV_XID_ERRORS", gpu="0", err_code="79") == [79.0]
    assert find(parsed, "DCGM_FI_DEV_XID_ERRORS", gpu="1", err_code="0") == [0.0]
    # err_msg as dcgm-exporter writes it (internal/pkg/collector/xid_errors.go), so its alerts' text works
    assert find(parsed, "DCGM_FI_DEV_XID_ERRORS", gpu="0", err_msg="GPU has fallen off the bus") == [79.0]
    assert find(parsed, "DCGM_FI_DEV_XID_ERRORS", gpu="1", err_msg="No Error") == [0.0]


# NVIDIA's XID catalogue, "Resolution Bucket (Immediate Action)" (docs.nvidia.com/deploy/xid-errors/
# analyzing-xid-catalog.html): the codes the review found only warning, 46 (RESET_GPU: a drain), the NVLink family
@pytest.mark.parametrize(
    "code, expected",
    [
        (46, "critical"),
        (48, "critical"),
        (79, "critical"),
        (143, "critical"),
        (158, "critical"),
        (167, "critical"),
        (171, "critical"),
        (172, "critical"),
        (74, "critical"),
        (136, "critical"),
        (144, "critical"),
        (149, "critical"),
        (150, "critical"),
        (155, "critical"),
        (95, "critical"),
        (119, "critical"),
        (13, "application"),
        (31, "application"),
        (94, "application"),
        (43, "informational"),
        (45, "informational"),
        (63, "informational"),
        (154, "informational"),
        (157, "informational"),
        (54, "warning"),
        (1, "warning"),
        (500, "warning"),
    ],
)
def test_xid_series_carry_the_catalogue_class(code, expected):
    def prepare(fake):
        fake.inject_xid(0, code)

    parsed = samples(exposition("h100-sxm", prepare=prepare)[0])
    assert find(parsed, "dlbench_gpu_xid_errors_total", gpu="0", xid=str(code), xid_class=expected) == [1.0]
    assert len(find(parsed, "dlbench_gpu_last_xid_timestamp_seconds", gpu="0", xid=str(code), xid_class=expected)) == 1


def test_lost_gpu_keeps_identity_and_reports_down_and_errors_by_call():
    def prepare(fake):
        fake.gpus[1].lost = True
        fake.gpus[0].faults = {"nvmlDeviceGetTemperature": "TIMEOUT"}

    text, _, sampler = exposition("h100-sxm*2", prepare=prepare)
    parsed = samples(text)
    assert find(parsed, "dlbench_gpu_up", gpu="1") == [0.0]
    assert find(parsed, "dlbench_gpu_up", gpu="0") == [1.0]
    assert find(parsed, "dlbench_gpu_info", gpu="1") == [1.0]
    assert find(parsed, "dlbench_gpu_power_watts", gpu="1") == []
    assert find(parsed, "dlbench_gpu_temperature_celsius", gpu="0") == []
    assert find(parsed, "dlbench_exporter_nvml_errors_total", call="nvmlDeviceGetTemperature") == [1.0]
    assert find(parsed, "dlbench_exporter_nvml_errors_total", call="nvmlDeviceGetUtilizationRates") == [1.0]
    assert find(parsed, "dlbench_exporter_last_sample_timestamp_seconds")[0] > 0
    assert find(parsed, "dlbench_exporter_gpus") == [2.0]


def test_without_nvml_only_host_and_health_metrics_are_served():
    sampler = Sampler(NvmlReader().start(), HostReader(), interval=1)  # real pynvml, no driver here
    sampler.sample_now()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="node1"))
    parsed = samples(generate_latest(registry).decode())
    assert find(parsed, "dlbench_exporter_nvml_up") == [0.0]
    assert find(parsed, "dlbench_exporter_gpus") == [0.0]
    assert not [n for (n, _) in parsed if n.startswith("dlbench_gpu_")]
    assert find(parsed, "dlbench_host_memory_total_bytes")[0] > 0
    assert len(find(parsed, "dlbench_host_load_average")) == 3


def test_docs_metrics_md_matches_the_catalogue():
    committed = (REPO / "docs" / "metrics.md").read_text()
    assert committed == catalogue.render_markdown(), (
        "docs/metrics.md is stale: run `python -m dlbench.exporter.catalogue --markdown > docs/metrics.md`"
    )


def test_catalogue_names_follow_prometheus_conventions():
    for spec in catalogue.CATALOGUE:
        if spec.group == "dcgm":
            continue
        assert spec.name.startswith("dlbench_") and spec.name == spec.name.lower()
        assert spec.name.endswith("_total") == (spec.type == "counter"), spec.name
        if spec.unit:
            assert spec.family_name.endswith("_" + spec.unit), spec.name


def test_exporter_serves_each_sample_prerendered_and_fresh():
    import gzip
    import urllib.request

    from dlbench.exporter.server import Exporter
    from dlbench.exporter.http import PROMETHEUS_ACCEPT

    fake = simulated.from_spec("h100-sxm")
    exporter = Exporter("127.0.0.1", 0, interval=60, nvml=fake).start()  # samples only when told to here
    url = f"http://127.0.0.1:{exporter.server.port}/metrics"

    def get(path="", **headers):
        with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers)) as response:
            body = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            return response.headers["Content-Type"], body.decode()

    try:
        content_type, text = get(Accept=PROMETHEUS_ACCEPT, **{"Accept-Encoding": "gzip"})
        assert content_type.startswith("application/openmetrics-text") and text.endswith("# EOF\n")
        assert "dlbench_gpu_power_watts{" in text and "} 70.0" in text.split("dlbench_gpu_power_watts{")[1]
        fake.gpus[0].values["power_mw"] = 321_000
        assert "} 70.0" in get()[1].split("dlbench_gpu_power_watts{")[1]  # same sample, same answer
        exporter.sampler.sample_now()
        for headers in ({}, {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}):
            assert "} 321.0" in get(**headers)[1].split("dlbench_gpu_power_watts{")[1]
        # a name filter goes to prometheus_client's own app
        filtered = get("?name[]=dlbench_gpu_up")[1]
        assert "dlbench_gpu_up{" in filtered and "dlbench_gpu_power_watts" not in filtered
    finally:
        exporter.close()


@pytest.mark.integration
def test_promtool_finds_nothing_to_say_about_live_run_metrics():
    import urllib.request

    from dlbench.telemetry.observers import LiveMetricsObserver, TelemetryObserver
    from dlbench.train.observers import RunInfo

    fake = simulated.from_spec("h100-sxm")
    telemetry = TelemetryObserver(interval=0.05, nvml=fake)
    live = LiveMetricsObserver(0, telemetry=telemetry, precision="bf16")
    info = RunInfo("run-9", "gpt2", "cuda:0", 0, 8, "tokens", 6.9e11, 989.4e12)
    try:
        for o in (telemetry, live):
            o.on_start(info)
        for step in range(30):
            live.on_step(step, 0.12, 8, 3.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{live.port}/metrics") as response:
            text = response.read().decode()
    finally:
        live.close()
        telemetry.close()
    result = subprocess.run(
        [shutil.which("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    parsed = samples(text)
    assert find(parsed, "dlbench_train_samples_per_second", run_id="run-9") == [pytest.approx(8 / 0.12)]
    assert find(parsed, "dlbench_train_mfu_ratio", workload="gpt2") == [pytest.approx(8 / 0.12 * 6.9e11 / 989.4e12)]
    assert find(parsed, "dlbench_train_step_seconds_bucket", le="0.25") == [30.0]
    assert find(parsed, "dlbench_train_step_seconds_bucket", le="0.1") == [0.0]
    assert find(parsed, "dlbench_train_steps_total") == [30.0]
    assert find(parsed, "dlbench_gpu_up", gpu="0") == [1.0]  # the run's own GPU, from the shared sampler


def test_prerender_collects_once_and_encodes_only_the_forms_asked_for():
    collects = []

    class Counting(Collector):
        def collect(self):
            collects.append(1)
            yield GaugeMetricFamily("dlbench_test_value", "A value.", value=len(collects))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Counting())
    metrics = PrerenderedMetrics(registry)

    def scrape(accept):
        environ = {"HTTP_ACCEPT": accept, "HTTP_ACCEPT_ENCODING": "", "QUERY_STRING": ""}
        return b"".join(metrics(environ, lambda status, headers: None)).decode()

    openmetrics = choose_encoder(PROMETHEUS_ACCEPT)[1]
    metrics.refresh()
    assert len(collects) == 1 and set(metrics._cache) == {(openmetrics, False), (openmetrics, True)}
    assert "dlbench_test_value 2.0" in scrape("text/plain")  # not rendered ahead: collected when first asked
    assert len(collects) == 2
    metrics.refresh()  # asked for in the last interval: now rendered ahead, from the same collection
    assert len(collects) == 3 and "dlbench_test_value 3.0" in scrape("text/plain")
    assert "dlbench_test_value 3.0" in scrape(PROMETHEUS_ACCEPT) and len(collects) == 3


# dcgm-exporter's etc/default-counters.csv at NVIDIA/dcgm-exporter d5e5f51 (2026-05-12), second column, for the fields
# --dcgm-compat serves (commented lines included: they are its documented types)
DCGM_EXPORTER_TYPES = {
    "DCGM_FI_DEV_SM_CLOCK": "gauge",
    "DCGM_FI_DEV_MEM_CLOCK": "gauge",
    "DCGM_FI_DEV_MEMORY_TEMP": "gauge",
    "DCGM_FI_DEV_GPU_TEMP": "gauge",
    "DCGM_FI_DEV_POWER_USAGE": "gauge",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "counter",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": "counter",
    "DCGM_FI_DEV_GPU_UTIL": "gauge",
    "DCGM_FI_DEV_MEM_COPY_UTIL": "gauge",
    "DCGM_FI_DEV_ENC_UTIL": "gauge",
    "DCGM_FI_DEV_DEC_UTIL": "gauge",
    "DCGM_FI_DEV_XID_ERRORS": "gauge",
    "DCGM_FI_DEV_FB_FREE": "gauge",
    "DCGM_FI_DEV_FB_USED": "gauge",
    "DCGM_FI_DEV_FB_RESERVED": "gauge",
    "DCGM_FI_DEV_POWER_VIOLATION": "counter",
    "DCGM_FI_DEV_SYNC_BOOST_VIOLATION": "counter",
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": "counter",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "counter",
    "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL": "counter",
    "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL": "counter",
    "DCGM_FI_DEV_RETIRED_SBE": "counter",
    "DCGM_FI_DEV_RETIRED_DBE": "counter",
    "DCGM_FI_DEV_RETIRED_PENDING": "counter",
    "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL": "counter",
    "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL": "counter",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": "counter",
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": "counter",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": "gauge",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "gauge",
    "DCGM_FI_PROF_SM_ACTIVE": "gauge",
    "DCGM_FI_PROF_SM_OCCUPANCY": "gauge",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": "gauge",
    "DCGM_FI_PROF_DRAM_ACTIVE": "gauge",
    "DCGM_FI_PROF_PIPE_FP64_ACTIVE": "gauge",
    "DCGM_FI_PROF_PIPE_FP32_ACTIVE": "gauge",
    "DCGM_FI_PROF_PIPE_FP16_ACTIVE": "gauge",
}


def test_dcgm_compat_types_dcgms_counters_counter_in_what_prometheus_is_served():
    """Prometheus asks for OpenMetrics first, where a counter's samples must end in _total; DCGM's names do not, so
    --dcgm-compat answers in the text format (as dcgm-exporter does) with dcgm-exporter's types."""
    from dlbench.exporter.catalogue import DCGM_COUNTERS

    def prepare(fake):
        fake.inject_xid(0, 79)
        fake.gpus[0].values.update(nvlink={"3": {"replay": 4}})

    _, _, sampler = exposition("h100-sxm,v100", dcgm=True, prepare=prepare)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="node1", dcgm_compat=True))
    metrics = PrerenderedMetrics(registry, DCGM_COUNTERS)
    metrics.refresh()
    answered = {}
    body = b"".join(metrics({"HTTP_ACCEPT": PROMETHEUS_ACCEPT}, lambda status, headers: answered.update(headers)))
    assert answered["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE DCGM_"))
    served = {name: types[name] for name in DCGM_EXPORTER_TYPES if name in types}
    assert served == {name: DCGM_EXPORTER_TYPES[name] for name in served}
    assert len([t for t in served.values() if t == "counter"]) == 15  # the v100 serves the retired-page counters
    assert "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{" in text and "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION_total" not in text
    # without --dcgm-compat the exporter keeps serving OpenMetrics to Prometheus
    plain = PrerenderedMetrics(registry)
    plain.refresh()
    plain({"HTTP_ACCEPT": PROMETHEUS_ACCEPT}, lambda status, headers: answered.update(headers))
    assert answered["Content-Type"].startswith("application/openmetrics-text")


def test_dcgm_compat_answers_a_name_filtered_request_as_a_whole_scrape():
    """`/metrics?name[]=...` (Prometheus federation-style filtering, as prometheus_client supports it) must serve
    the same format and types as a whole scrape, not OpenMetrics with DCGM's counters typed gauge."""
    from dlbench.exporter.catalogue import DCGM_COUNTERS

    _, _, sampler = exposition(dcgm=True)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(sampler, hostname="node1", dcgm_compat=True))
    metrics = PrerenderedMetrics(registry, DCGM_COUNTERS)
    metrics.refresh()
    answered = {}
    query = "name[]=DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION&name[]=DCGM_FI_DEV_GPU_TEMP"
    body = b"".join(
        metrics(
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "HTTP_ACCEPT": PROMETHEUS_ACCEPT, "QUERY_STRING": query},
            lambda status, headers: answered.update(headers),
        )
    )
    assert answered["Content-Type"].startswith("text/plain; version=0.0.4")
    types = dict(line.split()[2:4] for line in body.decode().splitlines() if line.startswith("# TYPE "))
    assert types == {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "counter", "DCGM_FI_DEV_GPU_TEMP": "gauge"}
