"""One benchmark run: build the workload, warm up, time the training steps, and measure what the device did."""

from __future__ import annotations

import platform
import resource
import time
from dataclasses import dataclass

import torch

from dlbench import environment
from dlbench.errors import RunFailed, UserError
from dlbench.train import contention, data, device as devices, distributed, flops, interrupt, peaks, results, sharding
from dlbench.train.device import Precision, resolve_device, resolve_precision
from dlbench.train.observers import RunInfo, RunObserver
from dlbench.train.timing import StepClock, step_statistics, step_time_series
from dlbench.train.window import timed_window, warmup_for
from dlbench.workloads import check_fsdp, get_workload

# nanoGPT and llm.c pad GPT-2's 50257-token vocabulary to a multiple of 64 (50304) so that the output layer's matmul
# runs on full tensor-core tiles; --pad-vocab does the same, for MFU comparable with theirs
VOCAB_PAD_MULTIPLE = 64


@dataclass
class RunConfig:
    """What was asked for; None and "auto" stay as given here (the result shows them beside what they became)."""

    workload: str
    device: str = "auto"
    batch_size: int | None = None  # None: the workload's default
    seq_len: int | None = None  # language workloads; None: the workload's default
    steps: int | None = None  # timed steps; None with no duration: the device's default window
    warmup: int | None = None  # untimed steps; None: until step time settles
    duration: float | None = None  # seconds of timed training, instead of (or beside) a step count
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    optimizer: str = "sgd"
    seed: int = 0
    data: str = "synthetic"
    workers: int | None = None  # DataLoader workers for real data; None: from the cores and GPUs present
    output: str | None = None
    pad_vocab: bool = False
    fsdp: bool = False  # under torchrun: shard a transformer's blocks with FSDP2 instead of replicating it (DDP)


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


def _runtime_environment(device: torch.device, uuid: str | None, nvml_index: int | None) -> dict:
    env = environment.collect()
    env["torch"].update({"version": torch.__version__, "cuda": torch.version.cuda,
                         "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None})
    env.update(device=str(device), device_name=env["cpu"]["model"], device_capability=None, device_memory_bytes=None,
               device_uuid=uuid, nvml_index=nvml_index, torch_threads=torch.get_num_threads())
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=props.name, device_capability=f"{props.major}.{props.minor}",
                   device_memory_bytes=props.total_memory)
    return env


# what an allocator's failure looks like when it arrives wrapped (torch.compile re-raises errors from compiled code
# and from its autotuning as BackendCompilerFailed / InductorError with the original as cause or in the message)
_OOM_TEXTS = ("CUDA out of memory", "OutOfMemoryError", "can't allocate memory", "CUBLAS_STATUS_ALLOC_FAILED",
              "CUDNN_STATUS_ALLOC_FAILED", "cudaErrorMemoryAllocation")


def _is_out_of_memory(error: BaseException) -> bool:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, torch.OutOfMemoryError) or any(text in str(error) for text in _OOM_TEXTS):
            return True
        error = error.__cause__ or error.__context__
    return False


