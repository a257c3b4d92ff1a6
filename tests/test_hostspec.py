"""Host specs: the free-text and strict forms and stack.yml read; a recorded EPYC host (tests/fixtures/hosts/epyc7543,
sources in its README) and this machine's own /proc, /sys and os-release read through the one reader; each
mismatch a FAIL with the expected and the found value; what the host cannot answer a SKIP with its reason."""

import json
import os
import platform
import shutil
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from dlbench.errors import UserError
from dlbench.hostspec import compare, facts, spec, units, write
from dlbench.hostspec.reader import HostReader, RecordedHost
from dlbench.nvml.reader import NvmlReader
from dlbench.checks import FAIL, PASS, SKIP, WARN
from validate_support import simulated_nvml

HOSTS = Path(__file__).parent / "fixtures" / "hosts"
EPYC = HOSTS / "epyc7543"
EXAMPLE = HOSTS / "example-spec.yml"
REPO = Path(__file__).resolve().parents[1]


def _gpus(count=4, preset="a100", driver="535.54.03"):
    fake = simulated_nvml(*[{"preset": preset}] * count)
    fake.driver_version = driver
    return NvmlReader(fake, watch_xid=False).start()


def _check(spec_path=EXAMPLE, host=EPYC, **gpus):
    reader = _gpus(**gpus)
    try:
        results = compare.check(spec.load(spec_path), facts.collect(RecordedHost(host), nvml_reader=reader))
    finally:
        reader.close()
    return {r.id: r for r in results}


def _copy_host(tmp_path) -> Path:
    host = tmp_path / "host"
    shutil.copytree(EPYC, host)
    return host


def _spec_file(tmp_path, document) -> Path:
    path = tmp_path / "host.yml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, allow_unicode=True))
    return path


# --- reading specs ----------------------------------------------------------------------------------------------
def test_the_issue_example_parses_into_every_field():
    parsed = spec.load(EXAMPLE)
    hardware, software = parsed["hardware"], parsed["software"]
    assert hardware["cpu"] == {"model": "AMD EPYC 7543", "sockets": None, "cores": 32, "threads": 64}
    assert hardware["gpu"][0]["count"] == 4 and hardware["gpu"][0]["memory_bytes"] == 80 * 2**30
    assert hardware["ram"] == {"bytes": 512 * 2**30, "type": "DDR4", "ecc": True}
    assert [(d["type"], d["bytes"]) for d in hardware["storage"]] == [
        ("NVMe SSD", 2 * 10**12),
        ("SATA SSD", 8 * 10**12),
    ]
    assert hardware["network"][0]["speed_mbps"] == 100_000 and hardware["network"][0]["rdma"] == "RoCE"
    assert software["os"] == {"name": "Ubuntu", "version": "22.04"}
    assert software["pytorch"] == "2.0.0" and software["pytorch_cuda"] == "12.1"
    assert software["nvidia_container_toolkit"] == "1.13.1" and software["grafana"] == "9.4.7"


@pytest.mark.parametrize(
    "text, count, model",
    [
        ("NVIDIA A100 80GB × 4", 4, "NVIDIA A100"),
        ("4x H100", 4, "H100"),
        ("RTX A6000", 1, "RTX A6000"),
        ("8 × NVIDIA H200", 8, "NVIDIA H200"),
    ],
)
def test_gpu_counts_as_people_write_them(tmp_path, text, count, model):
    gpu = spec.load(_spec_file(tmp_path, {"hardware": {"gpu": text}}))["hardware"]["gpu"][0]
    assert (gpu["count"], gpu.get("match", gpu["model"]).strip()) == (count, model)


def test_units_follow_each_trade():
    assert units.size_bytes("2TB") == 2 * 10**12  # storage vendors: decimal
    assert units.size_bytes("1.8T") == int(1.8 * 2**40)  # lsblk: binary
    assert units.size_bytes("512GB", memory=True) == 512 * 2**30  # JEDEC memory units
    assert units.speed_mbps("100GbE RoCE") == 100_000 and units.speed_mbps("25 Gb/s") == 25_000
    # disk datasheets: decimal bytes a second; bits (a network's Gb/s) are no disk rate
    assert units.rate_gbps("6800 MB/s") == 6.8 and units.rate_gbps("2GiB/s") == 2**31 / 1e9
    assert units.rate_gbps("25 Gb/s") is None
    assert units.version_satisfies("12.1.105", "12.1") and not units.version_satisfies("12.10", "12.1")
    assert units.version_satisfies("590.44.01", ">=580") and not units.version_satisfies("575.51.03", ">=580")
    assert units.version_satisfies("580.95.05", ">=580.65.06,<581")
    assert not units.version_satisfies("590.44.01", ">=580.65.06,<581")


