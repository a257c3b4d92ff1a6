"""`dlbench validate` as a user runs it: exit codes, the JSON report against its schema, the JUnit XML as CI test
reporters read it (junitparser, the reader of e.g. the publish-unit-test-result GitHub Action), the stack checks."""

import json
import os

import jsonschema
import junitparser
import pytest

from dlbench.errors import UserError
from dlbench.hostspec import facts
from dlbench.hostspec.reader import HostReader
from dlbench.validate import stack, writers
from dlbench.checks import FAIL, PASS, SKIP, WARN, CheckResult
from dlbench.validate.report import Report
from validate_support import PCI_H100_NVSWITCH, PCI_H100_SXM, PCI_INTEL_VTD, context, pci_bus

NO_DRIVER = json.dumps({"init_error": "LIBRARY_NOT_FOUND"})


def _env(tmp_path, nvml: str, pci=(PCI_INTEL_VTD,)) -> dict:
    """The environment of a run: NVML simulated (a preset list, or a scenario written to a file), no GPU for torch,
    the PCI bus read from a tree under tmp_path (DLBENCH_RECORDED_HOST) instead of this machine's."""
    if nvml.startswith("{"):
        scenario = tmp_path / "scenario.json"
        scenario.write_text(nvml)
        nvml = str(scenario)
    return {
        **os.environ,
        "DLBENCH_FAKE_NVML": nvml,
        "CUDA_VISIBLE_DEVICES": "",
        "COLUMNS": "200",
        "DLBENCH_RECORDED_HOST": pci_bus(tmp_path / "host", *pci),
    }


def _schema_validator():
    return jsonschema.Draft202012Validator(writers.json_schema(), format_checker=jsonschema.FormatChecker())


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(writers.json_schema())


def test_every_family_validate_can_run_is_a_family_the_report_schema_names(tmp_path):
    """Every option on, so every family is scheduled: a family missing from the schema's enum makes the reports of a
    host that ran it fail the schema users validate them with."""
    from dlbench.validate import runner

    ctx = context(
        level="long",
        burn_in_seconds=60.0,
        spec={"hardware": {}},
        spec_path=tmp_path / "spec.yml",
        image="img",
        data_dir=tmp_path,
    )
    scheduled = {family for family, _ in runner.families(ctx)}
    named = set(writers.json_schema()["$defs"]["check"]["properties"]["family"]["enum"])
    assert {"spec", "storage", "container", "burnin", "link"} <= scheduled
    assert scheduled - named == set()


def test_a_host_without_gpus_passes_its_host_checks_and_skips_the_gpu_checks(dlbench_cli, tmp_path):
    report_path, junit_path = tmp_path / "report.json", tmp_path / "report.xml"
    done = dlbench_cli("validate", "--json", report_path, "--junit", junit_path, env=_env(tmp_path, NO_DRIVER))
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(report_path.read_text())
    _schema_validator().validate(report)
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["inventory.gpu_count"]["verdict"] == SKIP
    assert "NVML unavailable" in checks["inventory.gpu_count"]["detail"]
    assert checks["stack.torch_version"]["verdict"] == PASS and checks["stack.torch_version"]["source"] == "stack.yml"
    assert checks["compute.matmul_bf16"]["verdict"] == "INFO" and checks["compute.matmul_bf16"]["measured"] > 0
    assert "compute.matmul_bf16" in done.stderr  # progress while it runs
    assert "dlbench validate" in done.stdout  # the table at the end
    suites = junitparser.JUnitXml.fromfile(str(junit_path))
    cases = [case for suite in suites for case in suite]
    assert len(cases) == len(report["checks"])
    skipped = [c for c in cases if c.result and isinstance(c.result[0], junitparser.Skipped)]
    assert len(skipped) == report["counts"][SKIP]


def test_gpus_on_the_pci_bus_without_a_working_driver_fail_the_inventory(dlbench_cli, tmp_path):
    """An H100 on the bus while NVML cannot load (no driver, or one built for another kernel) is no CPU-only host."""
    report_path = tmp_path / "report.json"
    done = dlbench_cli(
        "validate",
        "--json",
        report_path,
        env=_env(tmp_path, NO_DRIVER, pci=(PCI_INTEL_VTD, PCI_H100_NVSWITCH, PCI_H100_SXM)),
    )
    assert done.returncode == 1, done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    report = json.loads(report_path.read_text())
    _schema_validator().validate(report)
    count = {c["id"]: c for c in report["checks"]}["inventory.gpu_count"]
    assert count["verdict"] == FAIL
    assert count["detail"] == (
        "1 NVIDIA GPU(s) on the PCI bus (0000:18:00.0) but none in NVML: "
        "NVML unavailable (NVML Shared Library Not Found)"
    ), count["detail"]
    assert "1 NVIDIA GPU(s) on the PCI bus" in done.stdout  # the table says why


