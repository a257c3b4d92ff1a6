"""GPU code paths without a GPU: torch.cuda is replaced at its narrowest boundary (device queries, events).

No GPU exists on the CI machines; these fakes stand in for the CUDA runtime's answers only. The real GPU run is
benchmarks/gpu_reference.sh, recorded in docs/benchmarks.md.
"""

import pytest
import torch

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

    def record(self):
        self.at = FakeEvent.now_ms

    def elapsed_time(self, other):
        return other.at - self.at


def test_cuda_step_times_come_from_events_in_seconds(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
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
    assert result["peak"] == {"gpu": "H100 SXM", "device_name": "NVIDIA H100 80GB HBM3", "precision": "bf16",
                              "tflops": 989.4, "source": entry["source"]}
    assert metrics["mfu"] == pytest.approx(metrics["achieved_flops_per_second"] / 989.4e12)
    rows = dict(zip(*(col._cells for col in summary_table(result).columns)))
    assert rows["MFU"] == f"{metrics['mfu']:.1%}"
