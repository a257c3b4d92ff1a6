"""What every check reads: the options, NVML (through the telemetry reader), the GPUs, torch if installed, and the
NVML samples taken while the load checks ran.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.hostspec import facts
from dlbench.hostspec.reader import HostReader, host_reader
from dlbench.nvml.reader import NvmlReader, load_pynvml
from dlbench.nvml import static as nvml_static
from dlbench.validate import pcie

LEVELS = ("quick", "long")
# The checks key every figure by GPU index and judge it against that index's NVML state (link, memory). NVML
# numbers GPUs in PCI bus order; CUDA, and so torch, numbers them fastest first unless CUDA_DEVICE_ORDER says
# PCI_BUS_ID (CUDA C++ Programming Guide, "CUDA Environment Variables"). Set before CUDA initializes, it makes
# torch's GPU i NVML's GPU i; the probe in the container gets the same setting.
DEVICE_ORDER = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


@dataclass
class Options:
    level: str = "quick"
    expect_gpus: int | None = None
    expect_model: str | None = None
    burn_in_seconds: float | None = None
    stack_path: Path | None = None
    stack: dict | None = None  # stack.yml, loaded
    spec_path: Path | None = None
    spec: dict | None = None  # a host spec (dlbench.hostspec.spec), loaded
    image: str | None = None
    cpu: bool = False  # measure on the CPU even when GPUs are present (small sizes)
    peer_tolerance: float = 0.10
    interval_seconds: float = 1.0  # NVML sampling while the load checks run
    data_dir: Path | None = None  # where the storage checks write (the CLI's default: storage.default_data_dir())
    checkpoint_bytes: int | None = None  # the checkpoint file's size; None: the largest model's, as far as it fits

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "expect_gpus": self.expect_gpus,
            "expect_model": self.expect_model,
            "burn_in_seconds": self.burn_in_seconds,
            "stack": str(self.stack_path) if self.stack_path else None,
            "image": self.image,
            "cpu": self.cpu,
            "peer_tolerance": self.peer_tolerance,
            "spec": str(self.spec_path) if self.spec_path else None,
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "checkpoint_bytes": self.checkpoint_bytes,
        }


@dataclass
class LoadWindow:
    """NVML samples taken while one load check ran: the evidence for link, clocks, throttling and temperature."""

    label: str
    gpu_load: bool  # the load ran on the GPUs (not the CPU path): only then do link and clocks reflect load
    samples: list[tuple[float, dict[int, dict]]] = field(default_factory=list)  # (seconds since start, readings)


class Context:
    def __init__(self, options: Options, nvml: Any = None, host: HostReader | None = None):
        self.options = options
        # The PCI bus, read before NVML: GPUs there that NVML cannot list mean a broken driver, not a CPU-only host.
        host = host if host is not None else host_reader()
        self.pci_gpus = facts.nvidia_pci_gpus(host)
        self.pci_nvswitches = facts.nvidia_pci_nvswitches(host)  # an NVSwitch system needs Fabric Manager
        self.host = host
        # the GPUs, NICs and NVMe drives, and their AER counters before any load: the link checks judge the rise
        self.pci_functions = pcie.functions(host)
        self.aer_before = pcie.read_all_aer(host, self.pci_functions)
        os.environ.update(DEVICE_ORDER)  # before torch touches CUDA: the interconnect's workers inherit it too
        self.reader = NvmlReader(nvml if nvml is not None else load_pynvml(static_calls=True), watch_xid=True)
        self.reader.start()
        self.baseline = self.reader.read_all()  # before any load: the counters the run is compared against
        self.static = (
            {gpu.index: nvml_static.read_static(self.reader.nvml, gpu.index) for gpu in self.reader.gpus}
            if self.reader.up
            else {}
        )
        # NVLink error counters before any load: the fabric check judges what they grew by during the run
        self.nvlinks_before = (
            {gpu.index: nvml_static.read_nvlinks(self.reader.nvml, gpu.index) for gpu in self.reader.gpus}
            if self.reader.up
            else {}
        )
        self.windows: list[LoadWindow] = []
        self.xid_events: list[tuple[int, int, float]] = []
        self.results: list = []  # the checks done so far, for checks that compare with them (container)
        self._torch = None

    # --- what is here ---------------------------------------------------------------------------------------
    @property
    def gpus(self):
        return self.reader.gpus

    @property
    def nvml_problem(self) -> str | None:
        return None if self.reader.up else self.reader.problem

    def torch(self):
        """torch, or None when it is not installed (the `dlbench[train]` extra)."""
        if self._torch is None and importlib.util.find_spec("torch") is not None:
            import torch

            self._torch = torch
        return self._torch

    def compute_devices(self) -> list:
        """The devices the micro-benchmarks measure: every visible GPU, or the CPU (small sizes, no verdict)."""
        torch = self.torch()
        if torch is None:
            return []
        if not self.options.cpu and torch.cuda.is_available():
            return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return [torch.device("cpu")]

    def on_gpu(self) -> bool:
        devices = self.compute_devices()
        return bool(devices) and devices[0].type == "cuda"

    def no_torch_reason(self) -> str:
        return "torch is not installed: install the training extra (pip install 'dlbench[train]')"

    # --- NVML under load ------------------------------------------------------------------------------------
    @contextmanager
    def under_load(self, label: str):
        """Sample NVML every interval while the block runs (and once at its end), and collect XID events."""
        window = LoadWindow(label, self.on_gpu())
        self.windows.append(window)
        if not self.reader.up:
            yield window
            return
        stop = threading.Event()
        start = time.monotonic()

        def sample():
            window.samples.append((round(time.monotonic() - start, 3), self.reader.read_all()))

        def loop():
            while not stop.wait(self.options.interval_seconds):
                sample()

        thread = threading.Thread(target=loop, name=f"validate-nvml-{label}", daemon=True)
        thread.start()
        try:
            yield window
        finally:
            stop.set()
            thread.join()
            sample()
            self.poll_xid()

    def poll_xid(self) -> None:
        self.xid_events.extend(self.reader.poll_xid_events())

    def load_samples(self, gpu_load_only: bool = False) -> list[tuple[str, float, dict[int, dict]]]:
        return [
            (w.label, t, readings) for w in self.windows if w.gpu_load or not gpu_load_only for t, readings in w.samples
        ]

    def close(self) -> None:
        self.reader.close()
