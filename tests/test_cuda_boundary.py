"""GPU code paths without a GPU: torch.cuda is replaced at its narrowest boundary (device queries, events).

No GPU exists on the CI machines; these fakes stand in for the CUDA runtime's answers only. The real GPU run is
benchmarks/gpu_reference.sh, recorded in docs/benchmarks.md.
"""

import pytest
import torch
from torch._dynamo.exc import BackendCompilerFailed
from torch._inductor.exc import InductorError

from dlbench.errors import UserError
from dlbench.train.device import Precision, resolve_device, resolve_precision
from dlbench.train.timing import StepClock


@pytest.fixture
def fake_gpus(monkeypatch):
    """Pretend `count` GPUs of compute capability `capability` are visible."""

    def install(count=2, capability=(9, 0), name="NVIDIA H100 80GB HBM3"):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: capability[0] >= 8)

    return install


def test_auto_picks_the_first_gpu_and_bf16_on_hopper(fake_gpus):
    fake_gpus()
    device = resolve_device("auto")
    assert device == torch.device("cuda", 0)
    assert resolve_precision("auto", device) == "bf16"


def test_a_gpu_index_beyond_the_visible_ones_is_refused(fake_gpus):
    fake_gpus(count=2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(UserError, match=r"only 2 GPU\(s\) visible \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:5")


def test_volta_gets_fp32_by_default_and_refuses_bf16_and_tf32(fake_gpus):
    fake_gpus(capability=(7, 0), name="Tesla V100-SXM2-32GB")
    device = resolve_device("cuda")
    assert resolve_precision("auto", device) == "fp32"
    with pytest.raises(UserError, match="Tesla V100-SXM2-32GB has no bf16 support; use --precision fp16"):
        resolve_precision("bf16", device)
    with pytest.raises(UserError, match="tf32 needs an NVIDIA GPU of the Ampere generation"):
        resolve_precision("tf32", device)
    assert resolve_precision("fp16", device) == "fp16"


@pytest.mark.parametrize("precision,allow_tf32", [("fp32", False), ("tf32", True), ("bf16", False)])
def test_tf32_is_set_explicitly_so_fp32_means_fp32(precision, allow_tf32):
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = not allow_tf32
        Precision(precision, torch.device("cuda", 0)).configure()
        assert torch.backends.cudnn.allow_tf32 is allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 is allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_fp16_uses_a_grad_scaler_and_bf16_does_not():
    assert Precision("fp16", torch.device("cpu")).grad_scaler() is not None
    assert Precision("bf16", torch.device("cpu")).grad_scaler() is None


class FakeEvent:
    """A CUDA event whose elapsed_time (milliseconds, as CUDA reports) comes from a scripted clock."""

    now_ms = 0.0

    def __init__(self, enable_timing=False):
        assert enable_timing, "step timing needs timing-enabled events"
        self.at = None

    def record(self, stream=None):
        self.at = FakeEvent.now_ms

    def elapsed_time(self, other):
        return other.at - self.at


def test_cuda_step_times_come_from_events_in_seconds(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: None)
    synchronized = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synchronized.append(device))
    clock = StepClock(torch.device("cuda", 0))
    clock.start()
    for step_ms in (10.0, 12.0, 11.0):
        FakeEvent.now_ms += step_ms
        clock.step_done()
    clock.stop()
    assert clock.step_seconds() == pytest.approx([0.010, 0.012, 0.011])
    assert len(synchronized) == 2  # once to start timing, once to stop: never per step


def test_mfu_is_achieved_over_the_device_peak_and_shown(monkeypatch):
    # The CPU trains; the peak is what the table gives a real H100 SXM in bf16.
    from dlbench.train import peaks
    from dlbench.train.report import summary_table
    from dlbench.train.runner import Run, RunConfig

    entry = peaks.applied("NVIDIA H100 80GB HBM3", "bf16")
    monkeypatch.setattr(Run, "_peak", lambda self: entry)
    run = Run(RunConfig("mnist-mlp", device="cpu", steps=2, warmup=0))
    result = run.execute()
    run.close()
    metrics = result["metrics"]
    assert metrics["peak_flops_per_second"] == pytest.approx(989.4e12)
    assert result["peak"] == {
        "gpu": "H100 SXM",
        "device_name": "NVIDIA H100 80GB HBM3",
        "precision": "bf16",
        "tflops": 989.4,
        "source": entry["source"],
    }
    assert metrics["mfu"] == pytest.approx(metrics["achieved_flops_per_second"] / 989.4e12)
    rows = dict(zip(*(col._cells for col in summary_table(result).columns)))
    assert rows["MFU"] == f"{metrics['mfu']:.1%}"


