"""`dlbench validate`'s storage checks: checkpoint write and read throughput on the data folder, the image input
pipeline's rate, on this machine's real disk (a tmp folder) at small sizes (--checkpoint-bytes)."""

import json
import os
import shutil

import pytest

from dlbench.errors import UserError
from dlbench.hostspec import spec, units
from dlbench.hostspec.reader import RECORDED_HOST_ENV
from dlbench.validate import storage
from dlbench.checks import FAIL, INFO, PASS, WARN
from dlbench.hostspec.reader import RecordedHost
from dlbench.workloads import WORKLOADS
from validate_support import context

SMALL = 96 * 2**20  # one and a half of the 64 MiB chunks: the last write is a partial one


def _checks(results):
    return {result.id: result for result in results}


def test_a_checkpoint_is_written_fsyncd_read_back_from_the_disk_and_removed(tmp_path):
    checks = _checks(storage.run(context(data_dir=tmp_path, checkpoint_bytes=SMALL)))
    write, read = checks["storage.checkpoint_write"], checks["storage.checkpoint_read"]
    assert write.verdict == read.verdict == INFO  # no host spec: measured, not judged
    assert write.unit == read.unit == "GB/s" and write.measured > 0 and read.measured > 0
    assert write.data["bytes_written"] == write.data["read_bytes"] == SMALL
    # every model `dlbench list` names, its checkpoint at 12 bytes a parameter, with the time it would take here
    models = write.data["models"]
    assert set(models) == set(WORKLOADS)
    assert models["llama3-8b"]["bytes"] == WORKLOADS["llama3-8b"].parameters * 12
    assert models["llama3-8b"]["write_seconds"] > models["gpt2"]["write_seconds"]
    assert "llama3-8b's checkpoint" in write.detail and "posix_fadvise" in read.detail
    pipeline = checks["storage.input_pipeline"]
    assert pipeline.verdict == INFO and pipeline.unit == "images/s" and pipeline.measured > 0
    # the first batch (the workers' start-up) is read before the clock starts
    assert pipeline.data["written"] == storage.PIPELINE_IMAGES["cpu"]
    assert pipeline.data["images"] == storage.PIPELINE_IMAGES["cpu"] - storage.PIPELINE_BATCH
    assert list(tmp_path.iterdir()) == []  # the checkpoint and the images are gone


def test_a_data_folder_off_the_disks_the_spec_declares_is_a_warning(tmp_path):
    declared = spec.parse({"hardware": {"storage": ["NVMe SSD 2TB"]}}, tmp_path / "spec.yml")
    ctx = context(data_dir=tmp_path, checkpoint_bytes=storage.MINIMUM_BYTES, spec=declared, spec_path="spec.yml")
    disk = storage.disk_of(tmp_path)
    if disk is not None and disk.startswith("nvme"):
        pytest.skip(f"{tmp_path} is on an NVMe drive here ({disk}): the data folder is where the spec says")
    write = storage.checkpoint(ctx, tmp_path, storage.MINIMUM_BYTES)[0]
    assert write.verdict == WARN
    assert "NVMe SSD" in write.detail and "--data-dir" in write.detail
    assert write.source == "the spec's storage (spec.yml)"


def _data_disk_as_sata_ssd(tmp_path):
    """A recorded host whose /sys/block holds the real disk under `tmp_path` as a SATA SSD (this machine's disk is a
    virtual one, which no spec declares), in the layout Linux gives it: `size` in 512-byte sectors and
    `queue/rotational` (Documentation/ABI/stable/sysfs-block), `device/vendor` the SCSI INQUIRY vendor, "ATA" padded
    to 8 characters for a disk behind libata (drivers/ata/libata-scsi.c, ata_scsiop_inq_std). The checkpoint is still
    written to and read from the real disk: only the disk's kind is recorded."""
    name = storage.disk_of(tmp_path)
    if name is None:
        pytest.skip(f"{tmp_path} is on no block device here")
    sectors = int(open(f"/sys/block/{name}/size").read())
    host = tmp_path / "host"
    block = _disk(host, f"pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/{name}", sectors)
    (block / "device").mkdir()
    (block / "device" / "vendor").write_text("ATA     \n")
    data = tmp_path / "data"
    data.mkdir()
    _link(host / "sys/dev/block" / _device_number(data), block)
    return RecordedHost(host), data, sectors * 512


