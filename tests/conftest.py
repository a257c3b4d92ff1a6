import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# glibc's malloc tunables (the GNU C Library manual, "Memory Allocation Tunables"). mmap_max=0: no block of the main
# thread gets an mmap of its own (a thread's block over 64 MiB still does). Setting it also fixes the trim threshold,
# which would stay at 128 KiB and hand most large frees back to the kernel: trim_threshold=1 GiB, so the heap is
# trimmed only once a free block of 1 GiB sits at its top.
MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824"


def pytest_configure(config):
    """What every process a test starts inherits: malloc settings, and one compute thread per process when
    pytest-xdist runs several test processes (`make test`: TEST_PROCESSES).

    PyTorch sizes its intra-op pool (OpenMP) to the machine's cores, and its OpenMP threads spin while they wait for
    work: with several test processes, each with its own training runs, on 2 cores the threads fight over them and
    the spinning is paid in CPU time (`dlbench run resnet18` on the CPU beside other jobs: 70 CPU s with 2 threads,
    48 with one, and faster). torchrun sets OMP_NUM_THREADS=1 for the same reason when it starts several processes
    on a node (torch/distributed/run.py). Set in the controller before xdist starts its workers, so that the workers
    and every process a test starts inherit it; a value the user set is kept.

    For the same reason torch.compile compiles in the process that asked (TORCHINDUCTOR_COMPILE_THREADS=1): by
    default Inductor starts a pool of one compile worker per core, each importing torch, which the test processes
    already keep busy (`dlbench run gpt2 --compile` on the CPU, cold: 77 CPU s with the pool, 65 without).

    And in every test session glibc's malloc keeps what a process frees for its next allocation (MALLOC_TUNABLES).
    PyTorch allocates a CPU tensor with posix_memalign and frees it to malloc, with no cache of its own
    (c10/core/impl/alloc_cpu.cpp), and autograd runs a CPU backward pass in the calling thread. glibc serves a block
    of 128 KiB or more with a fresh mmap (the threshold rises to the size of a freed block, up to 32 MiB) and unmaps
    it on free, and the kernel zeroes every page of it again when the next step touches it (mallopt(3),
    M_MMAP_THRESHOLD). A training step on the CPU frees and reallocates its activations every step: gpt2-tiny's
    logits alone are 206 MB. `dlbench run gpt2-tiny --device cpu` spent a third of its CPU time in the kernel (3.3
    million page faults, 18 CPU s); with the main thread's blocks all from its heap, which grows with brk, it takes
    14 CPU s. The cost is memory: glibc 2.36's posix_memalign asks for more than the size it returns, so a freed
    block cannot take the next tensor of its size and the heap grows until free neighbours merge (fixed in glibc
    2.38, "memalign: Support scanning for aligned chunks"): that run's peak resident memory went from 1.0 to 2.0 GB.
    The docs' runs and the two-rank jobs (tests/test_distributed.py and tests/test_doc_commands.py on four
    processes): 475 CPU s down to 403. Speed and memory change, which no test asserts on, not what a computation
    returns. The Ansible test hosts do not get it (tests/ansible_env.py)."""
    if hasattr(config, "workerinput"):
        return  # an xdist worker: it inherited what its controller set
    os.environ.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
    if getattr(config.option, "numprocesses", None):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")


def run_dlbench(*args, timeout=300, **kwargs):
    """`dlbench ...` as a user runs it: a separate process, so exit codes and stderr are the real ones."""
    return subprocess.run(
        [sys.executable, "-m", "dlbench", *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs
    )


@pytest.fixture
def dlbench_cli():
    return run_dlbench


@pytest.fixture
def nonblocking_stdin():
    """Standard input left non-blocking, as CI's was after some child process set O_NONBLOCK on the shared
    /dev/null that pytest puts on fd 0. ansible-playbook refuses to start on an inherited non-blocking stdin
    ("Ansible requires blocking IO on stdin/stdout/stderr"), so every test that starts Ansible gives it its own
    stdin=subprocess.DEVNULL."""
    was_blocking = os.get_blocking(0)
    os.set_blocking(0, False)
    yield
    os.set_blocking(0, was_blocking)


@pytest.fixture(scope="session")
def cpu_images(tmp_path_factory):
    """Both images of the CPU variant, built once per session with buildah (tests/images_support.py): the image
    tests run inside them, the container check's test loads the pytorch image into a Docker Engine."""
    from images_support import build_cpu_images

    yield from build_cpu_images(tmp_path_factory)


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory):
    """One `dlbench run` on the CPU as a user starts it, writing its result (--output) with telemetry: the tests of
    the written document, its telemetry window and its schema each check their part of this one run rather than
    starting a run each (seconds apiece, most of it start-up)."""
    out_dir = tmp_path_factory.mktemp("cli-run")
    output = out_dir / "result.json"
    process = run_dlbench(
        "run",
        "cifar-cnn",
        "--device",
        "cpu",
        "--steps",
        3,
        "--warmup",
        1,
        "--batch-size",
        8,
        "--telemetry-interval",
        "0.1",
        "--output",
        output,
    )
    return CliRun(process, output)


