"""Training batches: synthetic by default, or real data from a local path.

Synthetic batches are made once, deterministically from the seed, directly on the target device, so input never
bottlenecks a synthetic run. Real data (`--data PATH`) goes through a DataLoader with workers and pinned memory:
- image workloads: an ImageFolder tree (PATH/<class>/<image>) or CIFAR-10 python batches (data_batch_1..5);
- language workloads: a file of uint16 token ids (the nanoGPT `train.bin` layout).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dlbench.errors import UserError
from dlbench.train.interrupt import quiet_in_worker
from dlbench.workloads import Workload

IGNORE_INDEX = -100  # targets that do not count towards the loss (unmasked BERT positions)
BERT_MASK_TOKEN = 103  # [MASK] in the BERT uncased vocabulary
MASK_PROBABILITY = 0.15
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}

Batch = tuple[torch.Tensor, torch.Tensor]


def mask_tokens(tokens: torch.Tensor, generator: torch.Generator | None = None) -> Batch:
    """BERT-style masked-LM pair: 15% of positions replaced by [MASK] and predicted, the rest ignored."""
    masked = torch.rand(tokens.shape, generator=generator, device=tokens.device) < MASK_PROBABILITY
    inputs = tokens.masked_fill(masked, BERT_MASK_TOKEN)
    targets = tokens.masked_fill(~masked, IGNORE_INDEX)
    return inputs, targets


def synthetic_batch(workload: Workload, batch_size: int, seq_len: int, device: torch.device, seed: int) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    if workload.is_image:
        shape = (batch_size, workload.channels, workload.image_size, workload.image_size)
        inputs = torch.randn(shape, generator=generator)
        targets = torch.randint(0, workload.num_classes, (batch_size,), generator=generator)
    elif workload.task == "causal-lm":
        tokens = torch.randint(0, workload.vocab_size, (batch_size, seq_len + 1), generator=generator)
        inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    else:
        tokens = torch.randint(0, workload.vocab_size, (batch_size, seq_len), generator=generator)
        inputs, targets = mask_tokens(tokens, generator)
    return inputs.to(device), targets.to(device)


class BadSample(UserError):
    """A sample that cannot be read (a corrupt image). Raised in a DataLoader worker, it reaches the main process
    re-created from the worker's whole report (torch.utils.data's ExceptionWrapper: "Caught BadSample in DataLoader
    worker process 0. Original Traceback ..."); the constructor keeps only the last line, the message itself."""

    def __init__(self, message: str):
        last = message.strip().splitlines()[-1] if message.strip() else message
        prefix = f"{__name__}.{type(self).__name__}: "
        super().__init__(last[len(prefix) :] if last.startswith(prefix) else last)