class Run:
    def __init__(self, config: RunConfig, observers: list[RunObserver] = (), command_line: list[str] | None = None,
                 dist_timeout: float = distributed.DEFAULT_TIMEOUT_SECONDS):
        self.config = config
        self.observers = list(observers)
        self.workload = get_workload(config.workload)
        if config.pad_vocab and self.workload.task != "causal-lm":
            raise UserError(f"--pad-vocab applies to GPT-2 workloads; {self.workload.name} is {self.workload.task}")
        # under torchrun every rank trains its own replica on the GPU of its local rank (DDP); otherwise one process
        self.where = distributed.topology()
        requested_device = distributed.device_for(config.device, self.where) if self.where else config.device
        self.device = resolve_device(requested_device)
        self.precision = Precision(resolve_precision(config.precision, self.device), self.device)
        if config.fsdp:
            check_fsdp(self.workload, self.where is not None)
            sharding.mixed_precision(self.precision.name)  # refuses fp16 before anything starts
        shard_blocks = self.workload.blocks if config.fsdp else None
        self.group = (
            distributed.ProcessGroup(self.where, self.device, dist_timeout, shard_blocks) if self.where else None
        )
        on_cpu = self.device.type == "cpu"
        default_batch, default_seq_len = self.workload.default_sizes(on_cpu)
        self.batch_size = config.batch_size or default_batch
        self.seq_len = config.seq_len or default_seq_len
        if not self.workload.is_image and self.seq_len > self.workload.seq_len:
            raise UserError(f"--seq-len {self.seq_len}: {self.workload.name} has a context of {self.workload.seq_len}")
        self.vocab_size = self.workload.vocab_size
        if config.pad_vocab:
            self.vocab_size = -(-self.vocab_size // VOCAB_PAD_MULTIPLE) * VOCAB_PAD_MULTIPLE
        self.model_overrides = {"vocab_size": self.vocab_size} if config.pad_vocab else {}
        self.window = timed_window(config.steps, config.duration, not on_cpu)
        self.warmup = warmup_for(config.warmup, self.device.type)
        self.channels_last = config.channels_last and self.workload.is_image
        synthetic = config.data == "synthetic"
        self.workers = None if synthetic else (
            config.workers if config.workers is not None else data.default_workers(self.device))
        self.dataset = None if synthetic else data.open_dataset(config.data, self.workload, self.seq_len)
        self.run_id = results.new_run_id(self.workload.name)
        self.result = results.new_result(self.run_id, config, command_line)
        self.input_wait = 0.0
        self.cpu_load: dict | None = None

    @property
    def _tokens_per_sample(self) -> int | None:
        return self.workload.tokens_per_sample(self.seq_len) or None

    @property
    def timed_steps_target(self) -> int | None:
        return self.window.steps if self.window.seconds is None else None

    # -- the step -------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        torch.manual_seed(self.config.seed)
        self.precision.configure()
        model = self.workload.build_model(**self.model_overrides).to(self.device)
        self.result["workload"]["parameters"] = sum(p.numel() for p in model.parameters())
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.train()
        if self.group:  # after the move to the device, before the optimizer and compile (DDP's and FSDP's order)
            model = self.group.wrap(model, self.precision.name)
        self.optimizer = _optimizer(self.config.optimizer, model)
        self.scaler = self.precision.grad_scaler()
        self.model = torch.compile(model) if self.config.compile else model
        # each rank draws its own batches (the model starts equal everywhere: same seed, and DDP broadcasts rank 0's;
        # FSDP shards the equal initial parameters, each rank keeping its own slice)
        data_seed = self.config.seed + (self.where.rank if self.where else 0)
        if self.dataset is None:
            inputs, targets = data.synthetic_batch(self.workload, self.batch_size, self.seq_len, self.device,
                                                   data_seed)
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            self.next_batch = lambda: (inputs, targets)
        else:
            loader = data.RealBatches(self.dataset, self.workload, self.batch_size, self.device, self.workers,
                                      data_seed, channels_last=self.channels_last)
            self.next_batch = loader.next

    def _train_step(self) -> torch.Tensor:
        waiting = time.perf_counter()
        inputs, targets = self.next_batch()
        self.input_wait += time.perf_counter() - waiting
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

    def _peak(self) -> dict | None:
        if self.device.type != "cuda":
            return None
        return peaks.applied(torch.cuda.get_device_name(self.device), self.precision.peak_key)

    # -- the run --------------------------------------------------------------------------------------------
    def _describe(self, flops_per_sample: float, peak: dict | None) -> None:
        workload, result = self.workload, self.result
        result["workload"].update({
            "description": workload.description, "task": workload.task, "sample_unit": workload.sample_unit,
            "sample": "image" if workload.is_image else "sequence",
            "parameters": workload.parameters, "batch_size": self.batch_size,
            "seq_len": self.seq_len if not workload.is_image else None,
            "tokens_per_sample": workload.tokens_per_sample(self.seq_len) or None,
            "vocab_size": self.vocab_size or None,
            "training_flops_per_sample": flops_per_sample,
            "flops_convention": flops.CONVENTION,
        })
        result["config"].update(
            device=str(self.device), precision=self.precision.name, batch_size=self.batch_size,
            seq_len=result["workload"]["seq_len"], steps=self.window.steps, duration=self.window.seconds,
            warmup=self.warmup.steps, channels_last=self.channels_last, workers=self.workers,
        )
        result["peak"] = peak

    def execute(self) -> dict:
        result = self.result
        flops_per_sample = flops.training_flops_per_sample(self.workload, self.seq_len, **self.model_overrides)
        uuid = devices.cuda_uuid(self.device)
        nvml_index = devices.nvml_index(uuid)
        if uuid is not None and nvml_index is None:
            result["warnings"].append(f"{self.device} ({uuid}) was not found through NVML: no GPU telemetry rather "
                                      "than another GPU's")
        peak = self._peak()
        peak_flops = peak["tflops"] * 1e12 if peak else None
        self._describe(flops_per_sample, peak)
        result["environment"] = _runtime_environment(self.device, uuid, nvml_index)
        clock = StepClock(self.device)
        self.first_loss = self.last_loss = None
        self.load = contention.CpuContention(self.device.type)
        timed_seconds, status, error = 0.0, "completed", None
        try:
            if self.device.type == "cuda":
                devices.select(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
            if self.group:
                result["distributed"] = distributed.topology_section(self.where, self.group, self.batch_size,
                                                                     self._tokens_per_sample)
                self.group.start()
                # one job, one run id: every rank's live series carry rank 0's, so that the dashboards and alerts
                # see the ranks of a job as one run told apart by `rank` (each rank drew its own id at start)
                self.run_id = result["run_id"] = self.group.shared(self.run_id)
            self._setup()
            if self.group:
                result["distributed"]["sharding"] = self.group.sharding
            result["backend"] = self.precision.backend_flags()
            info = RunInfo(self.run_id, self.workload.name, str(self.device), nvml_index, self.batch_size,
                           self.workload.sample_unit, flops_per_sample, peak_flops, gpu_uuid=uuid)
            for observer in self.observers:
                observer.on_start(info)
            self._warm_up(clock)
            status, error, timed_seconds = self._timed_steps(clock)
        except KeyboardInterrupt as stop:
            interrupt.hold()
            status, error = self._interrupted(stop, "before timing started")
        except UserError as exc:
            self._finish("failed", str(exc))
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is recorded in the result before it is reported
            if self.group and distributed.is_collective_error(exc):
                failure = self.group.failure(exc)
                self._finish("failed", str(failure))
                raise failure from None
            if not _is_out_of_memory(exc):
                self._finish("failed", f"{type(exc).__name__}: {exc}")
                raise
            error = (f"out of memory on {self.device} at batch size {self.batch_size}"
                     f"{' (compiled)' if self.config.compile else ''}; try --batch-size {max(1, self.batch_size // 2)}")
            self._finish("failed", error)
            raise RunFailed(error) from None
        try:  # still holding signals since the timed loop ended: a second Ctrl-C must not lose the measurement
            self._measure(clock, timed_seconds, flops_per_sample, peak_flops)
            if self.group and status == "completed":
                status, error = self._gather_ranks(clock, uuid)
            self._save(status, error)
        finally:
            interrupt.release()
        return self._notify()

    def _gather_ranks(self, clock: StepClock, uuid: str | None) -> tuple[str, str | None]:
        """Gather every rank's window into rank 0's result. The collectives wait on the other ranks, so signals are
        let through meanwhile (torchrun's SIGTERM when a rank died, Ctrl-C), and held again for the save."""
        interrupt.release()
        try:
            self._gather(clock, uuid)
        except KeyboardInterrupt as stop:
            interrupt.hold()
            return self._interrupted(stop, "while gathering the ranks' results")
        except Exception as exc:  # noqa: BLE001 - a peer lost after the timed window still fails the run
            interrupt.hold()
            if not distributed.is_collective_error(exc):
                raise
            failure = self.group.failure(exc)
            self._save("failed", str(failure))
            self._notify()
            raise failure from None
        interrupt.hold()
        return "completed", None

    def _forward_backward(self) -> None:
        inputs, targets = self.next_batch()
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            loss = flops.loss_of(self.model(inputs), targets)
        loss.backward()

    def _gather(self, clock: StepClock, uuid: str | None) -> None:
        """Every rank's window, its parameters' digest and the communication probe, gathered into rank 0's result."""
        digest = distributed.parameters_digest(self.model)  # before the probe, which leaves the parameters alone
        # DDP's no_sync() isolates its one collective; FSDP all-gathers parameters in every pass, so no pass runs
        # without communication to compare against: not measured there
        probe = (
            distributed.communication_probe(self.group, self._forward_backward, clock.synchronize)
            if self.group.strategy == "ddp"
            else None
        )
        record = distributed.rank_record(self.where, self.device, uuid, self.result["metrics"], digest, probe,
                                         distributed.parameters_held(self.model))
        records = self.group.gather(record)
        self.result["distributed"] = distributed.summary(self.where, self.group, self.batch_size, records,
                                                         self._tokens_per_sample)

    def _interrupted(self, stop: KeyboardInterrupt, when: str) -> tuple[str, str]:
        signal = interrupt.signal_of(stop)
        self.result["interrupted_by"] = signal.signal_name
        how = "Ctrl-C" if signal.signal_name == "SIGINT" else "a stop request: systemd, Slurm's scancel, kill"
        if self.where and signal.signal_name == "SIGTERM":  # torchrun stops every rank when one of them fails
            how += f", or torchrun after another rank failed (its report names the rank); {self.where.where()}"
        return "interrupted", f"interrupted by {signal.signal_name} ({how}) {when}"

    def _warm_up(self, clock: StepClock) -> None:
        """Untimed steps until the warm-up rule is met; synchronized per step, since these are not measured."""
        step_seconds: list[float] = []
        started = first_done = time.perf_counter()
        settled = None
        while True:
            if self.warmup.steps is not None and len(step_seconds) >= self.warmup.steps:
                break
            begin = time.perf_counter()
            self._record_loss(self._train_step())
            clock.synchronize()
            now = time.perf_counter()
            step_seconds.append(now - begin)
            if len(step_seconds) == 1:
                first_done = now
            done, settled = self.warmup.finished(step_seconds, now - first_done)
            if done:
                break
        self.result["warmup"] = {"steps": len(step_seconds), "seconds": round(time.perf_counter() - started, 4),
                                 "settled": settled, "rule": self.warmup.rule,
                                 "last_step_seconds": step_seconds[-1] if step_seconds else None}
        if settled is False:
            self.result["warnings"].append(f"step time had not settled after {len(step_seconds)} warm-up steps "
                                           f"({self.warmup.max_seconds:g} s): the timed window may include warm-up "
                                           "effects; pass --warmup N to warm up longer")

    def _record_loss(self, loss: torch.Tensor) -> None:
        if self.first_loss is None:
            self.first_loss = loss
        self.last_loss = loss

    def _timed_steps(self, clock: StepClock) -> tuple[str, str | None, float]:
        """The measured part: (status, error, timed wall-clock seconds). An interruption here keeps the steps done."""
        status, error, step, elapsed = "completed", None, 0, 0.0
        clock.start()
        self.load.start()
        self.input_wait = 0.0
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
                if self.window.done(step, elapsed):
                    break
        except KeyboardInterrupt as stop:
            interrupt.hold()
            status, error = self._interrupted(stop, f"after {step} timed steps")
        interrupt.hold()  # until the result is saved (execute releases)
        timed_seconds = clock.stop()
        self.cpu_load = self.load.stop()
        for observer in self.observers:
            observer.on_timed_end(timed_seconds, step * self.batch_size)
        return status, error, timed_seconds

    def _measure(self, clock: StepClock, timed_seconds: float, flops_per_sample: float, peak: float | None) -> None:
        step_seconds = clock.step_seconds()
        samples = len(step_seconds) * self.batch_size
        series, group_size = step_time_series(step_seconds)
        metrics: dict = {"steps_timed": len(step_seconds), "samples_timed": samples, "timed_seconds": timed_seconds,
                         "throughput": None, "step_time_seconds": None, "step_times_seconds": series,
                         "step_times_group_size": group_size, "achieved_flops_per_second": None,
                         "peak_flops_per_second": peak, "mfu": None,
                         "input_wait_seconds": round(self.input_wait, 6) if step_seconds else None,
                         "input_wait_share": None, "cpu_contention": self.cpu_load}
        if step_seconds and timed_seconds > 0:
            throughput = samples / timed_seconds  # total over total, not a mean of per-step rates
            achieved = throughput * flops_per_sample
            tokens = self.workload.tokens_per_sample(self.seq_len)
            computing = timed_seconds - self.input_wait
            metrics.update(
                throughput={"samples_per_second": throughput,
                            "tokens_per_second": throughput * tokens if tokens else None,
                            "sample": self.result["workload"]["sample"],
                            "headline": "tokens_per_second" if tokens else "samples_per_second",
                            "compute_samples_per_second": samples / computing if computing > 0 else None},
                step_time_seconds=step_statistics(step_seconds),
                achieved_flops_per_second=achieved,
                mfu=achieved / peak if peak else None,
                input_wait_share=round(self.input_wait / timed_seconds, 4),
            )
        metrics.update(_peak_memory(self.device))
        metrics["loss"] = {"first": None if self.first_loss is None else float(self.first_loss),
                           "last": None if self.last_loss is None else float(self.last_loss)}
        self.result["metrics"] = metrics
        for note in (contention.warning(metrics["cpu_contention"]), self._short_window_warning(metrics)):
            if note:
                self.result["warnings"].append(note)

    def _short_window_warning(self, metrics: dict) -> str | None:
        seconds = metrics["timed_seconds"]
        if metrics["steps_timed"] and seconds < 1.0:
            return (f"the timed window lasted {seconds:.3f} s: timer and scheduler noise and the telemetry's 0.5 s "
                    "sampling are large against it; time at least several seconds (--duration)")
        return None

    def _finish(self, status: str, error: str | None) -> dict:
        with interrupt.held():  # the result is written whole, whatever arrives now
            self._save(status, error)
        return self._notify()

    def _save(self, status: str, error: str | None) -> None:
        """Complete the result and write it; the caller holds signals."""
        for observer in self.observers:
            if observer.section:
                try:
                    self.result[observer.section] = observer.contribute()
                except Exception as exc:  # noqa: BLE001 - telemetry trouble must not lose the measurement
                    self.result[observer.section] = {"error": f"{type(exc).__name__}: {exc}"}
        self._check_telemetry_gpu()
        results.finish(self.result, status, error)
        if self.is_reporting_rank:  # one result per job, from rank 0
            results.save(self.result, self.config.output)

    def _notify(self) -> dict:
        for observer in self.observers:  # a push may wait on the network: interruptible again
            observer.on_finish(self.result)
        return self.result

    def _check_telemetry_gpu(self) -> None:
        """Telemetry must describe the GPU that trained: compare the UUIDs CUDA and NVML report."""
        gpu = (self.result.get("telemetry") or {}).get("gpu") or {}
        expected = (self.result.get("environment") or {}).get("device_uuid")
        if gpu.get("uuid") and expected and gpu["uuid"] != expected:
            self.result["warnings"].append(f"telemetry read {gpu['uuid']}, but the run trained on {expected}")

    @property
    def is_reporting_rank(self) -> bool:
        return self.where is None or self.where.rank == 0

    def close(self) -> None:
        for observer in self.observers:
            observer.close()
        if self.group:
            # DDP's reducer holds the process group: free it while the group is still alive, then destroy the group.
            # Left to the interpreter's exit, the reducer and gloo's threads are torn down after the group and the
            # process can hang there after its result is written (seen here about one run in three with gloo).
            self.model = self.optimizer = None
            self.group.close()
