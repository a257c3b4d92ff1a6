"""One benchmark run: build the workload, warm up, time the training steps, and measure what the device did."""

from __future__ import annotations

import os
import platform
from contextlib import nullcontext
import resource
import time
from dataclasses import dataclass

import torch

from dlbench import environment
from dlbench.train import launch
from dlbench.errors import RunFailed, UserError
from dlbench.train import anchors, contention, data, device as devices, distributed, fit, flops, interrupt, peaks
from dlbench.train import input_wait, mamf, recipe as recipes, results
from dlbench.train.device import Precision, cpu_emulation_warning, resolve_device, resolve_precision
from dlbench.train.observers import RunInfo, RunObserver
from dlbench.train.timing import StepClock, step_statistics, step_time_series
from dlbench.train.window import more_steps, planned_steps, settled_step_seconds, timed_window, warmup_for
from dlbench.workloads import Workload, check_fsdp, get_workload

# nanoGPT and llm.c pad GPT-2's 50257-token vocabulary to a multiple of 64 (50304) so that the output layer's matmul
# runs on full tensor-core tiles; --pad-vocab does the same, for MFU comparable with theirs
VOCAB_PAD_MULTIPLE = 64

# Test hook, not a setting: "RANK:SECONDS" makes rank RANK sleep SECONDS before each step's batch, so that the tests
# can skew one rank of a job against the others (tests/test_distributed.py). Read here and nowhere else.
TEST_STEP_DELAY_VARIABLE = "DLBENCH_TEST_STEP_DELAY"


def _test_step_delay() -> tuple[int, float] | None:
    """(the rank to slow, its seconds of sleep before each step), or None when the hook is not set."""
    text = os.environ.get(TEST_STEP_DELAY_VARIABLE, "")
    if not text:
        return None
    try:
        delayed_rank, seconds = text.split(":")
        return int(delayed_rank), float(seconds)
    except ValueError:
        raise UserError(f"{TEST_STEP_DELAY_VARIABLE}={text!r}: expected RANK:SECONDS (a test hook)") from None


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
    optimizer: str | None = None  # None: the workload's (AdamW for the Llama workloads, SGD otherwise)
    seed: int = 0
    data: str = "synthetic"
    workers: int | None = None  # DataLoader workers for real data; None: from the cores and GPUs present
    output: str | None = None
    pad_vocab: bool = False
    # under torchrun: shard a transformer's blocks with FSDP2 instead of replicating it (DDP); None: the workload's
    fsdp: bool | None = None
    activation_checkpointing: str | None = None  # none, selective or full per block; None: the workload's
    mamf_from: str | None = None  # a `dlbench validate --json` report: MFU against its measured bf16 matmul rate too


def _optimizer(name: str, model: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    if name == "adamw":  # on GPUs the fused kernel, torchtitan's default implementation
        return torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, fused=device.type == "cuda")
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def _peak_memory(device: torch.device) -> dict:
    if device.type == "cuda":
        return {
            "peak_device_memory_bytes": torch.cuda.max_memory_allocated(device),
            "peak_device_memory_reserved_bytes": torch.cuda.max_memory_reserved(device),
        }
    scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return {
        "peak_device_memory_bytes": None,
        "peak_host_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
    }


def _runtime_environment(device: torch.device, uuid: str | None, nvml_index: int | None) -> dict:
    env = environment.collect()
    env["torch"].update(
        {
            "version": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        }
    )
    env.update(
        device=str(device),
        device_name=env["cpu"]["model"],
        device_capability=None,
        device_memory_bytes=None,
        device_uuid=uuid,
        nvml_index=nvml_index,
        torch_threads=torch.get_num_threads(),
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            device_name=props.name,
            device_capability=f"{props.major}.{props.minor}",
            device_memory_bytes=props.total_memory,
        )
    return env


# what an allocator's failure looks like when it arrives wrapped (torch.compile re-raises errors from compiled code
# and from its autotuning as BackendCompilerFailed / InductorError with the original as cause or in the message)
_OOM_TEXTS = (
    "CUDA out of memory",
    "OutOfMemoryError",
    "can't allocate memory",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_ALLOC_FAILED",
    "cudaErrorMemoryAllocation",
)


def _is_out_of_memory(error: BaseException) -> bool:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, torch.OutOfMemoryError) or any(text in str(error) for text in _OOM_TEXTS):
            return True
        error = error.__cause__ or error.__context__
    return False