def _link(link, target):
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def _device_number(path) -> str:
    """MAJOR:MINOR of the file system holding `path`, as /sys/dev/block names its devices."""
    device = os.stat(path).st_dev
    return f"{os.major(device)}:{os.minor(device)}"


def _disk(host, path: str, sectors: int):
    """A block device in sysfs's layout: its directory under /sys/devices with `size` (512-byte sectors) and
    `queue/rotational` (Documentation/ABI/stable/sysfs-block), and /sys/block/NAME linking to it."""
    block = host / "sys/devices" / path
    (block / "queue").mkdir(parents=True)
    (block / "size").write_text(f"{sectors}\n")
    (block / "queue" / "rotational").write_text("0\n")
    _link(host / "sys/block" / block.name, block)
    return block


@pytest.mark.parametrize(
    "declared, verdicts",
    [
        # figures no disk reaches: a 1 PB/s datasheet
        ({"read": "1000TB/s", "write": "1000TB/s"}, (FAIL, FAIL)),
        # a floor any disk reaches: 1 MB/s
        ({"read": "1MB/s", "write": "1MB/s"}, (PASS, PASS)),
        # a datasheet figure with the fraction the buyer accepts: 2 MB/s at half is 1 MB/s
        ({"write": "2MB/s", "fraction": 0.5}, (PASS, PASS)),
        # only the write declared: the read is judged by the disk's kind alone, as without figures
        ({"write": "1000TB/s"}, (FAIL, PASS)),
    ],
)
def test_checkpoint_throughput_is_judged_against_the_disk_the_spec_declares(tmp_path, declared, verdicts):
    host, data, size = _data_disk_as_sata_ssd(tmp_path)
    document = {"hardware": {"storage": [{"type": "SATA SSD", "size": f"{size}B", **declared}]}}
    parsed = spec.parse(document, tmp_path / "spec.yml")
    ctx = context(data_dir=data, checkpoint_bytes=storage.MINIMUM_BYTES, spec=parsed, spec_path="spec.yml", host=host)
    write, read = storage.checkpoint(ctx, data, storage.MINIMUM_BYTES)
    assert (write.verdict, read.verdict) == verdicts
    if "write" in declared:
        need = units.rate_gbps(declared["write"]) * declared.get("fraction", 1)
        assert write.expected.startswith(f">= {need:.2f} GB/s (the spec's SATA SSD write")
        # the evidence says what the largest model's checkpoint takes here and at the floor
        largest = max(storage.checkpoint_sizes().values())
        assert f"{largest / (need * 1e9):.0f} s at the spec's floor" in write.detail
    if write.verdict == FAIL:
        assert "below" in write.detail and "less than was bought" in write.detail
    assert write.source == "the spec's storage (spec.yml)"
    assert list(data.iterdir()) == []