def test_stack_yml_reads_as_a_spec_of_the_project_pins():
    software = spec.load(REPO / "stack.yml")["software"]
    stack = yaml.safe_load((REPO / "stack.yml").read_text())
    branch = int(stack["stack_driver_branch"])
    assert software["nvidia_driver"] == f">={stack['stack_torch_driver_floor']},<{branch + 1}"
    assert software["pytorch"] == stack["stack_torch_version"]
    assert software["cudnn"] == stack["stack_cudnn_major"]
    assert software["nvidia_container_toolkit"] == stack["stack_container_toolkit_version"]


@pytest.mark.parametrize(
    "document, field, form",
    [
        ({"hardware": {"ram": "lots"}}, "hardware.ram", "512GB DDR4 ECC"),
        ({"hardware": {"storage": [{"type": "floppy", "size": "2TB"}]}}, "hardware.storage[0]", "NVMe SSD"),
        # a disk's rate is in bytes a second: 25 Gb/s is a network's bits
        ({"hardware": {"storage": ["NVMe SSD 2TB, read 25Gb/s"]}}, "hardware.storage[0]", "read 6.8GB/s"),
        ({"hardware": {"storage": ["NVMe SSD 2TB, read fast"]}}, "hardware.storage[0]", "read 6.8GB/s"),
        # a fraction of nothing, or above the figure itself
        (
            {"hardware": {"storage": [{"type": "SSD", "size": "2TB", "fraction": 0.5}]}},
            "hardware.storage[0]",
            "fraction",
        ),
        (
            {"hardware": {"storage": [{"type": "SSD", "size": "2TB", "write": "2GB/s", "fraction": 2}]}},
            "hardware.storage[0]",
            "fraction",
        ),
        ({"hardware": {"network": "fast RoCE"}}, "hardware.network", "100GbE"),
        ({"hardware": {"gpu": [{"model": "A100", "count": "four"}]}}, "hardware.gpu[0]", "× count"),
        ({"software": {"nvidia_driver": "latest"}}, "software.nvidia_driver", ">=580"),
        ({"software": {"containers": {"docker": "new"}}}, "software.docker", ">=580"),
        ({"hardwre": {"cpu": "EPYC"}, "software": {}}, "hardwre", "known: hardware"),
        ({"hardware": {"disk": "2TB"}}, "hardware.disk", "known: cpu, gpu"),
    ],
)
def test_an_unreadable_field_is_one_line_naming_it_and_the_forms_exit_2(dlbench_cli, tmp_path, document, field, form):
    path = _spec_file(tmp_path, document)
    with pytest.raises(UserError, match=field.replace("[", r"\[").replace("]", r"\]")):
        spec.load(path)
    done = dlbench_cli("env", "--spec", path, "--write-spec", tmp_path / "written.yml")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and field in done.stderr and form in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "written.yml").exists()


# --- the recorded EPYC host -------------------------------------------------------------------------------------
def test_the_recorded_host_reads_as_its_parts():
    host = facts.collect(RecordedHost(EPYC), nvml_reader=_gpus())
    assert host["cpu"] == {"model": "AMD EPYC 7543 32-Core Processor", "cores": 32, "threads": 64, "sockets": 1}
    assert host["memory"]["installed_bytes"] == 512 * 2**30 and host["memory"]["type"] == "DDR4"
    assert host["memory"]["ecc"] is True
    assert [(d["name"], d["type"]) for d in host["storage"]] == [("nvme0n1", "NVMe SSD"), ("sda", "SATA SSD")]
    assert {n["name"]: (n["speed_mbps"], n["rdma"]) for n in host["network"]} == {
        "eno1": (1000, None),
        "ens1f0np0": (100_000, "RoCE"),
        "ens1f1np1": (None, "RoCE"),
    }


