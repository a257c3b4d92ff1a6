"""Storage sized to training: checkpoint write and read throughput on the data disk, and the image input pipeline's
rate against what the GPUs consume.

Checkpoints: a file of the size of a real checkpoint (the largest model `dlbench list` names, 12 bytes a parameter)
is written in 64 MiB chunks and fsync'd (what reaches the disk, not the page cache), then its cached pages are
dropped with posix_fadvise(POSIX_FADV_DONTNEED) and it is read back. DONTNEED rather than O_DIRECT: it works on any
file system (O_DIRECT is refused by tmpfs and some network and FUSE file systems, and needs aligned buffers), and
the read is then the buffered read `torch.load` does, from the disk. Writing stops at a time budget (20 s at quick,
120 s at long) or at the checkpoint's size, whichever comes first; the file is removed in every case. Before writing,
the free space is checked: the test never takes the disk below a reserve (5% of it, at least 1 GiB). With a host
spec, the folder must be on a disk the spec declares, and where that declaration gives the sequential rates bought
(`read`, `write`, times its `fraction`, default 1: the purchase's numbers, as no public ratio says what one fsync'd
stream reaches of a datasheet figure), the measured rates must reach them or FAIL.

A data folder on software RAID (md) or LVM (device-mapper) is judged through the array to its disks: the block device
of the folder's file system (/sys/dev/block/MAJOR:MINOR, Documentation/ABI/testing/sysfs-dev) lists the devices it
is built on in /sys/block/NAME/slaves/ (one link per member, made by block/holder.c, bd_link_disk_holder: "if
/dev/dm-0 maps to /dev/sda ... /sys/block/dm-0/slaves/sda"; a member that is a partition leads to its disk, whose
directory holds the partition's); an md array's level is /sys/block/mdN/md/level ("raid0, raid1, raid5, linear, ...",
Documentation/admin-guide/md.rst, "MD devices in sysfs"). Every member disk must be one the spec declares, and where
the declarations give rates, one sequential stream through the array is held to what its members allow, counted
conservatively so that a healthy array never fails: RAID 0 stripes every large write and read over all members in
equal chunks, so the stream waits on the slowest and is held to the members × the slowest member's; RAID 10 that
divided by the copies it keeps (md/layout: near copies in its low byte, far copies in the next, drivers/md/raid10.c
setup_geo); RAID 4/5/6 reads the data members (all but one or two parity) in parallel, so that many times the slowest
member. The members counted are the array's raid_disks (md.rst: "the number of devices in a fully functional
array"): slaves/ also links its hot spares (md.c bind_rdev_to_array links every device bound to the array), which
carry no data; the slowest member is taken over all of them, and a write is held to the slowest member alone (parity is computed
by md's stripe cache, which one stream does not keep full); RAID 1 writes every mirror and may serve a sequential
stream's reads from one mirror (raid1.c read_balance keeps a sequential read on the disk that served the last one),
linear fills one member after another, and device-mapper's mapping (linear, striped or mirrored) is not in sysfs
(only `dmsetup table`, as root): all three are held to their slowest member. A dm-crypt volume (LUKS: its dm/uuid
begins "CRYPT-", cryptsetup's lib/libdevmapper.c DM_UUID_PREFIX) is measured and placed but not held to its disks'
rates: its CPU's encryption, not the disks bought, can set what one stream reaches.

Input pipeline: a folder of JPEG images of ImageNet's average size is written to the data disk, dropped from the
page cache, and read through dlbench's own loader (`dlbench run --data`: ImageFolder, decode, resize to 224, the
DataLoader workers a run would use on every GPU together) for a bounded time; the rate in images/s is judged against
what the GPUs consume when training resnet50 (the published per-GPU figure of `training.resnet50` times the GPUs).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.errors import UserError
from dlbench.hostspec import units
from dlbench.hostspec.reader import HostReader, Unanswered
from dlbench.validate import baselines
from dlbench.validate.context import Context
from dlbench.checks import FAIL, INFO, PASS, WARN, CheckResult, skip

# fp32 weights (dlbench run keeps parameters in fp32 and trains under autocast) plus AdamW's exp_avg and exp_avg_sq,
# which torch.optim.AdamW keeps in the parameters' dtype: 4 + 4 + 4 bytes a parameter.
BYTES_PER_PARAMETER = 12
CHUNK = 64 * 2**20
SYNC_EVERY = 16 * CHUNK
BUDGET_SECONDS = {"quick": 20.0, "long": 120.0}  # writing the checkpoint; reading it back takes at most as long
PIPELINE_SECONDS = {"quick": 10.0, "long": 30.0}
# on a host without GPUs (or --cpu) the sizes are small, as the micro-benchmarks' are: the code path is the same
CPU_CHECKPOINT_BYTES = 256 * 2**20
MINIMUM_BYTES = CHUNK
RESERVE_FRACTION, RESERVE_BYTES = 0.05, 2**30
# ImageNet (ILSVRC2012) train: 1,281,167 JPEGs in 138 GB, about 110 KB each at a typical 500x375 pixels
IMAGE_SIZE_PIXELS = (500, 375)
PIPELINE_IMAGES = {"gpu": 512, "cpu": 64}  # at least; on GPUs BATCHES_PER_WORKER batches for every worker
PIPELINE_BATCH = 32
# Each worker's first batch holds its start-up (process spawn, imports); the clock starts at the first batch and a
# worker must deliver several more, or 8 GPUs' 100-odd workers would be timed on their start-up alone
BATCHES_PER_WORKER = 4
DISTINCT_IMAGES = 64  # encoded once, then written as copies: the disk and the decoder see ImageNet-sized JPEGs
# Common role's data disk (playbooks/roles/common/defaults/main.yml, common_data_disk_mountpoint)
PROVISIONED_DATA_DIR = Path("/data")


def default_data_dir() -> Path:
    """Where checkpoints and data live on a host: the data disk the common role mounts at /data, where it is a mount
    point; else the working directory (torchtitan and `dlbench run` write their outputs below it)."""
    return PROVISIONED_DATA_DIR if os.path.ismount(PROVISIONED_DATA_DIR) else Path.cwd()


def checkpoint_sizes() -> dict[str, int]:
    """Workload name -> bytes of its checkpoint (weights and AdamW state), for every model `dlbench list` names."""
    from dlbench.workloads import WORKLOADS

    return {name: workload.parameters * BYTES_PER_PARAMETER for name, workload in WORKLOADS.items()}


def reserve(total: int) -> int:
    return max(RESERVE_BYTES, int(total * RESERVE_FRACTION))


def plan(directory: Path, wanted: int | None) -> int:
    """The bytes the checkpoint test may write into `directory`: `wanted` (or the largest checkpoint), as far as the
    free space above the reserve allows. A directory that is not a writable folder, or where not even `wanted` (when
    given) or 64 MiB fits, is refused with one line, before anything runs."""
    if not directory.is_dir():
        raise UserError(f"--data-dir {directory}: no such folder")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UserError(f"--data-dir {directory}: not writable")
    usage = shutil.disk_usage(directory)
    room = usage.free - reserve(usage.total)
    need = wanted if wanted is not None else MINIMUM_BYTES
    if room < need:
        raise UserError(
            f"--data-dir {directory}: {units.human_bytes(max(usage.free, 0))} free; the storage test needs "
            f"{units.human_bytes(need)} and leaves {units.human_bytes(reserve(usage.total))} free: "
            "give another --data-dir or a smaller --checkpoint-bytes"
        )
    return min(wanted if wanted is not None else max(checkpoint_sizes().values()), room)


def _drop_cache(path: Path) -> None:
    """Take `path` out of the page cache, so that the next read comes from the disk. DONTNEED drops clean pages
    only (mm/fadvise.c: dirty and under-writeback pages stay), hence the fsync first."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def write_read(directory: Path, size: int, budget: float) -> dict:
    """Write up to `size` bytes into a new file in `directory` (stopping after `budget` seconds), fsync it, drop it
    from the page cache and read it back: bytes written, seconds for each (the write's including its fsync)."""
    block = memoryview(os.urandom(CHUNK))  # incompressible, as trained weights are
    fd, name = tempfile.mkstemp(prefix=".dlbench-checkpoint-", dir=directory)
    path = Path(name)
    try:
        written, started = 0, time.monotonic()
        with os.fdopen(fd, "wb", buffering=0) as handle:
            while written < size and time.monotonic() - started < budget:
                written += handle.write(block[: min(CHUNK, size - written)])
                if written % SYNC_EVERY == 0:
                    # dirty pages may grow to a fifth of memory (vm.dirty_ratio) before the kernel writes them: a
                    # sync every GiB keeps the final fsync, and so the budget, bounded on a host with terabytes
                    os.fsync(handle.fileno())
            os.fsync(handle.fileno())
        write_seconds = time.monotonic() - started
        _drop_cache(path)
        read, started = 0, time.monotonic()
        with open(path, "rb", buffering=0) as handle:
            buffer = bytearray(CHUNK)
            while chunk := handle.readinto(buffer):
                read += chunk
        read_seconds = time.monotonic() - started
    finally:
        path.unlink(missing_ok=True)
    return {"bytes": written, "write_seconds": write_seconds, "read_seconds": read_seconds, "read_bytes": read}


