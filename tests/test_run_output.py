"""`--output` never destroys what it should not: real processes, real files, /dev/null, symlinks, read-only files
and the umask (as a user meets them; these tests run as root in CI, where permission bits do not stop a write)."""

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from dlbench.atomic import check_writable, write_text
from dlbench.errors import UserError

FAST = ("run", "mnist-mlp", "--device", "cpu", "--steps", 1, "--warmup", 0, "--no-telemetry")


def test_dev_null_stays_a_device(dlbench_cli):
    proc = dlbench_cli(*FAST, "--output", "/dev/null")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # was replaced by a regular file when run as root


def test_a_symlink_is_written_through_and_stays_a_link(dlbench_cli, tmp_path):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "latest-real.json"
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    proc = dlbench_cli(*FAST, "--output", link)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["status"] == "completed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "runs"]  # no temporary file left


def test_a_read_only_file_is_refused_before_training(dlbench_cli, tmp_path):
    protected = tmp_path / "baseline.json"
    protected.write_text('{"keep": true}')
    protected.chmod(0o444)
    proc = dlbench_cli(*FAST, "--output", protected)
    assert proc.returncode == 2
    assert "read-only" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert protected.read_text() == '{"keep": true}' and stat.S_IMODE(protected.stat().st_mode) == 0o444


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_result_follows_the_umask(dlbench_cli, tmp_path, umask, mode):
    out = tmp_path / "r.json"
    proc = dlbench_cli(*FAST, "--output", out, preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == mode  # was 0600 whatever the umask


def test_a_replaced_file_keeps_its_mode(tmp_path):
    out = tmp_path / "shared.json"
    out.write_text("old")
    out.chmod(0o664)
    write_text(out, "new")
    assert out.read_text() == "new" and stat.S_IMODE(out.stat().st_mode) == 0o664


def test_a_named_pipe_is_written_in_place(tmp_path):
    fifo = tmp_path / "results.pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo).read()))
    reader.start()
    write_text(fifo, '{"status": "completed"}\n')
    reader.join(timeout=10)
    assert received == ['{"status": "completed"}\n'] and stat.S_ISFIFO(fifo.stat().st_mode)


def unix_socket(path):
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))  # the socket file stays after close


@pytest.mark.parametrize("make,message", [(lambda p: p.mkdir(), "is a directory"), (unix_socket, "not a regular file")])
def test_other_non_regular_targets_are_refused(tmp_path, make, message):
    target = tmp_path / "x"
    make(target)
    with pytest.raises(UserError, match=message):
        check_writable(target)
    with pytest.raises(UserError, match=message):
        write_text(target, "{}")


def test_empty_output_is_refused_before_training(dlbench_cli):
    proc = dlbench_cli(*FAST, "--output", "")
    assert proc.returncode == 2 and "--output must not be empty" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/status")
def test_umask_is_read_without_changing_it():
    from dlbench.atomic import _umask

    before = os.umask(0o027)
    try:
        assert _umask() == 0o027
        assert os.umask(0o027) == 0o027  # unchanged
    finally:
        os.umask(before)


def test_the_recorded_command_line_hides_url_credentials():
    from dlbench.commands.run import _without_credentials

    assert _without_credentials("http://ci:s3cret@pushgateway:9091") == "http://***@pushgateway:9091"
    assert _without_credentials("http://pushgateway:9091") == "http://pushgateway:9091"
    assert _without_credentials("runs/r@1.json") == "runs/r@1.json"


def test_a_named_pipe_nobody_reads_fails_in_bounded_time(tmp_path):
    # Signals are held while the result is written: a blocking open() on an unread pipe hung beyond Ctrl-C.
    fifo = tmp_path / "unread.pipe"
    os.mkfifo(fifo)
    script = (
        "import sys; from dlbench import atomic; atomic.FIFO_READER_WAIT_SECONDS = 0.5\n"
        "try:\n    atomic.write_text(sys.argv[1], 'x')\nexcept atomic.UserError as e:\n    print(e)"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(fifo)], capture_output=True, text=True, timeout=20)
    assert proc.stdout.strip() == f"cannot write {fifo}: no process opened the pipe for reading within 0.5 s"


def test_a_result_larger_than_the_pipe_buffer_reaches_a_late_reader(tmp_path):
    fifo, text = tmp_path / "late.pipe", "x" * (1 << 20)  # 1 MiB: 16 times Linux's default pipe buffer
    os.mkfifo(fifo)
    received = []

    def read_late():
        time.sleep(0.3)  # the writer is already waiting
        with open(fifo) as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=read_late)
    reader.start()
    write_text(fifo, text)
    reader.join(timeout=10)
    assert received == [text]