def test_a_host_that_matches_the_example_passes_every_field():
    results = _check()
    assert len(results) == 21
    assert {r.verdict for r in results.values()} == {PASS}, [r for r in results.values() if r.verdict != PASS]


def test_one_gpu_missing_fails_with_expected_and_found():
    gpu = _check(count=3)["spec.gpu_1"]
    assert gpu.verdict == FAIL and gpu.expected == "4 × NVIDIA A100 80GB" and gpu.measured == "3 × NVIDIA A100 80GB"
    assert "A100-SXM4-80GB" in gpu.detail


def test_a_different_gpu_model_fails():
    results = _check(preset="h100-sxm")
    assert results["spec.gpu_1"].verdict == FAIL and "H100" in results["spec.gpu_1"].detail


def test_half_the_ram_fails_with_expected_and_found(tmp_path):
    host = _copy_host(tmp_path)
    commands = json.loads((host / "commands.json").read_text())
    stanzas = commands["dmidecode --type 17"].split("\n\n")
    filled = [i for i, s in enumerate(stanzas) if "Size: 64 GB" in s]
    for i in filled[4:]:  # four of the eight modules gone
        stanzas[i] = stanzas[i].replace("Size: 64 GB", "Size: No Module Installed")
    commands["dmidecode --type 17"] = "\n\n".join(stanzas)
    (host / "commands.json").write_text(json.dumps(commands))
    ram = _check(host=host)["spec.ram_size"]
    assert ram.verdict == FAIL and ram.measured == "256.0 GiB" and ram.expected.startswith("512GB")
    assert "expected 512GB, found 256.0 GiB" in ram.detail


def test_without_dmidecode_memtotal_is_judged_with_its_tolerance_and_type_and_ecc_skip(tmp_path):
    host = _copy_host(tmp_path)
    commands = json.loads((host / "commands.json").read_text())
    denied = {"error": "/sys/firmware/dmi/tables/smbios_entry_point: Permission denied"}
    commands.update({"dmidecode --type 16": denied, "dmidecode --type 17": denied})
    (host / "commands.json").write_text(json.dumps(commands))
    shutil.rmtree(host / "sys/devices/system/edac")
    results = _check(host=host)
    # MemTotal 503.5 GiB of 512: within the 5% firmware/kernel reservation tolerance
    assert results["spec.ram_size"].verdict == PASS and "MemTotal" in results["spec.ram_size"].expected
    assert results["spec.ram_type"].verdict == SKIP and "Permission denied" in results["spec.ram_type"].detail
    assert results["spec.ram_ecc"].verdict == SKIP and "no EDAC" in results["spec.ram_ecc"].detail
    meminfo = host / "proc/meminfo"
    meminfo.write_text(meminfo.read_text().replace("527958116", str(480 * 2**20)))  # 480 GiB: a module missing
    assert _check(host=host)["spec.ram_size"].verdict == FAIL


def test_a_sata_disk_where_nvme_was_ordered_fails(tmp_path):
    host = _copy_host(tmp_path)
    (host / "sys/block/nvme0n1").rename(host / "sys/block/sdb")
    (host / "sys/block/sdb/device/vendor").write_text("ATA     \n")
    storage = _check(host=host)["spec.storage_1"]
    assert storage.verdict == FAIL and storage.expected == "1 × NVMe SSD of 2.00TB ±3%" and storage.measured == "none"
    assert "sdb SATA SSD 2.00TB" in storage.detail
    assert _check(host=host)["spec.storage_2"].verdict == PASS  # the 8TB SATA SSD is still what was ordered


def test_storage_sizes_tolerate_vendor_and_binary_units(tmp_path):
    assert _check(_spec_file(tmp_path, {"hardware": {"storage": ["NVMe SSD 1.8T"]}}))["spec.storage_1"].verdict == PASS
    assert _check(_spec_file(tmp_path, {"hardware": {"storage": ["NVMe SSD 2TiB"]}}))["spec.storage_1"].verdict == FAIL
    assert _check(_spec_file(tmp_path, {"hardware": {"storage": ["2 × SSD 2TB"]}}))["spec.storage_1"].verdict == FAIL