def settings_for(workload: Workload, config: RunConfig, on_cpu: bool, distributed: bool) -> dict:
    """What a run trains with where the command line leaves it to the workload (its recipe) or the device: one place
    for Run and for `dlbench run`'s check before it starts torchrun."""
    recipe = workload.recipe
    default_batch, default_seq_len = workload.default_sizes(on_cpu)
    return {
        "optimizer": config.optimizer or recipe.optimizer,
        "checkpointing": config.activation_checkpointing or recipe.activation_checkpointing,
        # the Llama workloads shard by default wherever there are ranks to shard across (torchtitan's FSDP2 over all)
        "fsdp": config.fsdp if config.fsdp is not None else recipe.fsdp and distributed,
        "batch_size": config.batch_size or default_batch,
        "seq_len": config.seq_len or default_seq_len,
    }


def check_fit(
    workload: Workload,
    settings: dict,
    device: torch.device,
    precision: Precision,
    ranks: int,
    ranks_on_host: int,
    model_overrides: dict,
) -> dict:
    """The fit check (dlbench/train/fit.py) against this device's memory: a GPU's own, or the host's shared by the
    ranks on it."""
    if device.type == "cuda":
        capacity = torch.cuda.get_device_properties(device).total_memory
        where = f"one {torch.cuda.get_device_name(device)}"
    else:
        capacity = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // ranks_on_host
        where = "this host's memory" + (f" shared by {ranks_on_host} ranks" if ranks_on_host > 1 else "")
    shape = fit.shape_of(workload, **model_overrides)
    return fit.check(
        workload,
        shape,
        capacity,
        where,
        ranks,
        settings["fsdp"],
        settings["optimizer"],
        settings["batch_size"],
        settings["seq_len"] if not workload.is_image else 0,
        settings["checkpointing"],
        gather_bytes=2 if precision.autocast_dtype else 4,
    )


def check_job_fits(config: RunConfig, processes: int, device_name: str) -> None:
    """`dlbench run --gpus N` / `--nproc N`: the fit check (and --mamf-from's report) for the whole job before torchrun
    starts, so that a job that cannot fit says so in one line rather than once per rank with torchrun's report after."""
    workload = get_workload(config.workload)
    device = resolve_device(device_name)
    precision = Precision(resolve_precision(config.precision, device), device)
    settings = settings_for(workload, config, device.type == "cpu", distributed=True)
    check_fit(workload, settings, device, precision, processes, processes, {})
    mamf_for_run(config.mamf_from, workload, device)


def mamf_for_run(path: str | None, workload, device: torch.device) -> dict | None:
    """--mamf-from: the host's measured bf16 matmul rate for the `llm` section, refused before anything starts."""
    if path is None:
        return None
    if workload.recipe.compared_with != "torchtitan":
        raise UserError(f"--mamf-from reports MFU in the Llama workloads' `llm` section; {workload.name} has none")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return mamf.for_device(path, device.type, name)