class CliRun:
    def __init__(self, process, output):
        self.process, self.output = process, output

    def result(self):
        assert self.process.returncode == 0, self.process.stderr
        return json.loads(self.output.read_text())


@pytest.fixture
def ansible_playbook():
    """The environment's ansible-playbook (the `test` extra, on Python 3.11 to 3.13), for tests that run a playbook
    for real; using it puts a test in the slow tier."""
    return Path(sys.executable).parent / "ansible-playbook"


# The two tiers (docs/testing.md). `make test` runs the fast one; `make test-all` (CI) both. A test is slow when it
# uses a fixture below, directly or through another fixture (pytest's item.fixturenames is the closure): marked from
# what the test uses, a new test that builds the images, a test host or runs a playbook lands in the slow tier without
# anyone marking it, and tests/ansible/'s unit tests of the roles' filters and templates stay in the fast one.
# Real Prometheus, promtool, the Pushgateway, Chromium, the exporter process and two-rank torchrun take seconds
# and stay fast. A test may also carry @pytest.mark.slow itself.
SLOW_FIXTURES = {
    "cpu_images": "buildah builds both CPU images (debootstrapped base, locked wheels): minutes",
    "dockerd": "a real Docker Engine, loaded with the CPU image",
    "ansible_playbook": "ansible-playbook runs a playbook for real",
    "site": "tests/ansible: the debootstrapped Debian 12 test host tree and the stand-in repositories",
    "fresh_host": "tests/ansible: a copy of the debootstrapped test host",
    "provisioned": "tests/ansible: setup_gpu.yml run for real on the test host",
}


def is_slow(item: pytest.Item) -> bool:
    return bool(SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())))


# The tests run in parallel processes (pytest-xdist, `--dist loadgroup` in the Makefile), and a session fixture is
# built once per process: the tests that share one of these expensive ones go to one process together, so it is
# built once (minutes each) rather than once per process. Cheaper session fixtures are simply built per process.
SHARED_FIXTURE_GROUPS = {
    "provisioned": "provisioned-host",  # setup_gpu.yml run twice on the test host
    # copies of the host setup_gpu.yml's first run left (tests/ansible/conftest.py): one process waits for that run,
    # or makes it when it asks first, then runs these beside the rerun
    "first_provisioning": "provisioned-copies",
    "cpu_images": "cpu-images",  # both images built with buildah
    "dockerd": "cpu-images",  # a Docker Engine loaded with the image above
}


def shared_fixture_group(item: pytest.Item) -> str | None:
    """The process group of a test that shares an expensive fixture: one of the above, or its module's when it uses
    a module-scoped fixture (a run that several tests of a module assert on, such as tests/test_distributed.py's
    two-rank jobs, is made once for them only if they run in one process)."""
    used = set(getattr(item, "fixturenames", ()))
    group = next((group for fixture, group in SHARED_FIXTURE_GROUPS.items() if fixture in used), None)
    if group:
        return group
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    if any(defs and defs[-1].scope in ("module", "package") for defs in definitions.values()):
        return item.nodeid.split("::")[0]
    return None


# tryfirst: xdist's own hook reads the xdist_group marks to route the tests, so they must be set before it runs
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
        group = shared_fixture_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    if getattr(config.option, "loadgroup", False):  # an xdist process under --dist loadgroup: see handout_order
        items.sort(key=handout_order)


# xdist hands out the shared-fixture groups first (largest first), then the other tests in collection order, to
# whichever process runs short of work. Collected by file name, a minute-long playbook test could come last and run
# alone at the end while the other processes idled; so the slow tier goes out first, and in it the tests that need
# no test host before those that wait for its first build (minutes, cold), and the fast tier's short tests fill in
# at the end. Only under `--dist loadgroup`, which keeps a module's tests that share its fixtures together; in one
# process, or under another mode, the sort would split them and set their fixtures up again.
TEST_HOST_FIXTURES = {"site", "fresh_host", "provisioned", "first_provisioning"}


def handout_order(item: pytest.Item) -> int:
    if not item.get_closest_marker("slow"):
        return 2
    return 1 if TEST_HOST_FIXTURES & set(getattr(item, "fixturenames", ())) else 0