def test_a_100gbe_link_down_or_without_rdma_fails(tmp_path):
    host = _copy_host(tmp_path)
    (host / "sys/class/net/ens1f0np0/speed").write_text("25000\n")  # trained down to 25G
    network = _check(host=host)["spec.network_1"]
    assert (
        network.verdict == FAIL
        and "ens1f0np0 25Gb/s RoCE" in network.detail
        and "ens1f1np1 link down" in network.detail
    )
    infiniband = _spec_file(tmp_path, {"hardware": {"network": "100Gb InfiniBand"}})
    assert _check(infiniband)["spec.network_1"].verdict == FAIL  # RoCE is not InfiniBand


def test_an_older_driver_fails_exact_and_minimum(tmp_path):
    driver = _check(driver="530.30.02")["spec.nvidia_driver"]
    assert driver.verdict == FAIL and driver.expected == "== 535.54.03" and driver.measured == "530.30.02"
    minimum = _spec_file(tmp_path, {"software": {"nvidia_driver": ">=580"}})
    assert _check(minimum, driver="575.51.03")["spec.nvidia_driver"].verdict == FAIL
    assert _check(minimum, driver="590.44.01")["spec.nvidia_driver"].verdict == PASS


def test_what_the_host_cannot_answer_is_skip_with_the_reason(tmp_path):
    host = _copy_host(tmp_path)
    commands = json.loads((host / "commands.json").read_text())
    del commands["docker version --format {{.Server.Version}}"]
    (host / "commands.json").write_text(json.dumps(commands))
    (host / "python.json").unlink()
    results = _check(host=host)
    assert results["spec.docker"].verdict == SKIP and results["spec.docker"].detail == "docker is not installed"
    assert results["spec.pytorch"].verdict == SKIP and "torch is not installed" in results["spec.pytorch"].detail
    reader = NvmlReader(simulated_nvml(), watch_xid=False)  # no GPU driver at all
    reader.nvml.init_error = "LIBRARY_NOT_FOUND"
    results = {
        r.id: r
        for r in compare.check(spec.load(EXAMPLE), facts.collect(RecordedHost(EPYC), nvml_reader=reader.start()))
    }
    assert results["spec.gpu_1"].verdict == SKIP and "NVML unavailable" in results["spec.gpu_1"].detail
    assert results["spec.nvidia_driver"].verdict == SKIP


def test_more_ram_than_ordered_warns(tmp_path):
    assert _check(_spec_file(tmp_path, {"hardware": {"ram": "256GB"}}))["spec.ram_size"].verdict == WARN


def test_a_written_spec_reads_back_and_passes_on_its_host(tmp_path):
    reader = _gpus(driver="580.95.05")
    host = facts.collect(RecordedHost(EPYC), nvml_reader=reader)
    path = tmp_path / "written.yml"
    path.write_text(write.to_yaml(write.spec_of(host), "epyc"))
    results = compare.check(spec.load(path), host)
    reader.close()
    assert {r.verdict for r in results} == {PASS}
    assert len(results) >= 20


# --- this machine's own files, and the command line -------------------------------------------------------------
def test_this_machines_files_read_as_the_os_reports_them():
    host = facts.collect(HostReader())
    assert host["cpu"]["threads"] == psutil.cpu_count()
    assert host["memory"]["mem_total_bytes"] == psutil.virtual_memory().total
    assert host["os"]["id"] == platform.freedesktop_os_release()["ID"]
    for disk in host["storage"]:
        assert disk["bytes"] == int(Path(f"/sys/block/{disk['name']}/size").read_text()) * 512
    physical = {name for name in os.listdir("/sys/class/net") if os.path.exists(f"/sys/class/net/{name}/device")}
    assert {link["name"] for link in host["network"]} == physical


