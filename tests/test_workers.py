"""Worker processes: they die with their parent, a silent one is reported, a dead one names its item."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from calibrator_custom import sim_workers
from calibrator_custom.errors import CalibratorError
from calibrator_custom.sim_workers import run_sharded

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not sim_workers.can_fork() or not hasattr(signal, "SIGSTOP"),
                                reason="needs the 'fork' start method and POSIX signals")

# a caller with two workers that each write their pid and then sleep for 2 minutes
_DRIVER = """
import os, sys, time
import calibrator_custom.sim_workers as w
folder, mode = sys.argv[1], sys.argv[2]
if mode == "watchdog-only":
    w._set_pdeathsig = lambda: False
def shard(start, stop, tick):
    with open(os.path.join(folder, f"w{start}.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(os.path.join(folder, f"w{start}.tmp"), os.path.join(folder, f"w{start}.pid"))
    time.sleep(120)
w.run_sharded(shard, 2, 2)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _wait(predicate, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("sig,mode", [(signal.SIGKILL, "pdeathsig"), (signal.SIGTERM, "pdeathsig"),
                                      (signal.SIGKILL, "watchdog-only")])
def test_workers_exit_when_the_parent_is_killed(tmp_path, sig, mode):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    parent = subprocess.Popen([sys.executable, "-c", _DRIVER, str(tmp_path), mode], env=env)
    pid_files = [tmp_path / "w0.pid", tmp_path / "w1.pid"]
    _signal_parent_and_expect_no_orphans(parent, sig, lambda: all(p.exists() for p in pid_files),
                                         lambda: [int(p.read_text()) for p in pid_files])


def _signal_parent_and_expect_no_orphans(parent, sig, started, read_pids) -> None:
    """Once ``started()``, signal ``parent`` and require its two workers (``read_pids()``) to be gone
    within 10 s; whatever still runs afterwards is killed."""
    pids = []
    try:
        assert _wait(started, 60), "the workers did not start"
        pids = read_pids()
        assert len(set(pids)) == 2 and all(_alive(p) for p in pids) and parent.pid not in pids
        parent.send_signal(sig)
        parent.wait(timeout=30)
        # PR_SET_PDEATHSIG kills at once; the watchdog notices within its heartbeat period
        assert _wait(lambda: not any(_alive(p) for p in pids), 10), f"orphaned workers {pids} still run"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def _stop_second_worker(start, stop, tick):
    out = []
    for k in range(start, stop):
        if k == 3:
            os.kill(os.getpid(), signal.SIGSTOP)
        out.append(k)
        tick()
    return out


def test_a_stopped_worker_is_reported_not_waited_for(monkeypatch):
    # long enough that the running worker's heartbeat gets through on a loaded machine
    monkeypatch.setattr(sim_workers, "SILENCE_S", 6.0)
    t0 = time.monotonic()
    with pytest.raises(CalibratorError, match=r"sent nothing for 6 s") as info:
        run_sharded(_stop_second_worker, 4, 2, what="SIM_Simulator", describe=lambda k: f"image 'img{k}.jpg'")
    assert time.monotonic() - t0 < 40
    msg = str(info.value)
    assert msg.startswith("SIM_Simulator: worker 1 (pid ") and "working on image 'img3.jpg'" in msg
    pid = int(msg.split("(pid ", 1)[1].split(",", 1)[0])
    assert _wait(lambda: not _alive(pid), 10), "the stopped worker was left behind"


def _die_on_item_2(start, stop, tick):
    for k in range(start, stop):
        if k == 2:
            os._exit(3)
        tick()
    return list(range(start, stop))


def _killed_on_item_0(start, stop, tick):
    if start == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    tick()
    return [start]


def test_a_dead_worker_names_the_item_it_was_on():
    with pytest.raises(CalibratorError) as info:
        run_sharded(_die_on_item_2, 4, 2, what="SIM_Calibrator")
    msg = str(info.value)
    assert msg.startswith("SIM_Calibrator: worker 1 (pid ") and "working on sample #2)" in msg
    assert "exited with code 3 without a result" in msg and "#2..#3" not in msg
    with pytest.raises(CalibratorError, match=r"worker 0 \(pid \d+, working on sample #0\) exited on signal SIGKILL"):
        run_sharded(_killed_on_item_0, 2, 2, what="SIM_Calibrator")


def test_heartbeats_keep_a_slow_worker_alive(monkeypatch):
    # a worker busy for longer than SILENCE_S on one item is not reported: its heartbeat thread speaks
    monkeypatch.setattr(sim_workers, "SILENCE_S", 2.5)

    def slow(start, stop, tick):
        time.sleep(4)
        tick()
        return [start]

    assert run_sharded(slow, 2, 2) == [[0], [1]]


_SLEEPY_PREPROCESS = '''
import os, time
import numpy as np

def image_preprocess(img_path, norm=True):
    folder = os.environ["WORKER_PID_DIR"]
    name = os.path.join(folder, os.path.basename(img_path) + ".pid")
    with open(name + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(name + ".tmp", name)
    time.sleep(120)
    return np.zeros((1, 8, 8, 3), np.float32 if norm else np.uint8)
'''


@pytest.mark.parametrize("tool,sig", [("simulator", signal.SIGKILL), ("calibrator", signal.SIGKILL),
                                      ("calibrator", signal.SIGTERM)])
def test_command_line_workers_exit_when_the_tool_is_killed(tmp_path, tool, sig):
    from clitools import tiny_model, write_image, write_ini

    model = tiny_model(tmp_path / "tiny_float.sim")
    ini = write_ini(tmp_path / "tiny.ini")
    pre = tmp_path / "sleepy.py"
    pre.write_text(_SLEEPY_PREPROCESS)
    for v in (10, 20):
        write_image(tmp_path / "imgs" / f"v{v}.png", v)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    args = ["-i", tmp_path / "imgs", "-m", model, "-n", pre, "--num_process", "2"]
    if tool == "calibrator":
        args += ["--input_config", ini, "--quant_level", "L1"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), WORKER_PID_DIR=str(pid_dir))
    parent = subprocess.Popen([sys.executable, "-m", f"calibrator_custom.{tool}", *map(str, args)], cwd=tmp_path,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _signal_parent_and_expect_no_orphans(parent, sig, lambda: len(list(pid_dir.glob("*.pid"))) == 2,
                                         lambda: [int(p.read_text()) for p in pid_dir.glob("*.pid")])
