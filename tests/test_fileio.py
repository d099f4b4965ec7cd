"""atomic_write: ordinary file modes (umask, existing mode kept), no temporary file left, honest interrupts."""
from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from calibrator_custom import fileio
from calibrator_custom.fileio import atomic_write
from calibrator_custom.model.graph import atomic_write as graph_atomic_write
from clitools import run_tool, tiny_model, write_image, write_ini, write_preprocess

ROOT = Path(__file__).resolve().parent.parent
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes and signals")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def test_one_writer():
    assert graph_atomic_write is atomic_write


@posix_only
@pytest.mark.parametrize("mask,want", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_gets_0666_minus_umask(tmp_path, umask, mask, want):
    umask(mask)
    assert fileio.current_umask() == mask
    atomic_write(tmp_path / "a.bin", b"abc")
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    assert _mode(tmp_path / "a.bin") == want
    assert os.listdir(tmp_path) == ["a.bin"]


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o077])
@pytest.mark.parametrize("existing", [0o644, 0o600, 0o640, 0o755])
def test_existing_file_keeps_its_mode(tmp_path, umask, mask, existing):
    target = tmp_path / "out.txt"
    target.write_bytes(b"old")
    os.chmod(target, existing)
    umask(mask)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == existing


def test_from_another_thread(tmp_path):
    errors = []

    def work():
        try:
            atomic_write(tmp_path / "t.bin", b"from a thread")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join(30)
    assert not errors and (tmp_path / "t.bin").read_bytes() == b"from a thread"
    assert os.listdir(tmp_path) == ["t.bin"]


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_no_temporary_file_left_after_an_exception(tmp_path, monkeypatch, exc):
    target = tmp_path / "model_fixed.sim"
    target.write_bytes(b"old")

    def failing_fill(fd, data):
        os.write(fd, data[:2])
        raise exc

    monkeypatch.setattr(fileio, "_fill", failing_fill)
    with pytest.raises(type(exc)):
        atomic_write(target, b"new bytes")
    assert os.listdir(tmp_path) == ["model_fixed.sim"] and target.read_bytes() == b"old"


def test_rename_failure_leaves_no_temporary_file(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x").write_bytes(b"")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "dir", b"cannot replace a non-empty folder")
    assert sorted(os.listdir(tmp_path)) == ["dir"]


@posix_only
def test_sigint_before_the_rename_interrupts_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "stats.npz"
    target.write_bytes(b"old")
    real_fill = fileio._fill

    def fill_then_ctrl_c(fd, data):
        real_fill(fd, data)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(fileio, "_fill", fill_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new")
    assert os.listdir(tmp_path) == ["stats.npz"] and target.read_bytes() == b"old"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@posix_only
def test_sigint_after_the_rename_is_not_an_interruption(tmp_path, monkeypatch, caplog):
    target = tmp_path / "out.sim"
    real_replace = os.replace

    def replace_then_ctrl_c(src, dst):
        real_replace(src, dst)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(fileio.os, "replace", replace_then_ctrl_c)
    with caplog.at_level(logging.WARNING, logger="calibrator_custom.fileio"):
        atomic_write(target, b"complete")  # no KeyboardInterrupt: the new file is complete
    assert target.read_bytes() == b"complete" and os.listdir(tmp_path) == ["out.sim"]
    assert "the file is complete" in caplog.text
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


_TERM = """
import os, signal, sys
from calibrator_custom import fileio
real_fill = fileio._fill
def fill_then_term(fd, data):
    real_fill(fd, data)
    os.kill(os.getpid(), signal.SIGTERM)
fileio._fill = fill_then_term
fileio.atomic_write(sys.argv[1], b"new")
print("not reached")
"""


@posix_only
def test_sigterm_during_the_write_removes_the_temporary_file_and_ends_the_process(tmp_path):
    target = tmp_path / "result.txt"
    target.write_bytes(b"old")
    proc = subprocess.run([sys.executable, "-c", _TERM, str(target)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert "not reached" not in proc.stdout
    assert os.listdir(tmp_path) == ["result.txt"] and target.read_bytes() == b"old"


@posix_only
def test_calibrator_outputs_follow_the_umask_and_keep_an_existing_mode(tmp_path):
    model = tiny_model(tmp_path / "tiny_float.sim")
    ini = write_ini(tmp_path / "tiny.ini")
    pre = write_preprocess(tmp_path / "pre.py")
    write_image(tmp_path / "imgs" / "v090.png", 90)
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiny_fixed.sim").write_bytes(b"an older model")
    os.chmod(out / "tiny_fixed.sim", 0o640)
    before = set(os.listdir(tmp_path))
    saved = os.umask(0o022)
    try:
        proc = run_tool("calibrator", ["-i", tmp_path / "imgs", "-m", model, "--input_config", ini, "-n", pre,
                                       "--quant_level", "L1", "-o", out], tmp_path)
    finally:
        os.umask(saved)
    assert proc.returncode == 0, proc.stderr
    assert _mode(out / "tiny_fixed.sim") == 0o640  # kept
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.relative_to(tmp_path).parts[0] not in before]
    assert any(p.name == "tensor_min_max.txt" for p in written), written
    assert {p.name: oct(_mode(p)) for p in written} == {p.name: oct(0o644) for p in written}
    assert not [p for p in tmp_path.rglob(".tmp_*")]