def disk_of(directory: Path, host: HostReader | None = None) -> str | None:
    """The block device (as /sys/block names it: nvme0n1, sda, vda, md0, dm-0) holding `directory`; None for a file
    system without one (tmpfs, overlay, NFS). /sys/dev/block/MAJOR:MINOR links to the device; a partition's parent is
    the disk (Documentation/ABI/testing/sysfs-dev)."""
    device = os.stat(directory).st_dev
    try:
        return _disk_at(host or HostReader(), f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")
    except Unanswered:
        return None


def _disk_at(host: HostReader, link: str) -> str:
    """The disk a block device link leads to: the device itself, or the disk of a partition."""
    node = host.resolve(link)
    return node.rsplit("/", 2)[-2] if host.exists(f"{node}/partition") else node.rsplit("/", 1)[-1]


# md levels that stripe one sequential stream over every member, and those with parity members (device_floor)
STRIPED, PARITY_MEMBERS = {"raid0"}, {"raid4": 1, "raid5": 1, "raid6": 2}
MAX_STACK = 8  # devices stacked on devices (LVM on RAID on partitions): deeper than this is a loop, not a layout


@dataclass
class BlockDevice:
    """A block device as the data folder's I/O reaches it: a disk, or an array (md) or a mapping (dm) of members."""

    name: str
    level: str | None = None  # md's level ("raid0", "raid1", ...), "device-mapper", or None for a disk
    members: list[BlockDevice] = field(default_factory=list)
    copies: int = 2  # RAID 10's copies of each block
    raid_disks: int | None = None  # an md array's members that carry data (its slaves/ also hold spares)
    degraded: int = 0  # an md array's members missing (md.c degraded_show): it runs on fewer, and rebuilds
    disk: dict | None = None  # a disk: its facts (hostspec.facts.storage)
    declaration: dict | None = None  # a disk: the spec's declaration it answers to

    def disks(self) -> list[BlockDevice]:
        return [self] if not self.members else [disk for member in self.members for disk in member.disks()]

    def degraded_arrays(self) -> list[str]:
        """The arrays in this stack that run with members missing, each with the count."""
        own = [f"{self.name} ({self.degraded} of its members missing)"] if self.degraded else []
        return own + [array for member in self.members for array in member.degraded_arrays()]

    def describe(self) -> str:
        if not self.members:
            return self.name
        return f"{self.name} ({self.level} of {', '.join(member.describe() for member in self.members)})"


def block_device(host: HostReader, name: str, depth: int = 0) -> BlockDevice:
    """`name` with the devices it is built on, read from /sys/block/NAME/slaves/ down to the disks."""
    slaves = host.listdir(f"/sys/block/{name}/slaves") if depth < MAX_STACK else []
    members = []
    for slave in slaves:
        try:
            members.append(block_device(host, _disk_at(host, f"/sys/block/{name}/slaves/{slave}"), depth + 1))
        except Unanswered:
            continue
    if not members:
        return BlockDevice(name)
    level = _read(host, f"/sys/block/{name}/md/level") or ("device-mapper" if name.startswith("dm-") else "stacked")
    if level == "device-mapper" and (_read(host, f"/sys/block/{name}/dm/uuid") or "").startswith("CRYPT-"):
        level = "dm-crypt"
    copies = 2
    if level == "raid10":
        layout = _read(host, f"/sys/block/{name}/md/layout") or ""
        near, far = (int(layout) & 0xFF, (int(layout) >> 8) & 0xFF) if layout.isdigit() else (2, 1)
        copies = max(near * far, 1)
    # md.c raid_disks_show: "N", or "N (OLD)" while a reshape changes the count: the smaller one, conservatively
    counts = [int(number) for number in re.findall(r"\d+", _read(host, f"/sys/block/{name}/md/raid_disks") or "")]
    degraded = _read(host, f"/sys/block/{name}/md/degraded") or ""
    missing = int(degraded) if degraded.isdigit() else 0
    return BlockDevice(name, level, members, copies, min(counts) if counts else None, missing)


def _read(host: HostReader, path: str) -> str | None:
    try:
        return host.read(path).strip()
    except Unanswered:
        return None


def _spec_disks(ctx: Context) -> list[dict] | None:
    spec = ctx.options.spec
    return (spec.get("hardware") or {}).get("storage") if spec else None


def _on_spec_disk(ctx: Context, directory: Path) -> tuple[str, str, BlockDevice | None] | None:
    """(verdict, sentence, device) when a spec declares disks: whether the data folder lives on disks of a declared
    kind (its own disk, or every member disk of its RAID array or LVM volume), and the device with the declaration
    each of its disks answers to (None when it is on none)."""
    wanted = _spec_disks(ctx)
    if not wanted:
        return None
    from dlbench.hostspec.compare import STORAGE_TOLERANCE, TYPE_MATCHES
    from dlbench.hostspec.facts import storage

    name = disk_of(directory, ctx.host)
    kinds = sorted({kind for want in wanted for kind in TYPE_MATCHES.get(want["type"], {want["type"]})})
    declared = ", ".join(sorted({want["type"] for want in wanted}))
    if name is None:
        return WARN, f"{directory} is on no local disk of the spec ({declared}): no block device", None
    device, local = block_device(ctx.host, name), {disk["name"]: disk for disk in storage(ctx.host)}
    where = device.describe()
    for member in device.disks():
        member.disk = local.get(member.name)
        if member.disk is None:
            return WARN, f"{directory} is on no local disk of the spec ({declared}): {where}", None
        if member.disk["type"] not in kinds:
            return (
                WARN,
                f"{directory} is on {where}: {member.name} ({member.disk['type']}), not on the spec's {declared}",
                None,
            )
        # the declaration of the disk's kind and size first (as spec.storage_N matches it), then of its kind alone
        answers = [want for want in wanted if member.disk["type"] in TYPE_MATCHES.get(want["type"], {want["type"]})]
        answers.sort(key=lambda want: not units.within(member.disk["bytes"], want["bytes"], STORAGE_TOLERANCE))
        member.declaration = answers[0]
    types = ", ".join(sorted({member.disk["type"] for member in device.disks()}))
    if not device.members:
        return PASS, f"{directory} is on {name} ({types}), a disk of the spec ({declared})", device
    return PASS, f"{directory} is on {where}, disks of the spec ({declared}: {types})", device


def floor_gbps(declaration: dict | None, kind: str) -> tuple[float, str] | None:
    """(GB/s, how) the checkpoint's `kind` ("write", "read") must reach on a disk the spec declares with that
    sequential figure: the figure times the spec's `fraction` (1 when not given: the figure is the floor itself)."""
    if not declaration or f"{kind}_gbps" not in declaration:
        return None
    rate, fraction = declaration[f"{kind}_gbps"], declaration.get("fraction", 1.0)
    how = f"the spec's {declaration['type']} {kind} {rate:g} GB/s" + (
        f" × fraction {fraction:g}" if fraction < 1 else ""
    )
    return rate * fraction, how


def device_floor(device: BlockDevice | None, kind: str) -> tuple[float, str] | None:
    """(GB/s, how) one sequential stream of `kind` must reach on `device`: a disk's own floor (`floor_gbps`), an
    array's or volume's from its members' floors as the module's docstring says; None where a disk has no figure."""
    if device is None:
        return None
    if not device.members:
        return floor_gbps(device.declaration, kind)
    if device.level == "dm-crypt":
        return None  # the CPU's encryption, not the disks, can bound one stream through it
    floors = [device_floor(member, kind) for member in device.members]
    if any(floor is None for floor in floors):
        return None
    rates = [rate for rate, _ in floors]
    level, count = device.level, min(len(rates), device.raid_disks or len(rates))
    if level in STRIPED:
        need, rule = count * min(rates), f"{count} members × the slowest member's (striped)"
    elif level == "raid10":
        need, rule = (
            count * min(rates) / device.copies,
            f"{count} members × the slowest member's over {device.copies} copies",
        )
    elif level in PARITY_MEMBERS and kind == "read" and count > PARITY_MEMBERS[level]:
        data = count - PARITY_MEMBERS[level]
        need, rule = data * min(rates), f"{data} data members × the slowest member's"
    else:
        need, rule = min(rates), "its slowest member's"
    members = "; ".join(f"{member.name}: {how}" for member, (_, how) in zip(device.members, floors))
    return need, f"{device.name}, {level}: {rule} {kind} floor ({members})"


def checkpoint(ctx: Context, directory: Path, size: int) -> list[CheckResult]:
    measured = write_read(directory, size, BUDGET_SECONDS[ctx.options.level])
    written = measured["bytes"]
    write_rate = written / measured["write_seconds"] / 1e9
    read_rate = measured["read_bytes"] / measured["read_seconds"] / 1e9
    models = {
        name: {
            "bytes": size_bytes,
            "write_seconds": round(size_bytes / (write_rate * 1e9), 1),
            "read_seconds": round(size_bytes / (read_rate * 1e9), 1),
        }
        for name, size_bytes in sorted(checkpoint_sizes().items(), key=lambda item: item[1])
    }
    largest = max(models, key=lambda name: models[name]["bytes"])
    largest_bytes = models[largest]["bytes"]
    data = {"directory": str(directory), "bytes_written": written, "models": models, **measured}
    on_disk = _on_spec_disk(ctx, directory)
    verdict, judged, device = on_disk if on_disk else (INFO, "no host spec: measured, not judged", None)
    source = f"the spec's storage ({ctx.options.spec_path})" if on_disk else None
    span = f"{units.human_bytes(written)} fsync'd in {measured['write_seconds']:.1f} s"
    degraded = device.degraded_arrays() if device else []
    results = []
    for kind, rate, seconds in (
        ("write", write_rate, models[largest]["write_seconds"]),
        ("read", read_rate, models[largest]["read_seconds"]),
    ):
        floor = device_floor(device, kind)
        checkpoint_time = (
            f"{largest}'s checkpoint ({units.human_bytes(largest_bytes)}, weights and AdamW state) would take "
            f"{seconds:.0f} s to {kind}"
        )
        if floor is None:
            kind_verdict, expected, said = verdict, "on a disk the spec declares" if on_disk else None, judged
        else:
            need, how = floor
            kind_verdict = PASS if rate >= need else FAIL
            expected = f">= {need:.2f} GB/s ({how})"
            checkpoint_time += f", {largest_bytes / (need * 1e9):.0f} s at the spec's floor"
            said = judged if kind_verdict == PASS else f"{judged}, but {rate:.2f} GB/s is below {need:.2f} GB/s ({how})"
        results.append(
            CheckResult(
                f"storage.checkpoint_{kind}",
                f"checkpoint {kind} throughput on {directory}",
                kind_verdict,
                round(rate, 3),
                "GB/s",
                expected=expected,
                source=source,
                detail=f"{said}; {span}; {checkpoint_time}"
                + (" (read back after posix_fadvise DONTNEED)" if kind == "read" else ""),
                data=data if kind == "write" else {},
            )
        )
        if degraded:
            # a missing member, not a slow disk: the array reads through its parity or one mirror, and rebuilds
            results[-1].verdict = FAIL if kind_verdict == FAIL else WARN
            results[-1].detail += (
                f": {', '.join(degraded)} (md/degraded): replace the missing member and let the array resync "
                "(mdadm --detail, /proc/mdstat), then validate again"
            )
        elif kind_verdict == FAIL:
            results[-1].detail += (
                ": the disk delivers less than was bought; check its PCIe link (link.pcie_aer, lspci), its firmware "
                "and wear (nvme smart-log), and that nothing else used it during the test"
            )
    if verdict == WARN:
        results[0].detail += ": mount the data disk there or give --data-dir on it"
    return results


def _write_images(root: Path, count: int) -> None:
    """`count` JPEGs of ImageNet's typical size in two class folders, none of them left in the page cache."""
    import io

    import numpy as np
    from PIL import Image

    generator = np.random.default_rng(0)
    width, height = IMAGE_SIZE_PIXELS
    encoded = []
    for _ in range(min(count, DISTINCT_IMAGES)):
        # noise over a gradient: compresses to about ImageNet's average file size at quality 90
        base = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
        pixels = np.clip(base + generator.normal(0, 24, (height, width, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        encoded.append(buffer.getvalue())
    paths = []
    for index in range(count):
        folder = root / f"class{index % 2}"
        folder.mkdir(exist_ok=True)
        path = folder / f"{index:05d}.jpg"
        path.write_bytes(encoded[index % len(encoded)])
        paths.append(path)
    os.sync()  # one flush for all of them; then each is dropped from the cache, now clean (see _drop_cache)
    for path in paths:
        _drop_cache(path)


def pipeline_images(on_gpu: bool, workers: int) -> int:
    """Enough images that every worker delivers several batches after its first (which holds its start-up)."""
    if not on_gpu:
        return PIPELINE_IMAGES["cpu"]
    return max(PIPELINE_IMAGES["gpu"], workers * PIPELINE_BATCH * (BATCHES_PER_WORKER + 1))


def consumption(ctx: Context, gpus: int) -> tuple[float, str] | None:
    """(images/s, source) the GPUs consume training resnet50, from the published per-GPU figure, where known."""
    from dlbench.validate.compute import device_name

    torch = ctx.torch()
    reference = baselines.training_reference(device_name(torch, ctx.compute_devices()[0]), "resnet50")
    return (reference.value * gpus, reference.source) if reference else None


def input_pipeline(ctx: Context, directory: Path) -> CheckResult:
    from dlbench.train.data import ImageFolder, default_workers
    from dlbench.workloads import get_workload

    torch = ctx.torch()
    devices = ctx.compute_devices()
    on_gpu = ctx.on_gpu()
    workers = default_workers(devices[0]) * len(devices)  # every GPU's run has its own loader
    workload = get_workload("resnet50")
    root = Path(tempfile.mkdtemp(prefix=".dlbench-images-", dir=directory))
    try:
        written = pipeline_images(on_gpu, workers)
        _write_images(root, written)
        loader = torch.utils.data.DataLoader(
            ImageFolder(root, workload.image_size, workload.channels),
            batch_size=PIPELINE_BATCH,
            shuffle=True,
            num_workers=workers,
            drop_last=False,
        )
        batches = iter(loader)
        next(batches)  # the first batch waits for the workers to start: the clock starts after it
        images, budget, started = 0, PIPELINE_SECONDS[ctx.options.level], time.monotonic()
        for inputs, _ in batches:  # one pass at most: a second would read from the page cache
            images += len(inputs)
            if time.monotonic() - started > budget:
                break
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rate = images / seconds if images else 0.0
    title = f"image input pipeline rate from {directory} (resnet50, {workers} loader workers)"
    data = {
        "images": images,  # timed: those after the first batch
        "written": written,
        "seconds": round(seconds, 2),
        "workers": workers,
        "pixels": IMAGE_SIZE_PIXELS,
    }
    wanted = consumption(ctx, len(devices)) if on_gpu else None
    if wanted is None:
        why = "CPU path: no expectation applies" if not on_gpu else "no published resnet50 figure for this GPU"
        return CheckResult("storage.input_pipeline", title, INFO, round(rate, 1), "images/s", detail=why, data=data)
    need, source = wanted
    verdict = PASS if rate >= need else WARN
    return CheckResult(
        "storage.input_pipeline",
        title,
        verdict,
        round(rate, 1),
        "images/s",
        expected=f">= {need:.0f} images/s (what {len(devices)} GPU(s) consume training resnet50)",
        source=source,
        detail="the loader keeps up with the GPUs"
        if verdict == PASS
        else f"the GPUs would wait for input ({rate:.0f} of {need:.0f} images/s): more CPU cores per GPU, "
        "images stored at training size, or decoding on the GPU (NVIDIA DALI)",
        data=data,
    )


def run(ctx: Context) -> list[CheckResult]:
    directory = ctx.options.data_dir
    size = ctx.options.checkpoint_bytes
    if size is None:
        size = plan(directory, None) if ctx.on_gpu() else min(CPU_CHECKPOINT_BYTES, plan(directory, None))
    results = checkpoint(ctx, directory, size)
    if ctx.torch() is None or not ctx.compute_devices():
        results.append(skip("storage.input_pipeline", "image input pipeline rate", ctx.no_torch_reason()))
    else:
        results.append(input_pipeline(ctx, directory))
    return results