class Run:
    def __init__(
        self,
        config: RunConfig,
        observers: list[RunObserver] = (),
        command_line: list[str] | None = None,
        dist_timeout: float = distributed.DEFAULT_TIMEOUT_SECONDS,
    ):
        self.config = config
        self.observers = list(observers)
        self.workload = get_workload(config.workload)
        if config.pad_vocab and not self.workload.builder.startswith("dlbench.models.gpt2:"):  # Llama's: 64 x 2,004
            raise UserError(f"--pad-vocab applies to GPT-2 workloads; {self.workload.name} is {self.workload.task}")
        # under torchrun every rank trains its own replica on the GPU of its local rank (DDP); otherwise one process
        self.where = distributed.topology()
        if self.where:  # each rank seeds its data with seed + rank: the last rank's must still be a valid seed
            launch.check_seed_for_ranks(config.seed, self.where.world_size)
        requested_device = distributed.device_for(config.device, self.where) if self.where else config.device
        self.device = resolve_device(requested_device)
        self.mamf = mamf_for_run(config.mamf_from, self.workload, self.device)
        recipe = self.workload.recipe
        if config.precision == "fp8" and not recipe.float8:
            raise UserError(
                f"--precision fp8 converts the Llama workloads' linears to Float8; {self.workload.name} "
                "is not one: use --precision bf16"
            )
        self.precision = Precision(resolve_precision(config.precision, self.device), self.device)
        on_cpu = self.device.type == "cpu"
        settings = settings_for(self.workload, config, on_cpu, distributed=self.where is not None)
        self.optimizer_name, self.checkpointing = settings["optimizer"], settings["checkpointing"]
        if self.checkpointing != "none" and not self.workload.blocks:
            raise UserError(
                f"--activation-checkpointing {self.checkpointing} wraps a transformer's blocks; "
                f"{self.workload.name} has none: use --activation-checkpointing none"
            )
        if config.fsdp:
            check_fsdp(self.workload, self.where is not None)
        self.fsdp = settings["fsdp"]
        if self.fsdp:
            from dlbench.train import sharding  # FSDP: only multi-process runs import it (dlbench.train.distributed)

            sharding.mixed_precision(self.precision.name)  # refuses fp16 before anything starts
        shard_blocks = self.workload.blocks if self.fsdp else None
        self.group = (
            distributed.ProcessGroup(self.where, self.device, dist_timeout, shard_blocks) if self.where else None
        )
        self.batch_size, self.seq_len = settings["batch_size"], settings["seq_len"]
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
        self.workers = (
            None if synthetic else (config.workers if config.workers is not None else data.default_workers(self.device))
        )
        self.dataset = None if synthetic else data.open_dataset(config.data, self.workload, self.seq_len)
        self.memory_estimate = self._check_fit()
        self.run_id = results.new_run_id(self.workload.name)
        self.result = results.new_result(self.run_id, config, command_line)
        emulated = cpu_emulation_warning(self.precision.name, self.device)
        if emulated:
            self.result["warnings"].append(emulated)
        self.input_wait = input_wait.meter_for(self.device, synthetic)  # on CUDA the GPU's idle time, not the host's
        self.cpu_load: dict | None = None
        self.warmup_step_seconds: float | None = None  # the settled step time the warm-up ended on

    def _check_fit(self) -> dict:
        """Refuse, before anything is allocated, a run whose lower-bound memory per rank exceeds what it has."""
        settings = {
            "optimizer": self.optimizer_name,
            "checkpointing": self.checkpointing,
            "fsdp": self.fsdp,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
        }
        return check_fit(
            self.workload,
            settings,
            self.device,
            self.precision,
            self.where.world_size if self.where else 1,
            self.where.local_world_size if self.where else 1,
            self.model_overrides,
        )

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
        # torchtitan's order (models/llama3/parallelize.py): Float8 linears, activation checkpointing, per-block
        # compile, then sharding; the optimizer last, over the sharded parameters
        self.after_step = None
        if self.precision.name == "fp8":
            self.result["float8"] = recipes.convert_float8(model, sharded=self.fsdp)
            if self.fsdp:
                self.after_step = recipes.float8_scale_step(model)
        recipes.checkpoint_blocks(model, self.workload.blocks, self.checkpointing)
        per_block = self.config.compile and self.workload.recipe.compile_unit == "block"
        if per_block:
            recipes.compile_blocks(model, self.workload.blocks)
        if self.group:  # after the move to the device, before the optimizer and compile (DDP's and FSDP's order)
            model = self.group.wrap(model, self.precision.name)
        self.optimizer = _optimizer(self.optimizer_name, model, self.device)
        self.scaler = self.precision.grad_scaler()
        self.model = torch.compile(model) if self.config.compile and not per_block else model
        # each rank draws its own batches (the model starts equal everywhere: same seed, and DDP broadcasts rank 0's;
        # FSDP shards the equal initial parameters, each rank keeping its own slice)
        data_seed = self.config.seed + (self.where.rank if self.where else 0)
        if self.dataset is None:
            inputs, targets = data.synthetic_batch(self.workload, self.batch_size, self.seq_len, self.device, data_seed)
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            self.next_batch = lambda: (inputs, targets)
        else:
            loader = data.RealBatches(
                self.dataset,
                self.workload,
                self.batch_size,
                self.device,
                self.workers,
                data_seed,
                channels_last=self.channels_last,
            )
            self.next_batch = loader.next
        hook = _test_step_delay()
        if hook:  # in every rank's result (rank 0 writes the job's): a stray setting must not pass for hardware speed
            self.result["warnings"].append(
                f"{TEST_STEP_DELAY_VARIABLE} is set: rank {hook[0]} slept {hook[1]:g} s "
                "before every step (a test hook: these figures are not a benchmark)"
            )
        delay = hook[1] if hook and hook[0] == (self.where.rank if self.where else 0) else 0.0
        if delay:
            batch = self.next_batch

            def delayed_batch():
                time.sleep(delay)
                return batch()

            self.next_batch = delayed_batch

    def _train_step(self) -> torch.Tensor:
        self.input_wait.before()
        inputs, targets = self.next_batch()
        self.input_wait.after()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = flops.loss_of(self.model(inputs), targets)
        clip = self.workload.recipe.grad_clip_norm
        if self.scaler is None:
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip, foreach=True)
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            if clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip, foreach=True)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.after_step:
            self.after_step()
        return loss.detach()

    def _autocast(self):
        """Autocast, except where FSDP already computes in bf16 (its MixedPrecisionPolicy casts the gathered
        parameters): torchtitan's maybe_enable_amp leaves autocast off under FSDP for the same reason."""
        if self.fsdp and self.precision.autocast_dtype is not None:
            return nullcontext()
        return self.precision.autocast()

    def _peak(self) -> dict | None:
        if self.device.type != "cuda":
            return None
        return peaks.applied(torch.cuda.get_device_name(self.device), self.precision.peak_key)

    # -- the run --------------------------------------------------------------------------------------------
    def _describe(self, flops_per_sample: float, peak: dict | None) -> None:
        workload, result = self.workload, self.result
        result["workload"].update(
            {
                "description": workload.description,
                "task": workload.task,
                "sample_unit": workload.sample_unit,
                "sample": "image" if workload.is_image else "sequence",
                "parameters": workload.parameters,
                "batch_size": self.batch_size,
                "seq_len": self.seq_len if not workload.is_image else None,
                "tokens_per_sample": workload.tokens_per_sample(self.seq_len) or None,
                "vocab_size": self.vocab_size or None,
                "training_flops_per_sample": flops_per_sample,
                "flops_convention": flops.CONVENTION,
            }
        )
        result["config"].update(
            device=str(self.device),
            precision=self.precision.name,
            batch_size=self.batch_size,
            seq_len=result["workload"]["seq_len"],
            steps=self.window.steps,
            duration=self.window.seconds,
            warmup=self.warmup.steps,
            channels_last=self.channels_last,
            workers=self.workers,
            optimizer=self.optimizer_name,
            fsdp=self.fsdp,
            activation_checkpointing=self.checkpointing,
        )
        result["peak"] = peak
        result["memory_estimate"] = self.memory_estimate

    def execute(self) -> dict:
        result = self.result
        flops_per_sample = flops.training_flops_per_sample(self.workload, self.seq_len, **self.model_overrides)
        uuid = devices.cuda_uuid(self.device)
        nvml_index = devices.nvml_index(uuid)
        if uuid is not None and nvml_index is None:
            result["warnings"].append(
                f"{self.device} ({uuid}) was not found through NVML: no GPU telemetry rather than another GPU's"
            )
        peak = self._peak()
        peak_flops = peak["tflops"] * 1e12 if peak else None
        self._describe(flops_per_sample, peak)
        result["environment"] = _runtime_environment(self.device, uuid, nvml_index)
        clock = StepClock(self.device)
        self.first_loss = self.last_loss = None
        self.load = contention.CpuContention(
            self.device.type, contention.job_root(self.where.local_world_size if self.where else 1)
        )
        timed_seconds, status, error = 0.0, "completed", None
        try:
            if self.device.type == "cuda":
                devices.select(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
            if self.group:
                result["distributed"] = distributed.topology_section(
                    self.where, self.group, self.batch_size, self._tokens_per_sample
                )
                self.group.start()
                # one job, one run id: every rank's live series carry rank 0's, so that the dashboards and alerts
                # see the ranks of a job as one run told apart by `rank` (each rank drew its own id at start)
                self.run_id = result["run_id"] = self.group.shared(self.run_id)
            self._setup()
            if self.group:
                result["distributed"]["sharding"] = self.group.sharding
            result["backend"] = self.precision.backend_flags()
            if self.fsdp and self.precision.autocast_dtype is not None:
                result["backend"]["autocast_dtype"] = None  # FSDP's MixedPrecisionPolicy instead (_autocast)
            info = RunInfo(
                self.run_id,
                self.workload.name,
                str(self.device),
                nvml_index,
                self.batch_size,
                self.workload.sample_unit,
                flops_per_sample,
                peak_flops,
                gpu_uuid=uuid,
            )
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
            error = (
                f"out of memory on {self.device} at batch size {self.batch_size}"
                f"{' (compiled)' if self.config.compile else ''}; try --batch-size {max(1, self.batch_size // 2)}"
            )
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
        with self._autocast():
            loss = flops.loss_of(self.model(inputs), targets)
        loss.backward()

    def _gather(self, clock: StepClock, uuid: str | None) -> None:
        """Every rank's window, its parameters' digest and the communication probe, gathered into rank 0's result."""
        digest = distributed.parameters_digest(self.model)  # before the probe, which leaves the parameters alone
        # DDP's no_sync() isolates its one collective; FSDP all-gathers parameters in every pass, so no pass runs
        # without communication to compare against: not measured there
        probe = (
            distributed.communication_probe(
                self.group,
                self._forward_backward,
                clock.synchronize,
                distributed.probe_passes(self.result["metrics"]["steps_timed"]),
            )
            if self.group.strategy == "ddp"
            else None
        )
        record = distributed.rank_record(
            self.where,
            self.device,
            uuid,
            self.result["metrics"],
            digest,
            probe,
            distributed.parameters_held(self.model),
        )
        records = self.group.gather(record)
        self.result["distributed"] = distributed.summary(
            self.where, self.group, self.batch_size, records, self._tokens_per_sample
        )

    def _interrupted(self, stop: KeyboardInterrupt, when: str) -> tuple[str, str]:
        signal = interrupt.signal_of(stop)
        self.result["interrupted_by"] = signal.signal_name
        how = "Ctrl-C" if signal.signal_name == "SIGINT" else "a stop request: systemd, Slurm's scancel, kill"
        if self.where and signal.signal_name == "SIGTERM":  # torchrun stops every rank when one of them fails
            how += f", or torchrun after another rank failed (its report names the rank); {self.where.where()}"
        return "interrupted", f"interrupted by {signal.signal_name} ({how}) {when}"

    def _warm_up(self, clock: StepClock) -> None:
        """Untimed steps until the warm-up rule is met; synchronized per step, since these are not measured.

        Under torchrun the settle rule is met on each rank at its own step, but every rank must stop after the same
        one (each step is a collective): after each warm-up step the ranks agree, and stop once every rank's rule has
        been met. A fixed --warmup N is the same count everywhere and needs no agreement."""
        step_seconds: list[float] = []
        started = first_done = time.perf_counter()
        settled, ready = None, False
        agree = self.group is not None and self.warmup.steps is None
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
            if not ready:  # once met, a rank stays ready while it waits for the others
                ready, settled = self.warmup.finished(step_seconds, now - first_done)
            if (self.group.agreed_max(0.0 if ready else 1.0) == 0.0) if agree else ready:
                break
        self.warmup_step_seconds = settled_step_seconds(step_seconds)
        self.result["warmup"] = {
            "steps": len(step_seconds),
            "seconds": round(time.perf_counter() - started, 4),
            "settled": settled,
            "rule": self.warmup.rule,
            "last_step_seconds": step_seconds[-1] if step_seconds else None,
        }
        if settled is False:
            self.result["warnings"].append(
                f"step time had not settled after {len(step_seconds)} warm-up steps "
                f"({self.warmup.max_seconds:g} s): the timed window may include warm-up "
                "effects; pass --warmup N to warm up longer"
            )

    def _record_loss(self, loss: torch.Tensor) -> None:
        if self.first_loss is None:
            self.first_loss = loss
        self.last_loss = loss

    def _plan_window(self) -> int | None:
        """Steps the job agrees to time before anyone looks at the clock (None: one process, which checks its limits
        after every step). Recorded in the result's `window` section."""
        section = {
            "decided_by": "this process",
            "ranks": 1,
            "planned_steps": None,
            "warmup_step_seconds": self.warmup_step_seconds,
            "extensions": [],
            "method": "this process checks the step count and its clock against the limits after each step",
        }
        self.result["window"] = section
        if self.group is None:
            return None
        planned = planned_steps(self.window, self.warmup_step_seconds)
        if self.window.seconds is not None:  # a step count alone is the same on every rank already
            planned = int(self.group.agreed_max(planned))
            method = (
                "the ranks agreed on a step count before timing (the most any rank's settled warm-up step time "
                "needs to fill the duration: one all-reduce), then, while the duration was not reached on "
                "every rank, on more steps at the rate measured (one all-reduce per extension)"
            )
        else:
            method = "the step count, the same on every rank"
        if self.warmup.steps is None:
            method = (
                "warm-up ended after the first step at which every rank's settle rule was met (one all-reduce "
                f"per warm-up step); timed: {method}"
            )
        section.update(decided_by="all ranks", ranks=self.where.world_size, planned_steps=planned, method=method)
        return planned

    def _agreed_more_steps(self, steps_done: int, elapsed: float) -> int:
        """Steps every rank runs next: 0 (the window is over) or the most any rank still needs. Called between the
        agreed chunks of timed steps, never inside one."""
        if self.window.seconds is None:  # the agreed count was the window: reached on every rank at once
            return 0
        more = int(self.group.agreed_max(more_steps(self.window, steps_done, elapsed)))
        if more:
            self.result["window"]["extensions"].append(more)
        return more

    def _timed_steps(self, clock: StepClock) -> tuple[str, str | None, float]:
        """The measured part: (status, error, timed wall-clock seconds). An interruption here keeps the steps done.

        One process stops when its window's limits are reached. The ranks of a job run agreed chunks of steps
        (_plan_window), so that every rank runs exactly as many steps as the others and each step's collectives
        match; the loop inside a chunk holds no collective of dlbench's own."""
        status, error, step, elapsed = "completed", None, 0, 0.0
        target = self._plan_window()
        clock.start()
        self.load.start()
        self.input_wait.reset()
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
                if target is None:
                    if self.window.done(step, elapsed):
                        break
                elif step >= target:
                    more = self._agreed_more_steps(step, elapsed)
                    if not more:
                        break
                    target += more
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
        waited = self.input_wait.seconds()  # after clock.stop()'s synchronisation: every event has completed
        metrics: dict = {
            "steps_timed": len(step_seconds),
            "samples_timed": samples,
            "timed_seconds": timed_seconds,
            "throughput": None,
            "step_time_seconds": None,
            "step_times_seconds": series,
            "step_times_group_size": group_size,
            "achieved_flops_per_second": None,
            "peak_flops_per_second": peak,
            "mfu": None,
            "input_wait_seconds": round(waited, 6) if step_seconds else None,
            "input_wait_share": None,
            "input_wait_measured_on": self.input_wait.measures,
            "cpu_contention": self.cpu_load,
        }
        if step_seconds and timed_seconds > 0:
            throughput = samples / timed_seconds  # total over total, not a mean of per-step rates
            achieved = throughput * flops_per_sample
            tokens = self.workload.tokens_per_sample(self.seq_len)
            metrics.update(
                throughput={
                    "samples_per_second": throughput,
                    "tokens_per_second": throughput * tokens if tokens else None,
                    "sample": self.result["workload"]["sample"],
                    "headline": "tokens_per_second" if tokens else "samples_per_second",
                    "compute_samples_per_second": input_wait.compute_alone(samples, timed_seconds, waited),
                },
                step_time_seconds=step_statistics(step_seconds),
                achieved_flops_per_second=achieved,
                mfu=achieved / peak if peak else None,
                input_wait_share=round(waited / timed_seconds, 4),
            )
        metrics.update(_peak_memory(self.device))
        metrics["loss"] = {
            "first": None if self.first_loss is None else float(self.first_loss),
            "last": None if self.last_loss is None else float(self.last_loss),
        }
        self.result["metrics"] = metrics
        for note in (contention.warning(metrics["cpu_contention"]), self._short_window_warning(metrics)):
            if note:
                self.result["warnings"].append(note)

    def _short_window_warning(self, metrics: dict) -> str | None:
        seconds = metrics["timed_seconds"]
        if metrics["steps_timed"] and seconds < results.SHORT_WINDOW_SECONDS:
            return (
                f"the timed window lasted {seconds:.3f} s: timer and scheduler noise and the telemetry's 0.5 s "
                "sampling are large against it; time at least several seconds (--duration)"
            )
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
        if self.workload.recipe.compared_with == "torchtitan":  # in the units of torchtitan's figures
            self.result["llm"] = anchors.section(
                self.result,
                self.workload,
                self.precision.name,
                self.config.compile,
                anchors.torchtitan_flops_per_token(self.workload, self.seq_len),
                self.mamf,
            )
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