# --- the GPU a run uses, and what it records about it -----------------------------------------------------------
@pytest.fixture
def cudnn_flags():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_cudnn_autotuning_is_switched_on_for_gpu_runs_and_recorded(cudnn_flags):
    torch.backends.cudnn.benchmark = False
    precision = Precision("bf16", torch.device("cuda", 0))
    precision.configure()
    assert torch.backends.cudnn.benchmark is True  # nothing set it before: CNN numbers sat below the field's
    flags = precision.backend_flags()
    assert flags["cudnn_benchmark"] is True and flags["autocast_dtype"] == "bfloat16"
    assert flags["cudnn_allow_tf32"] is False and flags["matmul_allow_tf32"] is False


class StreamEvent(FakeEvent):
    def record(self, stream=None):
        super().record(stream)
        self.stream = stream


def test_step_events_are_recorded_on_the_runs_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Event", StreamEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    clock = StepClock(torch.device("cuda", 1))
    clock.start()
    clock.step_done()
    assert [mark.stream for mark in clock._marks] == ["stream of cuda:1"] * 2  # was GPU 0's current stream


class CudaProperties:
    def __init__(self, uuid):
        self.uuid, self.name, self.major, self.minor, self.total_memory = uuid, "NVIDIA H100 80GB HBM3", 9, 0, 80 << 30


def test_cuda_N_becomes_the_current_device_before_the_run_touches_it(fake_gpus, monkeypatch):
    """`--device cuda:1`: set_device(cuda:1) before the model, the batch, the events or the memory statistics."""
    from dlbench.train import device as devices
    from dlbench.train.runner import Run, RunConfig

    fake_gpus(count=2)
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", str(device))))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append(("reset", str(device))))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: CudaProperties("0f1c"))
    monkeypatch.setattr(devices, "nvml_index", lambda uuid, nvml=None: None)

    class StopAtSetup(Exception):
        pass

    def setup(self):
        calls.append(("setup", None))
        raise StopAtSetup

    monkeypatch.setattr(Run, "_setup", setup)
    run = Run(RunConfig("mnist-mlp", device="cuda:1", steps=1, warmup=0))
    with pytest.raises(StopAtSetup):
        run.execute()
    assert calls == [("set_device", "cuda:1"), ("reset", "cuda:1"), ("setup", None)]
    assert run.result["environment"]["device_uuid"] == "GPU-0f1c"


def test_telemetry_reads_the_gpu_cuda_trains_on_under_cuda_visible_devices(fake_gpus, monkeypatch):
    """CUDA_VISIBLE_DEVICES=1: CUDA calls NVML's GPU 1 'cuda:0'. The UUID maps one to the other."""
    from dlbench.nvml import simulated
    from dlbench.telemetry.observers import TelemetryObserver
    from dlbench.train import device as devices
    from dlbench.train.observers import RunInfo

    nvml = simulated.from_spec("h100-sxm*2")
    second = nvml.gpus[1].uuid  # "GPU-fa4e0001-..."
    fake_gpus(count=1)
    # CUDA reports the same 16 bytes without NVML's "GPU-" prefix
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: CudaProperties(second[4:]))
    calls = []

    class Recorded:
        """simulated with the UUID calls recorded (what the real pynvml is asked)."""

        def __getattr__(self, name):
            target = getattr(nvml, name)
            if callable(target) and name in ("nvmlDeviceGetHandleByUUID", "nvmlDeviceGetIndex"):
                return lambda *args: (calls.append(name), target(*args))[1]
            return target

    uuid = devices.cuda_uuid(torch.device("cuda", 0))
    assert uuid == second
    index = devices.nvml_index(uuid, Recorded())
    assert index == 1 and calls == ["nvmlDeviceGetHandleByUUID", "nvmlDeviceGetIndex"]
    assert nvml._initialised == 0  # init and shutdown paired

    telemetry = TelemetryObserver(interval=0.05, nvml=nvml)
    try:
        telemetry.on_start(RunInfo("r", "resnet50", "cuda:0", index, 64, "images", 1e9, None, gpu_uuid=uuid))
        telemetry.on_timed_start()
        telemetry.on_timed_end(0.1, 64)
    finally:
        telemetry.close()
    assert telemetry.contribute()["gpu"]["uuid"] == second  # NVML's GPU 0 before: another job's GPU


def test_a_uuid_nvml_does_not_know_gives_no_index_rather_than_a_wrong_one():
    from dlbench.nvml import simulated
    from dlbench.train import device as devices

    assert devices.nvml_index("GPU-00000000-0000-0000-0000-000000000000", simulated.from_spec("h100-sxm")) is None


@pytest.mark.parametrize(
    "make",
    [
        lambda oom: _raised_from(RuntimeError("compiled graph failed"), oom),
        lambda oom: BackendCompilerFailed(lambda: None, oom, None),  # what torch.compile raises from its backend
        lambda oom: InductorError(oom, None),
    ],
)
def test_out_of_memory_is_recognised_when_torch_compile_wraps_it(make):
    from dlbench.train.runner import _is_out_of_memory

    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    assert _is_out_of_memory(make(oom))
    assert not _is_out_of_memory(RuntimeError("shape mismatch"))


def _raised_from(error, cause):
    try:
        raise error from cause
    except RuntimeError as raised:
        return raised