def test_env_write_spec_then_spec_passes_on_this_machine(dlbench_cli, tmp_path):
    written = tmp_path / "host.yml"
    env = {**os.environ, "DLBENCH_FAKE_NVML": "h100-sxm*2", "COLUMNS": "200"}
    done = dlbench_cli("env", "--write-spec", written, env=env)
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(written.read_text())["hardware"]["gpu"] == [
        {"model": "NVIDIA H100 80GB HBM3", "count": 2, "memory": "80GB"}
    ]
    done = dlbench_cli("env", "--spec", written, "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["counts"][FAIL] == 0 and report["counts"][PASS] >= 5, report


def test_env_spec_against_the_recorded_host_as_a_process(dlbench_cli, tmp_path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"driver_version": "535.54.03", "gpus": [{"preset": "a100"}] * 3}))
    env = {**os.environ, "DLBENCH_FAKE_NVML": str(scenario), "DLBENCH_RECORDED_HOST": str(EPYC), "COLUMNS": "200"}
    done = dlbench_cli("env", "--spec", EXAMPLE, env=env)
    assert done.returncode == 1, done.stderr
    assert "spec.gpu_1" in done.stdout and "FAIL" in done.stdout and "3 × NVIDIA A100 80GB" in done.stdout


def test_stack_yml_as_a_spec_on_this_machine(dlbench_cli):
    env = {**os.environ, "DLBENCH_FAKE_NVML": "h100-sxm", "COLUMNS": "200"}  # driver 580.95.05
    done = dlbench_cli("env", "--spec", REPO / "stack.yml", "--json", env=env)
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["spec.nvidia_driver"]["verdict"] == PASS
    assert checks["spec.pytorch"]["verdict"] == PASS  # the venv holds the pinned torch
    import torch

    # whichever build make installed: the CPU build where it could be had, else PyPI's (CUDA) wheel, on a GPU host the
    # stack's CUDA build; the last two carry stack_torch_cuda_variant's CUDA
    cuda_check = checks["spec.pytorch_cuda"]
    if torch.version.cuda is None:
        assert cuda_check["verdict"] == SKIP and "CPU-only" in cuda_check["detail"]
    else:
        assert cuda_check["verdict"] == PASS, cuda_check


def test_write_spec_to_an_unwritable_place_is_exit_2(dlbench_cli, tmp_path):
    done = dlbench_cli("env", "--write-spec", tmp_path / "missing" / "host.yml")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_validate_spec_judges_the_spec_first_in_its_report(dlbench_cli, tmp_path):
    import jsonschema

    from dlbench.validate import writers

    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"driver_version": "535.54.03", "gpus": [{"preset": "a100"}] * 3}))
    env = {
        **os.environ,
        "DLBENCH_FAKE_NVML": str(scenario),
        "DLBENCH_RECORDED_HOST": str(EPYC),
        "CUDA_VISIBLE_DEVICES": "",
        "COLUMNS": "200",
    }
    report_path = tmp_path / "report.json"
    done = dlbench_cli("validate", "--spec", EXAMPLE, "--expect-gpus", 3, "--json", report_path, env=env)
    assert done.returncode == 1, done.stderr
    report = json.loads(report_path.read_text())
    jsonschema.Draft202012Validator(writers.json_schema()).validate(report)
    assert report["options"]["spec"] == str(EXAMPLE)
    spec_checks = [c for c in report["checks"] if c["family"] == "spec"]
    assert report["checks"][: len(spec_checks)] == spec_checks  # the idle host is read before any load
    verdicts = {c["id"]: c["verdict"] for c in spec_checks}
    assert verdicts["spec.gpu_1"] == FAIL and verdicts["spec.nvidia_driver"] == PASS
    assert verdicts["spec.ram_size"] == PASS and verdicts["spec.storage_1"] == PASS


