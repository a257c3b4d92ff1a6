"""`dlbench validate --bundle DIR`: the evidence a rejected host goes back to its vendor with.

One folder: the report (report.json, report.xml), the raw measurements behind it (measurements.json: NVML before
and during every load, NVLink and AER counters before and after), what the driver and the bus say in their own
words (`nvidia-smi -q`, `lspci -vv` of the GPUs and NICs, the NVRM and Xid lines of `dmesg`), the spec the host was
held to, the command line that re-runs it (command.txt), NOTES.txt naming what could not be collected and why, and
SHA256SUMS over all of it in sha256sum's format, so the receiver checks it with `sha256sum -c SHA256SUMS`.

Written into a temporary folder beside DIR and renamed to DIR at the end (rename(2) is atomic and replaces an
empty folder): a reader sees the whole bundle or none of it. A DIR that exists and holds anything is refused before
any check runs: a bundle never mixes with files it did not write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import tempfile
from pathlib import Path

from dlbench.errors import UserError
from dlbench.hostspec.reader import HostReader, Unanswered
from dlbench.validate import pcie, writers
from dlbench.validate.report import Report

MANIFEST = "SHA256SUMS"
# The driver's kernel messages: "NVRM: Xid (PCI:0000:18:00): 79, pid=..., GPU has fallen off the bus." (NVIDIA XID
# Errors guide, "Where to find Xid messages"), and NVRM's other lines (firmware, RmInitAdapter failures).
KERNEL_LOG_MARKERS = ("NVRM", "Xid")


def check_target(path: Path) -> None:
    """Before the run: DIR must be new or an empty folder, in a folder that exists."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise UserError(f"--bundle {path}: exists and is not a folder; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        raise UserError(f"--bundle {path}: the folder is not empty; give a new or empty folder")
    if not path.absolute().parent.is_dir():
        raise UserError(f"--bundle {path}: {path.absolute().parent} does not exist")
    if not os.access(path.absolute().parent, os.W_OK):
        raise UserError(f"--bundle {path}: cannot write in {path.absolute().parent}")


def command_line(argv: list[str], cwd: str) -> str:
    """The command as the user typed it, runnable from the folder it ran in (relative paths stay right)."""
    return f"cd {shlex.quote(cwd)} && {shlex.join(['dlbench', *argv])}\n"


def measurements(ctx, aer_after: dict) -> dict:
    """What the checks judged, as read: NVML before any load and sampled during each, NVLink counters before the
    load and the static state, AER counters before and after, XID events."""
    return {
        "nvml_before_load": ctx.baseline,
        "nvml_static": {index: dataclasses.asdict(state) for index, state in ctx.static.items()},
        "nvlinks_before_load": {
            index: dataclasses.asdict(links) if links else None for index, links in ctx.nvlinks_before.items()
        },
        "load_windows": [
            {
                "label": w.label,
                "gpu_load": w.gpu_load,
                "samples": [{"seconds": t, "readings": readings} for t, readings in w.samples],
            }
            for w in ctx.windows
        ],
        "xid_events": [{"gpu": gpu, "xid": xid, "time": at} for gpu, xid, at in ctx.xid_events],
        "pci_functions": [dataclasses.asdict(f) for f in ctx.pci_functions],
        "aer_before_load": ctx.aer_before,
        "aer_after_load": aer_after,
    }


def _tool_outputs(host: HostReader, functions: list[pcie.Function]) -> tuple[dict[str, str], list[str]]:
    """The files the host's own tools give, and the notes for those it could not give."""
    files, notes = {}, []
    try:
        files["nvidia-smi-q.txt"] = host.run("nvidia-smi", "-q")
    except Unanswered as why:
        notes.append(f"nvidia-smi -q: {why}")
    wanted = [f.address for f in functions if f.kind in ("GPU", "NIC")]
    if wanted:
        try:
            # as root lspci shows the capabilities (link status, AER); as another user it says "<access denied>"
            files["lspci-vv.txt"] = "".join(host.run("lspci", "-vv", "-s", address) for address in wanted)
        except Unanswered as why:
            notes.append(f"lspci -vv: {why}")
    else:
        notes.append("lspci -vv: no GPU or NIC on the PCI bus")
    try:
        kernel = host.run("dmesg")
        files["dmesg-nvrm-xid.txt"] = "".join(
            line + "\n" for line in kernel.splitlines() if any(marker in line for marker in KERNEL_LOG_MARKERS)
        )
    except Unanswered as why:
        notes.append(f"dmesg: {why} (as root, or with kernel.dmesg_restrict=0, it is readable)")
    return files, notes


def manifest(folder: Path) -> str:
    """sha256sum's output for every file under `folder` (paths relative to it, sorted): `sha256sum -c` reads it."""
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.relative_to(folder).as_posix()}\n")
    return "".join(lines)


def write(target: Path, report: Report, ctx, argv: list[str]) -> None:
    """Write the bundle into a temporary folder beside `target`, then rename it to `target`."""
    target = target.absolute()
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        aer_after = pcie.read_all_aer(ctx.host, ctx.pci_functions)
        files = {
            "report.json": json.dumps(report.to_dict(), indent=2) + "\n",
            "report.xml": writers.junit_xml(report),
            "measurements.json": json.dumps(measurements(ctx, aer_after), indent=2, default=str) + "\n",
            "command.txt": command_line(argv, os.getcwd()),
        }
        tool_files, notes = _tool_outputs(ctx.host, ctx.pci_functions)
        files.update(tool_files)
        spec_path = ctx.options.spec_path
        if spec_path is not None:
            files["spec" + Path(spec_path).suffix] = Path(spec_path).read_text()
        else:
            notes.append("spec: none given (--spec)")
        files["NOTES.txt"] = "".join(note + "\n" for note in notes) or "everything was collected\n"
        for name, text in files.items():
            (staging / name).write_text(text)
        (staging / MANIFEST).write_text(manifest(staging))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the bundle is a folder like any other
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        os.rename(staging, target)
    except OSError as error:  # DIR was filled (or made a file) while the checks ran: keep what was measured
        raise UserError(
            f"--bundle {target}: {error.strerror} (it changed during the run); the complete bundle is in {staging}"
        ) from None