@pytest.mark.parametrize(
    "functions, seen",
    [
        (None, None),
        ((), []),
        ((PCI_INTEL_VTD, PCI_H100_NVSWITCH), []),
        ((PCI_H100_NVSWITCH, PCI_H100_SXM), ["0000:18:00.0"]),
    ],
)
def test_the_pci_bus_shows_nvidia_gpus_but_not_nvswitches_and_cannot_tell_without_sys(tmp_path, functions, seen):
    """No /sys/bus/pci (a chroot, some containers) is "cannot tell" (None), not "no GPU"."""
    root = tmp_path / "host"
    root.mkdir()
    if functions is not None:
        pci_bus(root, *functions)
    assert facts.nvidia_pci_gpus(HostReader(root)) == seen


def test_missing_gpus_fail_with_exit_code_1_and_junit_failures(dlbench_cli, tmp_path):
    report_path, junit_path = tmp_path / "report.json", tmp_path / "report.xml"
    done = dlbench_cli(
        "validate",
        "--expect-gpus",
        8,
        "--expect-model",
        "H100",
        "--json",
        report_path,
        "--junit",
        junit_path,
        env=_env(tmp_path, "h100-sxm*2"),
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(report_path.read_text())
    _schema_validator().validate(report)
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["inventory.gpu_count"]["verdict"] == FAIL and checks["inventory.gpu_count"]["measured"] == 2
    assert checks["inventory.gpu_model"]["verdict"] == PASS
    # NVML sees two GPUs, torch none (CUDA_VISIBLE_DEVICES=""): the stack is broken for training
    assert checks["stack.gpus_visible"]["verdict"] == FAIL
    assert report["environment"]["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    failures = [
        case
        for suite in junitparser.JUnitXml.fromfile(str(junit_path))
        for case in suite
        if case.result and isinstance(case.result[0], junitparser.Failure)
    ]
    assert {f"{c.classname}.{c.name}" for c in failures} == {
        f"dlbench.validate.{c['id']}" for c in report["checks"] if c["verdict"] == FAIL
    }
    assert "expected: == 8" in failures[[c.name for c in failures].index("gpu_count")].result[0].text


@pytest.mark.parametrize(
    "args,message",
    [
        (("--burn-in", "soon"), "duration must look like 90s, 30m, 1h or 1h30m"),
        (("--stack", "/nonexistent/stack.yml"), "--stack /nonexistent/stack.yml: no such file"),
        (("--json", "/nonexistent/dir/report.json"), "directory /nonexistent/dir does not exist"),
        (("--peer-tolerance", "5"), "must be between 0 and 1"),
        (("summarize", "/nonexistent"), "/nonexistent: not a folder of reports"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(dlbench_cli, args, message):
    done = dlbench_cli("validate", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_an_invalid_stack_file_is_refused_before_anything_runs(tmp_path):
    bad = tmp_path / "stack.yml"
    bad.write_text("stack_driver_branch: [580\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        stack.load_stack(bad)
    bad.write_text("something: else\n")
    with pytest.raises(UserError, match="not a dlbench stack spec"):
        stack.load_stack(bad)


def test_a_stack_file_that_is_not_text_is_one_line_and_exit_code_2(dlbench_cli, tmp_path):
    binary = tmp_path / "stack.yml"
    binary.write_bytes(b"\xff\xfe\x00stack")  # a UTF-16 file, or any binary dropped by mistake
    done = dlbench_cli("validate", "--stack", binary)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--stack {binary} is not a UTF-8 text file" in done.stderr


@pytest.mark.parametrize(
    "driver,cuda,verdict",
    [
        ("580.95.05", "13.0", PASS),
        ("580.65.06", "13.0", PASS),
        ("580.10.01", "13.0", WARN),
        ("575.51.03", "13.0", FAIL),
        ("525.60.13", "12.8", WARN),
        ("520.61.05", "12.8", FAIL),
        ("570.26", "12.8", PASS),
    ],
)
def test_driver_floor_per_cuda_release(driver, cuda, verdict):
    assert stack.driver_floor_check(driver, cuda).verdict == verdict


def test_the_driver_branch_is_held_to_the_spec(tmp_path):
    spec = stack.load_stack(stack.default_stack_path())
    ctx = context({"preset": "h100-sxm"}, stack={**spec, "stack_driver_branch": "570"})
    results = {r.id: r for r in stack.run(ctx)}
    branch = results["stack.driver_branch"]
    assert branch.verdict == FAIL and branch.measured == "580" and "declares 570" in branch.detail


def test_exit_code_and_verdict_follow_the_worst_check():
    report = Report({"hostname": "h"}, {})
    report.add(CheckResult("a.b", "t", PASS))
    report.add(CheckResult("a.c", "t", SKIP, detail="why"))
    assert (report.verdict, report.exit_code) == (PASS, 0)
    report.add(CheckResult("a.d", "t", WARN))
    assert (report.verdict, report.exit_code) == (WARN, 0)
    report.add(CheckResult("a.e", "t", FAIL))
    assert (report.verdict, report.exit_code) == (FAIL, 1)


def test_a_check_that_crashes_is_a_failure_with_the_error(monkeypatch):
    from dlbench.validate import runner

    def broken(ctx):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(runner, "families", lambda ctx: [("compute", broken)])
    report = runner.validate(context())
    assert report.checks[0].id == "compute.error" and report.checks[0].verdict == FAIL
    assert "illegal memory access" in report.checks[0].detail