def test_validate_with_an_unreadable_spec_is_exit_2_before_measuring(dlbench_cli, tmp_path):
    path = _spec_file(tmp_path, {"hardware": {"cpu": {"model": "EPYC", "cores": "many"}}})
    done = dlbench_cli("validate", "--spec", path, "--json", tmp_path / "report.json")
    assert done.returncode == 2 and "hardware.cpu" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize(
    "field, text, expected",
    [
        (
            "cpu",
            "Xeon 8480+ (56 cores, 112 threads)",
            {"model": "Xeon 8480+", "sockets": None, "cores": 56, "threads": 112},
        ),
        ("cpu", "2 × AMD EPYC 7543, 64C/128T", {"model": "AMD EPYC 7543", "sockets": 2, "cores": 64, "threads": 128}),
        ("gpu", "H100 80GB*8", [{"model": "H100 80GB", "match": "H100", "count": 8, "memory_bytes": 80 * 2**30}]),
        ("ram", "256 GB non-ECC", {"bytes": 256 * 2**30, "type": None, "ecc": False}),
        ("ram", {"size": "1TB", "type": "DDR5", "ecc": True}, {"bytes": 2**40, "type": "DDR5", "ecc": True}),
        (
            "network",
            "2 × 200Gb InfiniBand",
            [{"speed_mbps": 200_000, "rdma": "InfiniBand", "count": 2, "text": "2 × 200Gb InfiniBand"}],
        ),
        ("storage", ["2 × SATA SSD 8TB"], [{"type": "SATA SSD", "bytes": 8 * 10**12, "count": 2}]),
        (
            "storage",
            ["NVMe SSD 3.84TB, read 6800MB/s, write 4GB/s"],
            [{"type": "NVMe SSD", "bytes": 3.84e12, "count": 1, "read_gbps": 6.8, "write_gbps": 4.0}],
        ),
        (
            "storage",
            [{"type": "NVMe SSD", "size": "3.84TB", "read": "6.8GB/s", "write": "4GB/s", "fraction": 0.5}],
            [{"type": "NVMe SSD", "bytes": 3.84e12, "count": 1, "read_gbps": 6.8, "write_gbps": 4.0, "fraction": 0.5}],
        ),
    ],
)
def test_the_forms_the_documentation_shows_read(tmp_path, field, text, expected):
    assert spec.load(_spec_file(tmp_path, {"hardware": {field: text}}))["hardware"][field] == expected


@pytest.mark.parametrize(
    "content, message",
    [
        (b"hardware: [unclosed", "is not valid YAML"),
        (b"\xff\xfe\x00", "is not a UTF-8 text file"),
        (b"- just\n- a list\n", "not a host spec"),
    ],
)
def test_a_spec_that_is_not_a_spec_is_one_line_exit_2(dlbench_cli, tmp_path, content, message):
    path = tmp_path / "host.yml"
    path.write_bytes(content)
    done = dlbench_cli("env", "--spec", path)
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    done = dlbench_cli("env", "--spec", tmp_path / "missing.yml")
    assert done.returncode == 2 and "cannot read spec" in done.stderr


def test_models_match_whole_words_so_an_a10_is_not_an_a100(tmp_path):
    assert _check(_spec_file(tmp_path, {"hardware": {"gpu": "NVIDIA A10 × 4"}}))["spec.gpu_1"].verdict == FAIL
    assert _check(_spec_file(tmp_path, {"hardware": {"cpu": "AMD EPYC 7543P"}}))["spec.cpu_model"].verdict == FAIL


def test_an_infiniband_port_without_a_netdev_speed_reads_its_rate_and_multipath_paths_are_not_disks(tmp_path):
    host = _copy_host(tmp_path)
    (host / "sys/class/net/ens1f1np1/type").write_text("32\n")  # an IPoIB interface (ARPHRD_INFINIBAND)
    port = host / "sys/class/infiniband/mlx5_1/ports/1"
    (port / "link_layer").write_text("InfiniBand\n")
    (port / "rate").write_text("200 Gb/sec (4X HDR)\n")
    (port / "state").write_text("4: ACTIVE\n")
    path = host / "sys/block/nvme0c0n1"  # the per-controller path of nvme0n1 under native NVMe multipath
    shutil.copytree(host / "sys/block/nvme0n1", path)
    (path / "hidden").write_text("1\n")
    results = _check(
        _spec_file(
            tmp_path, {"hardware": {"network": ["200Gb InfiniBand", "100GbE RoCE"], "storage": ["NVMe SSD 2TB"]}}
        ),
        host=host,
    )
    assert (
        results["spec.network_1"].verdict == PASS
        and results["spec.network_1"].measured == "ens1f1np1 200Gb/s InfiniBand"
    )
    assert results["spec.network_2"].verdict == PASS
    assert results["spec.storage_1"].measured == "nvme0n1 NVMe SSD 2.00TB"
    written = write.spec_of(facts.collect(RecordedHost(host), nvml_reader=_gpus()))
    assert written["hardware"]["storage"][0] == {"type": "NVMe SSD", "size": "2.00TB", "count": 1}


