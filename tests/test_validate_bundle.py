"""`dlbench validate --bundle DIR`: a run over the simulated NVML and a recorded PCI bus writes the evidence folder,
which the real `sha256sum -c` verifies; a folder that is not new or empty is refused before anything runs."""

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from validate_support import PCI_CONNECTX7, PCI_H100_SXM, PCI_NVME, aer_stats, link_files, pci_bus

SPEC = Path(__file__).parent / "fixtures" / "hosts" / "example-spec.yml"
# Kernel lines as the driver logs them (NVIDIA "XID Errors" guide: "NVRM: Xid (PCI:0000:18:00): 79, pid=..., GPU has
# fallen off the bus."), between lines of other drivers that the bundle leaves out.
DMESG = (
    "[    4.112233] mlx5_core 0000:19:00.0: firmware version: 28.39.1002\n"
    "[    5.200100] NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.54.15\n"
    "[ 8812.345678] NVRM: Xid (PCI:0000:18:00): 79, pid=4242, name=python, GPU has fallen off the bus.\n"
    "[ 8812.400000] nvme nvme0: I/O 17 QID 3 timeout, aborting\n"
)


def _env(tmp_path) -> dict:
    """Two simulated H100s, no GPU for torch, and a recorded host: its bus (an H100, a ConnectX-7, an NVMe drive, with
    AER counters and links) and its `dmesg`; nvidia-smi and lspci are not installed there."""
    root = Path(
        pci_bus(
            tmp_path / "host",
            (*PCI_H100_SXM, aer_stats()),
            (*PCI_CONNECTX7, {**aer_stats(), **link_files(16, 16)}),
            (*PCI_NVME, {**aer_stats(), **link_files(4, 4, "16.0 GT/s PCIe", "16.0 GT/s PCIe")}),
        )
    )
    (root / "commands.json").write_text(json.dumps({"dmesg": DMESG}))
    return {
        **os.environ,
        "DLBENCH_FAKE_NVML": "h100-sxm*2",
        "CUDA_VISIBLE_DEVICES": "",
        "COLUMNS": "200",
        "DLBENCH_RECORDED_HOST": str(root),
    }


def test_a_bundle_holds_the_evidence_and_verifies_with_sha256sum(dlbench_cli, tmp_path):
    bundle = tmp_path / "evidence"
    argv = ["validate", "--spec", str(SPEC), "--bundle", str(bundle)]
    done = dlbench_cli(*argv, env=_env(tmp_path), cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr  # a verdict either way; the spec is another host's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evidence", "host"]  # no staging folder left behind
    names = sorted(p.name for p in bundle.iterdir())
    assert names == [
        "NOTES.txt",
        "SHA256SUMS",
        "command.txt",
        "dmesg-nvrm-xid.txt",
        "measurements.json",
        "report.json",
        "report.xml",
        "spec.yml",
    ]
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == len(names) - 1

    report = json.loads((bundle / "report.json").read_text())
    assert report["exit_code"] == done.returncode and "link.pcie_aer" in {c["id"] for c in report["checks"]}
    raw = json.loads((bundle / "measurements.json").read_text())
    assert set(raw["nvml_before_load"]) == {"0", "1"} and raw["load_windows"]
    assert raw["aer_before_load"]["0000:19:00.0"] == {"correctable": 0, "nonfatal": 0, "fatal": 0}
    assert (bundle / "dmesg-nvrm-xid.txt").read_text().splitlines() == DMESG.splitlines()[1:3]
    assert (bundle / "spec.yml").read_text() == SPEC.read_text()
    notes = (bundle / "NOTES.txt").read_text()
    assert "nvidia-smi -q: nvidia-smi is not installed" in notes and "lspci -vv: lspci is not installed" in notes

    # the command re-runs as it ran (into a fresh folder: the first one is the evidence now)
    command = (bundle / "command.txt").read_text()
    assert command == f"cd {shlex.quote(str(tmp_path))} && dlbench {shlex.join(argv)}\n"


def test_a_tampered_bundle_fails_sha256sum(tmp_path):
    from dlbench.validate import bundle

    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "report.json").write_text('{"verdict": "FAIL"}\n')
    (folder / bundle.MANIFEST).write_text(bundle.manifest(folder))
    assert subprocess.run(["sha256sum", "-c", "--quiet", bundle.MANIFEST], cwd=folder).returncode == 0
    (folder / "report.json").write_text('{"verdict": "PASS"}\n')
    assert (
        subprocess.run(["sha256sum", "-c", "--quiet", bundle.MANIFEST], cwd=folder, capture_output=True).returncode == 1
    )


@pytest.mark.parametrize(
    "prepare,message",
    [
        (lambda d: (d.mkdir(), (d / "old.txt").write_text("x")), "the folder is not empty"),
        (lambda d: d.write_text("x"), "exists and is not a folder"),
        (lambda d: None, "does not exist"),
    ],
)
def test_a_bundle_folder_that_is_not_new_or_empty_is_refused_in_one_line(dlbench_cli, tmp_path, prepare, message):
    target = tmp_path / "evidence"
    prepare(target)
    if message == "does not exist":
        target = tmp_path / "missing" / "evidence"
    done = dlbench_cli("validate", "--bundle", target, env=_env(tmp_path))
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""  # refused before any check ran


def test_an_empty_folder_is_replaced_by_the_bundle(tmp_path, monkeypatch):
    from dlbench.validate import bundle, runner
    from dlbench.validate.context import Context, Options

    target = tmp_path / "evidence"
    target.mkdir()
    bundle.check_target(target)
    monkeypatch.setattr(runner, "families", lambda ctx: [])
    from dlbench.hostspec.reader import RecordedHost

    ctx = Context(Options(cpu=True), host=RecordedHost(pci_bus(tmp_path / "host", PCI_H100_SXM)))
    report = runner.validate(ctx)
    monkeypatch.chdir(tmp_path)
    bundle.write(target, report, ctx, ["validate", "--bundle", "evidence"])
    assert (target / "SHA256SUMS").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["evidence", "host"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_folder_filled_during_the_run_keeps_the_bundle_beside_it(tmp_path, monkeypatch):
    from dlbench.errors import UserError
    from dlbench.hostspec.reader import RecordedHost
    from dlbench.validate import bundle, runner
    from dlbench.validate.context import Context, Options

    target = tmp_path / "evidence"
    bundle.check_target(target)
    monkeypatch.setattr(runner, "families", lambda ctx: [])
    ctx = Context(Options(cpu=True), host=RecordedHost(pci_bus(tmp_path / "host", PCI_H100_SXM)))
    report = runner.validate(ctx)
    target.mkdir()
    (target / "someone-elses.txt").write_text("x")
    with pytest.raises(
        UserError, match=r"Directory not empty \(it changed during the run\); the complete bundle is in"
    ) as refused:
        bundle.write(target, report, ctx, ["validate"])
    kept = Path(str(refused.value).rsplit(" ", 1)[1])
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=kept).returncode == 0
    assert sorted(p.name for p in target.iterdir()) == ["someone-elses.txt"]