def default_workers(device: torch.device) -> int:
    """DataLoader workers when --workers is not given: this process's share of the CPUs it may use, one GPU per
    process (DeepLearningExamples and the PyTorch ImageNet example run one process per GPU), less one core for the
    training loop itself; at most 16, at least 1. A CPU run keeps most cores for its own compute: a quarter."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    if device.type == "cuda":
        return max(1, min(16, cores // max(1, torch.cuda.device_count()) - 1))
    return max(1, min(4, cores // 4))


class CifarBatches(Dataset):
    """CIFAR-10 'python version': pickled dicts with b'data' (N x 3072 uint8) and b'labels'."""

    def __init__(self, files: list[Path], image_size: int):
        images, labels = [], []
        for file in files:
            try:
                with open(file, "rb") as handle:
                    batch = pickle.load(handle, encoding="bytes")
                images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(batch[b"labels"])
            except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as error:
                raise UserError(f"--data: {file} is not a CIFAR-10 python batch ({type(error).__name__}: {error})")
        self.images = torch.from_numpy(np.concatenate(images))
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.image_size = image_size
        self.num_classes = int(self.labels.max()) + 1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Batch:
        image = self.images[index].float().div_(255.0)
        if self.image_size != 32:
            image = torch.nn.functional.interpolate(image[None], size=self.image_size, mode="bilinear")[0]
        return image, self.labels[index]


class ImageFolder(Dataset):
    """PATH/<class name>/<image file>: classes are the sorted sub-directory names."""

    def __init__(self, root: Path, image_size: int, channels: int):
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.samples = [
            (file, label)
            for label, name in enumerate(classes)
            for file in sorted((root / name).rglob("*"))
            if file.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.samples:
            raise UserError(
                f"--data {root}: no images found; expected {root}/<class>/<image>.jpg (ImageFolder) "
                "or CIFAR-10 python batches (data_batch_1 ...)"
            )
        self.num_classes = len(classes)
        self.image_size = image_size
        self.mode = "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Batch:
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                image = image.convert(self.mode).resize((self.image_size, self.image_size), Image.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
        except Exception as error:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, DecompressionBombError
            raise BadSample(f"--data: {path} is not a readable image ({type(error).__name__}: {error})") from None
        tensor = torch.from_numpy(array.copy()).float().div_(255.0)
        tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        return tensor, torch.tensor(label)


class TokenFile(Dataset):
    """A flat file of uint16 token ids, cut into windows of seq_len (+1 for next-token targets)."""

    def __init__(self, path: Path, seq_len: int, vocab_size: int, causal: bool):
        size = path.stat().st_size
        if size == 0:
            raise UserError(f"--data {path}: the file is empty; expected uint16 token ids (nanoGPT's train.bin)")
        if size % 2:
            raise UserError(f"--data {path}: size {size} bytes is odd; expected uint16 token ids (2 bytes each)")
        self.tokens = np.memmap(path, dtype=np.uint16, mode="r")
        self.window = seq_len + (1 if causal else 0)
        if len(self.tokens) < self.window:
            raise UserError(f"--data {path}: {len(self.tokens)} tokens, fewer than one sequence of {self.window}")
        self.vocab_size = vocab_size
        self.path = path

    def __len__(self) -> int:
        return len(self.tokens) // self.window

    def __getitem__(self, index: int) -> torch.Tensor:
        start = index * self.window
        return torch.from_numpy(self.tokens[start : start + self.window].astype(np.int64))


def _image_dataset(path: Path, workload: Workload) -> Dataset:
    if not path.is_dir():
        raise UserError(f"--data {path}: image workloads read a directory (ImageFolder tree or CIFAR-10 batches)")
    cifar_dir = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    batches = sorted(cifar_dir.glob("data_batch_*"))
    if batches:
        if workload.channels != 3:
            raise UserError(
                f"--data {path}: CIFAR-10 images have 3 channels; {workload.name} takes {workload.channels}"
            )
        dataset = CifarBatches(batches, workload.image_size)
    else:
        dataset = ImageFolder(path, workload.image_size, workload.channels)
    if dataset.num_classes > workload.num_classes:
        raise UserError(
            f"--data {path}: {dataset.num_classes} classes, but {workload.name} predicts {workload.num_classes}"
        )
    return dataset


def open_dataset(path_text: str, workload: Workload, seq_len: int) -> Dataset:
    path = Path(path_text)
    if not path.exists():
        raise UserError(f"--data {path}: no such file or directory")
    try:
        if workload.is_image:
            return _image_dataset(path, workload)
        if not path.is_file():
            raise UserError(f"--data {path}: language workloads read a file of uint16 token ids")
        return TokenFile(path, seq_len, workload.vocab_size, causal=workload.task == "causal-lm")
    except PermissionError as error:
        raise UserError(f"--data {path}: not readable ({error.strerror})") from None


class RealBatches:
    """Endless batches from a dataset: reshuffled each epoch, moved to the device asynchronously."""

    def __init__(
        self,
        dataset: Dataset,
        workload: Workload,
        batch_size: int,
        device: torch.device,
        workers: int,
        seed: int,
        channels_last: bool = False,
    ):
        if len(dataset) < batch_size:
            raise UserError(f"--data holds {len(dataset)} samples, fewer than one batch of {batch_size}")
        self.workload = workload
        self.device = device
        self.memory_format = torch.channels_last if channels_last and workload.is_image else torch.contiguous_format
        self.generator = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            generator=self.generator,
            worker_init_fn=quiet_in_worker if workers > 0 else None,
        )
        self._iterator: Iterator | None = None

    def _next_raw(self):
        if self._iterator is None:
            self._iterator = iter(self.loader)
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = iter(self.loader)
            return next(self._iterator)

    def next(self) -> Batch:
        raw = self._next_raw()
        if self.workload.is_image:
            inputs, targets = raw
        else:
            if int(raw.max()) >= self.workload.vocab_size:
                raise UserError(
                    f"--data: token id {int(raw.max())} is outside {self.workload.name}'s vocabulary "
                    f"of {self.workload.vocab_size}"
                )
            if self.workload.task == "causal-lm":
                inputs, targets = raw[:, :-1], raw[:, 1:]
            else:
                inputs, targets = mask_tokens(raw, self.generator)
        non_blocking = self.device.type == "cuda"
        inputs = inputs.to(self.device, non_blocking=non_blocking, memory_format=self.memory_format)
        return inputs, targets.to(self.device, non_blocking=non_blocking)