def test_an_arm64_cpuinfo_without_a_model_name_skips_the_model(tmp_path):
    host = _copy_host(tmp_path)
    # arch/arm64/kernel/cpuinfo.c prints "processor", "BogoMIPS", "Features", "CPU implementer"... and no model name
    (host / "proc/cpuinfo").write_text(
        "".join(
            f"processor\t: {i}\nBogoMIPS\t: 2000.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n\n" for i in range(72)
        )
    )
    results = _check(_spec_file(tmp_path, {"hardware": {"cpu": "NVIDIA Grace, 72C/72T"}}), host=host)
    assert results["spec.cpu_model"].verdict == SKIP and "arm64" in results["spec.cpu_model"].detail
    assert results["spec.cpu_threads"].verdict == PASS and results["spec.cpu_cores"].verdict == PASS
    written = write.spec_of(facts.collect(RecordedHost(host), nvml_reader=_gpus()))
    assert "model" not in written["hardware"]["cpu"] and "hardware.cpu.model" in written["unanswered"]


def test_a_two_socket_order_on_a_one_socket_host_fails(tmp_path):
    results = _check(_spec_file(tmp_path, {"hardware": {"cpu": "2 × AMD EPYC 7543, 64C/128T"}}))
    assert results["spec.cpu_sockets"].verdict == FAIL and results["spec.cpu_sockets"].measured == 1
    assert results["spec.cpu_cores"].verdict == FAIL and results["spec.cpu_cores"].detail == "expected == 64, found 32"


def test_torch_is_read_from_the_python_named_with_python(dlbench_cli, tmp_path):
    import venv

    from dlbench import installed_torch

    other = tmp_path / "other-env"
    venv.EnvBuilder(with_pip=False).create(other)  # an environment without torch, like the exporter's
    written = tmp_path / "host.yml"
    assert dlbench_cli("env", "--write-spec", written, "--python", other / "bin" / "python").returncode == 0
    assert "software.pytorch: torch is not installed" in written.read_text()
    assert "pytorch:" not in yaml.safe_load(written.read_text())["software"]
    own = installed_torch.collect()
    assert dlbench_cli("env", "--write-spec", written, "--python", sys.executable).returncode == 0
    assert yaml.safe_load(written.read_text())["software"]["pytorch"] == own["version"].split("+")[0]
    done = dlbench_cli("env", "--write-spec", written, "--python", tmp_path / "nothing")
    assert done.returncode == 2 and "--python" in done.stderr


def test_nic_firmware_reads_rdma_fw_ver_and_ethtool_for_the_other_interfaces(tmp_path):
    host = _copy_host(tmp_path)
    # fw_ver as the mlx5 driver prints it (Documentation/ABI/stable/sysfs-class-infiniband): a ConnectX-6 Dx release
    for device in ("mlx5_0", "mlx5_1"):
        (host / f"sys/class/infiniband/{device}/fw_ver").write_text("22.39.1002\n")
    # `ethtool -i` of the on-board 1 GbE port (ethtool's driver-info layout, an Intel i350 NVM and EEPROM id)
    commands = json.loads((host / "commands.json").read_text())
    commands["ethtool -i eno1"] = (
        "driver: igb\nversion: 6.8.0-45-generic\nfirmware-version: 1.63, 0x800009fa\nexpansion-rom-version: \n"
        "bus-info: 0000:c1:00.0\nsupports-statistics: yes\n"
    )
    (host / "commands.json").write_text(json.dumps(commands))
    found = facts.nic_firmware(RecordedHost(host))
    # ens1f0np0 carries mlx5_0 (read once, by its RDMA name); ens1f1np1 has no ethtool answer recorded; docker0 and lo
    # are virtual
    assert found == {"mlx5_0": "22.39.1002", "mlx5_1": "22.39.1002", "eno1": "1.63, 0x800009fa"}


def test_cpu_microcode_is_the_revision_cpuinfo_prints():
    assert facts.cpu_microcode(RecordedHost(EPYC)) == "0xa0011d1"
    assert facts.cpu_microcode(RecordedHost(EPYC / "no-such-host")) is None
