"""Real data from a local path: CIFAR-10 python batches, an ImageFolder tree, a uint16 token file."""

import pickle

import numpy as np
import pytest
from PIL import Image

from dlbench.errors import UserError
from dlbench.train.runner import RunConfig
from run_support import execute


def run(workload, data, **overrides):
    options = {"device": "cpu", "steps": 2, "warmup": 0, "batch_size": 4, "workers": 0, **overrides}
    return execute(RunConfig(workload, data=str(data), **options))


@pytest.fixture
def cifar_dir(tmp_path):
    rng = np.random.default_rng(0)
    for i in (1, 2):
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}
        (tmp_path / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    return tmp_path


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(4):
            pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    return tmp_path


def test_cifar_batches_train_the_cifar_cnn(cifar_dir):
    result = run("cifar-cnn", cifar_dir)
    assert result["status"] == "completed" and result["metrics"]["samples_timed"] == 8


def test_cifar_batches_with_workers_and_a_resize(cifar_dir):
    result = run("resnet18", cifar_dir, batch_size=2, workers=2)
    assert result["status"] == "completed"


def test_image_folder_is_decoded_and_resized(image_folder):
    assert run("cifar-cnn", image_folder)["status"] == "completed"
    assert run("mnist-mlp", image_folder)["status"] == "completed"  # converted to one channel


def test_token_file_feeds_a_language_model(tmp_path):
    tokens = tmp_path / "train.bin"
    np.arange(4 * 17 * 3, dtype=np.uint16).tofile(tokens)
    result = run("gpt2", tokens, seq_len=16, batch_size=2)
    assert result["status"] == "completed"


@pytest.mark.parametrize(
    "make,workload,message",
    [
        (lambda p: p.joinpath("data_batch_1").write_bytes(b"not a pickle"), "cifar-cnn", "not a CIFAR-10 python batch"),
        (lambda p: p.joinpath("notes.txt").write_text("hello"), "cifar-cnn", "no images found"),
        (lambda p: p.joinpath("odd.bin").write_bytes(b"abc"), "gpt2", "is odd"),
        (lambda p: p.joinpath("short.bin").write_bytes(b"\x01\x00" * 4), "gpt2", "fewer than one sequence"),
    ],
)
def test_malformed_data_is_a_clear_error(tmp_path, make, workload, message):
    make(tmp_path)
    files = [p for p in tmp_path.iterdir() if p.suffix == ".bin"]
    with pytest.raises(UserError, match=message):
        run(workload, files[0] if files else tmp_path, seq_len=16)


def test_token_outside_the_vocabulary_is_refused(tmp_path):
    tokens = tmp_path / "train.bin"
    np.full(200, 60000, dtype=np.uint16).tofile(tokens)
    with pytest.raises(UserError, match="outside gpt2's vocabulary"):
        run("gpt2", tokens, seq_len=16, batch_size=2)


def test_more_classes_than_the_model_predicts_is_refused(tmp_path):
    for i in range(11):
        (tmp_path / f"class{i:02d}").mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / f"class{i:02d}" / "x.png")
    with pytest.raises(UserError, match="11 classes, but cifar-cnn predicts 10"):
        run("cifar-cnn", tmp_path)