def test_validate_exits_1_when_the_data_disk_is_slower_than_the_spec_declares(dlbench_cli, tmp_path):
    host, data, size = _data_disk_as_sata_ssd(tmp_path)
    spec_file = tmp_path / "spec.yml"
    spec_file.write_text(f"hardware:\n  storage: ['SATA SSD {size}B, read 1000TB/s, write 1000TB/s']\n")
    report_path = tmp_path / "report.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", RECORDED_HOST_ENV: str(tmp_path / "host")}
    done = dlbench_cli(
        "validate",
        "--spec",
        spec_file,
        "--data-dir",
        data,
        "--checkpoint-bytes",
        "64MiB",
        "--json",
        report_path,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    checks = {c["id"]: c for c in json.loads(report_path.read_text())["checks"]}
    assert checks["storage.checkpoint_write"]["verdict"] == checks["storage.checkpoint_read"]["verdict"] == FAIL
    assert checks["spec.storage_1"]["verdict"] == PASS  # the disk is the one bought; it is slower than bought


def test_the_checkpoint_size_is_the_largest_model_as_far_as_the_free_space_allows(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    # the free space as it was a moment ago: other processes write to the same disk between two reads of it
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda path: usage)
    room = usage.free - storage.reserve(usage.total)
    assert storage.plan(tmp_path, None) == min(max(storage.checkpoint_sizes().values()), room)
    assert storage.plan(tmp_path, SMALL) == SMALL
    with pytest.raises(UserError, match=r"free; the storage test needs .* and leaves .* free"):
        storage.plan(tmp_path, usage.free)  # would eat into the reserve


@pytest.mark.parametrize(
    "args,message",
    [
        (("--checkpoint-bytes", "1PB"), "free; the storage test needs 1000.00TB"),
        (("--checkpoint-bytes", "lots"), "must be a size such as 256MiB or 2GB"),
        (("--data-dir", "/nonexistent/data"), "--data-dir /nonexistent/data: no such folder"),
    ],
)
def test_a_checkpoint_that_cannot_fit_is_refused_in_one_line_before_anything_runs(dlbench_cli, tmp_path, args, message):
    if "--data-dir" not in args:
        args = ("--data-dir", str(tmp_path), *args)
    done = dlbench_cli("validate", *args, "--json", tmp_path / "report.json")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr.splitlines()[0] and "Traceback" not in done.stderr
    assert done.stdout == "" and list(tmp_path.iterdir()) == []


def test_validate_with_a_data_dir_reports_the_storage_family(dlbench_cli, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    report_path = tmp_path / "report.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = dlbench_cli("validate", "--data-dir", data, "--checkpoint-bytes", "64MiB", "--json", report_path, env=env)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(report_path.read_text())
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["storage.checkpoint_write"]["data"]["bytes_written"] == 64 * 2**20
    assert checks["storage.input_pipeline"]["measured"] > 0
    assert report["options"]["data_dir"] == str(data) and report["options"]["checkpoint_bytes"] == 64 * 2**20
    assert list(data.iterdir()) == []


def _resident_pages(path) -> int:
    """Pages of `path` in the page cache, as mincore(2) reports them for a mapping of the file."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vector = (ctypes.c_ubyte * pages)()
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY) as mapping:
        start = ctypes.c_char.from_buffer(mapping)
        try:
            assert libc.mincore(ctypes.c_void_p(ctypes.addressof(start)), ctypes.c_size_t(size), vector) == 0
        finally:
            del start
    return sum(page & 1 for page in vector)


def test_the_pipelines_images_are_on_the_disk_not_in_the_page_cache_when_read(tmp_path):
    # posix_fadvise(DONTNEED) drops clean pages only: a file just written is dirty until written back, so the
    # images would be read from memory, not from the disk under test (mm/fadvise.c: invalidate_mapping_pages)
    storage._write_images(tmp_path, 4)
    images = sorted(tmp_path.rglob("*.jpg"))
    assert len(images) == 4
    assert [_resident_pages(image) for image in images] == [0, 0, 0, 0]


def test_on_gpus_every_loader_worker_gets_several_batches_after_its_first():
    # 8 GPUs x 12 workers (a 104-core host): 512 images would be 16 batches for 96 workers, timed on start-up alone
    assert storage.pipeline_images(False, 4) == storage.PIPELINE_IMAGES["cpu"]
    assert storage.pipeline_images(True, 1) == storage.PIPELINE_IMAGES["gpu"]
    workers = 8 * 12
    batches = storage.pipeline_images(True, workers) // storage.PIPELINE_BATCH
    assert batches >= workers * (storage.BATCHES_PER_WORKER + 1)


# A 3.84 TB NVMe drive (Samsung PM9A3 MZQL23T8HCLS: 7,501,476,528 sectors of 512 bytes) and the sequential rates
# declared for it in these tests (illustrative: the rule is what is tested, not a datasheet)
NVME_SECTORS = 7_501_476_528
DECLARED_RATE = "400MB/s"


def _array_host(
    tmp_path,
    level: str,
    members: int,
    layout: str = "0",
    lvm: bool = False,
    md: bool = True,
    spares: int = 0,
    degraded: int = 0,
    sectors: list[int] | None = None,
    dm_uuid: str = "LVM-Kx3Yq0Zr8uW2kL5mN7pQ9sT1vX3zB5dF7hJ9lN1pR3tV5xZ7bD9fH1jL3nP5rT7",
):
    """The data folder's file system on an md array of NVMe partitions (and, with `lvm`, on an LVM volume over it), in
    the kernel's layout: /sys/dev/block/MAJOR:MINOR and /sys/block/NAME link to the device under /sys/devices
    (Documentation/ABI/testing/sysfs-dev); a partition is a directory inside its disk's, with a `partition` file
    (Documentation/ABI/stable/sysfs-block); an md array is a virtual block device whose md/level, md/raid_disks and
    md/layout describe it (Documentation/admin-guide/md.rst, "MD devices in sysfs") and whose slaves/ link to each
    member, as a dm device's do (block/holder.c, bd_link_disk_holder); a dm device names its mapping in dm/name and
    dm/uuid, "LVM-" for LVM (Documentation/ABI/testing/sysfs-block-dm). Without `md`, the LVM volume spans the
    partitions directly. `spares` hot spares are bound to the array beyond its raid_disks: md links them in slaves/
    too (md.c bind_rdev_to_array). `degraded`: md/degraded, the count of members missing (md.c degraded_show); the
    missing members stay linked here, as a failed member does until it is removed. `sectors` gives each disk's size. The checkpoint is written to this machine's real
    disk: only the layout is recorded."""
    host, data = tmp_path / "host", tmp_path / "data"
    data.mkdir()
    partitions = []
    for n in range(members + spares):
        size = (sectors or [NVME_SECTORS] * (members + spares))[n]
        path = f"pci0000:00/0000:00:01.{n + 1}/0000:0{n + 1}:00.0/nvme/nvme{n}/nvme{n}n1"
        disk = _disk(host, path, size)
        partition = disk / f"nvme{n}n1p1"
        partition.mkdir()
        (partition / "partition").write_text("1\n")
        (partition / "size").write_text(f"{size - 4096}\n")
        partitions.append(partition)
    top = None
    if md:
        top = _disk(host, "virtual/block/md0", NVME_SECTORS * members)
        (top / "md").mkdir()
        for name, value in (("level", level), ("raid_disks", members), ("layout", layout), ("degraded", degraded)):
            (top / "md" / name).write_text(f"{value}\n")
        for partition in partitions:
            _link(top / "slaves" / partition.name, partition)
    if lvm:
        volume = _disk(host, "virtual/block/dm-0", NVME_SECTORS * members)
        (volume / "dm").mkdir()
        (volume / "dm" / "name").write_text("vg0-data\n")
        (volume / "dm" / "uuid").write_text(f"{dm_uuid}\n")
        for lower in [top] if top is not None else partitions:
            _link(volume / "slaves" / lower.name, lower)
        top = volume
    _link(host / "sys/dev/block" / _device_number(data), top)
    return RecordedHost(host), data


def _nvme_spec(tmp_path, count: int, rate: str = DECLARED_RATE, kind: str = "NVMe SSD"):
    document = {
        "hardware": {"storage": [{"type": kind, "size": "3.84TB", "count": count, "read": rate, "write": rate}]}
    }
    return spec.parse(document, tmp_path / "spec.yml")


@pytest.mark.parametrize(
    "level, members, layout, lvm, md, read_floor, write_floor, rule",
    [
        # RAID 0 stripes a large write over every member: the sum
        ("raid0", 2, "0", False, True, 0.8, 0.8, "md0, raid0: 2 members × the slowest member's (striped)"),
        # RAID 1 writes every mirror and reads one stream from one mirror: the slowest member
        ("raid1", 2, "0", False, True, 0.4, 0.4, "md0, raid1: its slowest member's"),
        # RAID 10, near=2 (md/layout 0x102 = 258, mdadm's default): the members over two copies
        ("raid10", 4, "258", False, True, 0.8, 0.8, "md0, raid10: 4 members × the slowest member's over 2 copies"),
        # RAID 5 of three: two data members read in parallel; a write held to the slowest member
        (
            "raid5",
            3,
            "2",
            False,
            True,
            0.8,
            0.4,
            ("md0, raid5: 2 data members × the slowest member's", "md0, raid5: its slowest member's"),
        ),
        # LVM on RAID 0: the volume's one member is the array, judged as above
        ("raid0", 2, "0", True, True, 0.8, 0.8, "dm-0, device-mapper: its slowest member's"),
        # LVM straight over two disks: sysfs does not say linear or striped, so the slowest member
        ("", 2, "0", True, False, 0.4, 0.4, "dm-0, device-mapper: its slowest member's"),
    ],
)
def test_a_data_folder_on_raid_or_lvm_is_judged_by_what_its_member_disks_allow(
    tmp_path, level, members, layout, lvm, md, read_floor, write_floor, rule
):
    host, data = _array_host(tmp_path, level, members, layout, lvm, md)
    ctx = context(
        data_dir=data,
        checkpoint_bytes=storage.MINIMUM_BYTES,
        spec=_nvme_spec(tmp_path, members),
        spec_path="s.yml",
        host=host,
    )
    write, read = storage.checkpoint(ctx, data, storage.MINIMUM_BYTES)
    top = "dm-0" if lvm else "md0"
    assert f"{data} is on {top} (" in write.detail and "disks of the spec (NVMe SSD: NVMe SSD)" in write.detail
    read_rule, write_rule = rule if isinstance(rule, tuple) else (rule, rule)
    for result, floor, said in ((write, write_floor, write_rule), (read, read_floor, read_rule)):
        kind = result.id.rsplit("_", 1)[1]
        assert result.expected.startswith(f">= {floor:.2f} GB/s ({said} {kind} floor")
        # each member disk's own floor is named in the evidence
        assert f"nvme1n1: the spec's NVMe SSD {kind} 0.4 GB/s" in result.expected
        # judged against the array's floor: PASS exactly where this machine's disk reached it
        assert result.verdict == (PASS if result.measured >= floor else FAIL), (result.measured, result.detail)
    assert list(data.iterdir()) == []


def test_an_array_judged_against_rates_no_disk_reaches_fails_and_any_disk_reaches_passes(tmp_path):
    for rate, verdict in (("1000TB/s", FAIL), ("1MB/s", PASS)):
        folder = tmp_path / verdict
        folder.mkdir()
        host, data = _array_host(folder, "raid0", 2)
        parsed = _nvme_spec(folder, 2, rate)
        ctx = context(data_dir=data, checkpoint_bytes=storage.MINIMUM_BYTES, spec=parsed, spec_path="s.yml", host=host)
        write, read = storage.checkpoint(ctx, data, storage.MINIMUM_BYTES)
        assert write.verdict == read.verdict == verdict, write.detail


def test_an_array_with_a_member_of_another_kind_than_the_spec_declares_is_a_warning(tmp_path):
    host, data = _array_host(tmp_path, "raid1", 2)
    parsed = _nvme_spec(tmp_path, 2, kind="SATA SSD")
    ctx = context(data_dir=data, checkpoint_bytes=storage.MINIMUM_BYTES, spec=parsed, spec_path="s.yml", host=host)
    write, read = storage.checkpoint(ctx, data, storage.MINIMUM_BYTES)
    assert write.verdict == read.verdict == WARN
    assert "is on md0 (raid1 of nvme0n1, nvme1n1): nvme0n1 (NVMe SSD), not on the spec's SATA SSD" in write.detail
    assert "--data-dir" in write.detail


def _judged(host, data, parsed):
    ctx = context(data_dir=data, checkpoint_bytes=storage.MINIMUM_BYTES, spec=parsed, spec_path="s.yml", host=host)
    return storage.checkpoint(ctx, data, storage.MINIMUM_BYTES)


@pytest.mark.parametrize(
    "level, layout, members, read_floor, write_floor",
    [
        # RAID 5 of three with a hot spare: two data members read, not three
        ("raid5", "2", 3, 0.8, 0.4),
        # RAID 10 of four (near=2) with a hot spare: four members over two copies, not five
        ("raid10", "258", 4, 0.8, 0.8),
    ],
)
def test_an_arrays_hot_spare_is_not_counted_as_a_member_carrying_data(
    tmp_path, level, layout, members, read_floor, write_floor
):
    # md links a spare in slaves/ as it links the array's members (md.c bind_rdev_to_array); md/raid_disks counts
    # only "the devices in a fully functional array" (Documentation/admin-guide/md.rst)
    host, data = _array_host(tmp_path, level, members, layout, spares=1)
    write, read = _judged(host, data, _nvme_spec(tmp_path, members + 1))
    assert read.expected.startswith(f">= {read_floor:.2f} GB/s"), read.expected
    assert write.expected.startswith(f">= {write_floor:.2f} GB/s"), write.expected


def test_a_striped_array_of_unequal_members_is_held_to_the_slowest_member_times_their_count(tmp_path):
    # RAID 0 puts equal chunks on every member, so one stream waits on the slowest: 2 × 0.4 GB/s, not 0.4 + 2.0
    host, data = _array_host(tmp_path, "raid0", 2, sectors=[NVME_SECTORS, 2 * NVME_SECTORS])
    declared = [("3.84TB", "400MB/s"), ("7.68TB", "2GB/s")]
    document = {
        "hardware": {
            "storage": [
                {"type": "NVMe SSD", "size": size, "count": 1, "read": rate, "write": rate} for size, rate in declared
            ]
        }
    }
    write, read = _judged(host, data, spec.parse(document, tmp_path / "spec.yml"))
    for result in (write, read):
        assert result.expected.startswith(">= 0.80 GB/s (md0, raid0: 2 members × the slowest member's (striped)")
        assert "nvme1n1: the spec's NVMe SSD " in result.expected and " 2 GB/s))" in result.expected, result.expected


def test_a_luks_volume_is_placed_on_its_disks_but_not_held_to_their_rates(tmp_path):
    # cryptsetup names its mappings "CRYPT-<type>-<uuid>-<name>" (lib/libdevmapper.c, DM_UUID_PREFIX "CRYPT-"): the
    # CPU's encryption can set one stream's rate below the disks', so a healthy disk under LUKS never FAILs
    uuid = "CRYPT-LUKS2-6f1c2a9e8b7d4c3e9a1f0b2c3d4e5f60-data"
    host, data = _array_host(tmp_path, "", 1, lvm=True, md=False, dm_uuid=uuid)
    write, read = _judged(host, data, _nvme_spec(tmp_path, 1, "1000TB/s"))
    for result in (write, read):
        assert result.verdict == PASS and result.expected == "on a disk the spec declares", result.expected
        assert f"{data} is on dm-0 (dm-crypt of nvme0n1)" in result.detail


def test_a_degraded_array_is_named_with_the_fix_not_blamed_on_its_disks(tmp_path):
    # RAID 1 of two with one mirror missing (md/degraded 1): a rate any disk reaches still warns, naming the array;
    # one no disk reaches fails with the same cause rather than "the disk delivers less than was bought"
    for rate, verdict in (("1MB/s", WARN), ("1000TB/s", FAIL)):
        folder = tmp_path / verdict
        folder.mkdir()
        host, data = _array_host(folder, "raid1", 2, degraded=1)
        for result in _judged(host, data, _nvme_spec(folder, 2, rate)):
            assert result.verdict == verdict, result.detail
            assert "md0 (1 of its members missing) (md/degraded): replace the missing member" in result.detail
            assert "delivers less than was bought" not in result.detail
    # the same array whole passes
    (tmp_path / "whole").mkdir()
    host, data = _array_host(tmp_path / "whole", "raid1", 2, degraded=0)
    assert {r.verdict for r in _judged(host, data, _nvme_spec(tmp_path, 2, "1MB/s"))} == {PASS}
