"""One benchmark run: build the workload, warm up, time the training steps, and measure what the device did."""

from __future__ import annotations

import platform
import resource
from dataclasses import dataclass

import torch

from dlbench import environment
from dlbench.errors import RunFailed, UserError
from dlbench.train import data, flops, peaks, results
from dlbench.train.device import Precision, resolve_device, resolve_precision
from dlbench.train.observers import RunInfo, RunObserver
from dlbench.train.timing import StepClock, step_statistics
from dlbench.workloads import get_workload

DEFAULT_STEPS = 20
# A CPU is one to three orders of magnitude slower than a GPU: smaller defaults keep `make run` to about a minute.
CPU_DEFAULT_STEPS = 10
CPU_MAX_DEFAULT_BATCH = 32


@dataclass
class RunConfig:
    workload: str
    device: str = "auto"
    batch_size: int | None = None  # None: the workload's default
    seq_len: int | None = None  # language workloads; None: the workload's default
    steps: int | None = None  # timed steps; None with no duration: DEFAULT_STEPS
    warmup: int = 3
    duration: float | None = None  # seconds of timed training, instead of a step count
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    optimizer: str = "sgd"
    seed: int = 0
    data: str = "synthetic"
    workers: int = 4
    output: str | None = None


def _optimizer(name: str, model: torch.nn.Module) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def _peak_memory(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"peak_device_memory_bytes": torch.cuda.max_memory_allocated(device),
                "peak_device_memory_reserved_bytes": torch.cuda.max_memory_reserved(device)}
    scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {"peak_device_memory_bytes": None,
            "peak_host_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale}


def _runtime_environment(device: torch.device) -> dict:
    env = environment.collect()
    env["torch"].update({"version": torch.__version__, "cuda": torch.version.cuda,
                         "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None})
    env["device"] = str(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["device_name"] = props.name
        env["device_capability"] = f"{props.major}.{props.minor}"
        env["device_memory_bytes"] = props.total_memory
    else:
        env["device_name"] = env["cpu"]["model"]
        env["torch_threads"] = torch.get_num_threads()
    return env


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


class Run:
    def __init__(self, config: RunConfig, observers: list[RunObserver] = ()):
        self.config = config
        self.observers = list(observers)
        self.workload = get_workload(config.workload)
        self.device = resolve_device(config.device)
        self.precision = Precision(resolve_precision(config.precision, self.device), self.device)
        on_cpu = self.device.type == "cpu"
        default_batch = self.workload.default_batch_size
        self.batch_size = config.batch_size or (min(default_batch, CPU_MAX_DEFAULT_BATCH) if on_cpu else default_batch)
        self.seq_len = config.seq_len or self.workload.seq_len
        if not self.workload.is_image and self.seq_len > self.workload.seq_len:
            raise UserError(f"--seq-len {self.seq_len}: {self.workload.name} has a context of {self.workload.seq_len}")
        default_steps = CPU_DEFAULT_STEPS if on_cpu else DEFAULT_STEPS
        self.timed_steps_target = config.steps if config.steps or config.duration else default_steps
        self.dataset = None if config.data == "synthetic" else data.open_dataset(config.data, self.workload, self.seq_len)
        self.run_id = results.new_run_id(self.workload.name)
        self.result = results.new_result(self.run_id, config)

    # -- the step -------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        torch.manual_seed(self.config.seed)
        self.precision.configure()
        channels_last = self.config.channels_last and self.workload.is_image
        model = self.workload.build_model().to(self.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.train()
        self.optimizer = _optimizer(self.config.optimizer, model)
        self.scaler = self.precision.grad_scaler()
        self.model = torch.compile(model) if self.config.compile else model
        if self.dataset is None:
            inputs, targets = data.synthetic_batch(self.workload, self.batch_size, self.seq_len, self.device,
                                                   self.config.seed)
            if channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            self.next_batch = lambda: (inputs, targets)
        else:
            loader = data.RealBatches(self.dataset, self.workload, self.batch_size, self.device, self.config.workers,
                                      self.config.seed)
            self.next_batch = loader.next

    def _train_step(self) -> torch.Tensor:
        inputs, targets = self.next_batch()
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            loss = flops.loss_of(self.model(inputs), targets)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss.detach()

    def _peak_flops(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return peaks.peak_flops(torch.cuda.get_device_name(self.device), self.precision.peak_key)

    # -- the run --------------------------------------------------------------------------------------------
    def execute(self) -> dict:
        result, config = self.result, self.config
        flops_per_sample = flops.training_flops_per_sample(self.workload, self.seq_len)
        peak = self._peak_flops()
        result["workload"] = {
            "name": self.workload.name, "task": self.workload.task, "sample_unit": self.workload.sample_unit,
            "parameters": self.workload.parameters, "batch_size": self.batch_size,
            "seq_len": self.seq_len if not self.workload.is_image else None,
            "tokens_per_sample": self.workload.tokens_per_sample(self.seq_len) or None,
            "training_flops_per_sample": flops_per_sample,
        }
        result["config"].update(device=str(self.device), precision=self.precision.name, batch_size=self.batch_size,
                                seq_len=result["workload"]["seq_len"])
        result["environment"] = _runtime_environment(self.device)
        info = RunInfo(self.run_id, self.workload.name, str(self.device),
                       self.device.index if self.device.type == "cuda" else None, self.batch_size,
                       self.workload.sample_unit, flops_per_sample, peak)
        clock = StepClock(self.device)
        self.first_loss = self.last_loss = None
        timed_seconds, status, error = 0.0, "completed", None
        try:
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            self._setup()
            for observer in self.observers:
                observer.on_start(info)
            for _ in range(config.warmup):
                self._record_loss(self._train_step())
            status, error, timed_seconds = self._timed_steps(clock)
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user (Ctrl-C) before timing started"
        except UserError as exc:
            self._finish("failed", str(exc))
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is recorded in the result before it is reported
            if not _is_out_of_memory(exc):
                self._finish("failed", f"{type(exc).__name__}: {exc}")
                raise
            error = (f"out of memory on {self.device} at batch size {self.batch_size}; "
                     f"try --batch-size {max(1, self.batch_size // 2)}")
            self._finish("failed", error)
            raise RunFailed(error) from None
        self._measure(clock, timed_seconds, flops_per_sample, peak)
        return self._finish(status, error)

    def _record_loss(self, loss: torch.Tensor) -> None:
        if self.first_loss is None:
            self.first_loss = loss
        self.last_loss = loss

    def _timed_steps(self, clock: StepClock) -> tuple[str, str | None, float]:
        """The measured part: (status, error, timed wall-clock seconds). Ctrl-C here keeps the steps done."""
        status, error, step, elapsed = "completed", None, 0, 0.0
        clock.start()
        for observer in self.observers:
            observer.on_timed_start()
        try:
            while True:
                loss = self._train_step()
                clock.step_done()
                step += 1
                self._record_loss(loss)
                previous, elapsed = elapsed, clock.elapsed()
                for observer in self.observers:
                    observer.on_step(step, elapsed - previous, self.batch_size, loss)
                if self.config.duration is not None and elapsed >= self.config.duration:
                    break
                if self.timed_steps_target and step >= self.timed_steps_target:
                    break
        except KeyboardInterrupt:
            status, error = "interrupted", f"interrupted by the user (Ctrl-C) after {step} timed steps"
        timed_seconds = clock.stop()
        for observer in self.observers:
            observer.on_timed_end(timed_seconds, step * self.batch_size)
        return status, error, timed_seconds

    def _measure(self, clock: StepClock, timed_seconds: float, flops_per_sample: float, peak: float | None) -> None:
        step_seconds = clock.step_seconds()
        samples = len(step_seconds) * self.batch_size
        metrics: dict = {"steps_timed": len(step_seconds), "samples_timed": samples, "timed_seconds": timed_seconds}
        if step_seconds and timed_seconds > 0:
            throughput = samples / timed_seconds  # total over total, not a mean of per-step rates
            achieved = throughput * flops_per_sample
            tokens = self.workload.tokens_per_sample(self.seq_len)
            metrics.update(
                throughput={"samples_per_second": throughput,
                            "tokens_per_second": throughput * tokens if tokens else None},
                step_time_seconds=step_statistics(step_seconds),
                achieved_flops_per_second=achieved,
                peak_flops_per_second=peak,
                mfu=achieved / peak if peak else None,
            )
        metrics.update(_peak_memory(self.device))
        metrics["loss"] = {"first": None if self.first_loss is None else float(self.first_loss),
                           "last": None if self.last_loss is None else float(self.last_loss)}
        self.result["metrics"] = metrics

    def _finish(self, status: str, error: str | None) -> dict:
        for observer in self.observers:
            if observer.section:
                try:
                    self.result[observer.section] = observer.contribute()
                except Exception as exc:  # noqa: BLE001 - telemetry trouble must not lose the measurement
                    self.result[observer.section] = {"error": f"{type(exc).__name__}: {exc}"}
        results.finish(self.result, status, error)
        results.save(self.result, self.config.output)
        for observer in self.observers:
            observer.on_finish(self.result)
        return self.result

    def close(self) -> None:
        for observer in self.observers:
            observer.close()
