"""Atomic file writes that keep ordinary file modes: every file the package writes goes through here.

    >>> atomic_write("out/model_fixed.sim", data)

The bytes go to a temporary file in the same folder (``.tmp_<random><name>``), which then replaces
``path`` in one rename: a reader sees the old file or the complete new one, never a part. Modes are
those of a plain ``open(path, "w")``: a new file gets ``0o666 & ~umask``, an existing file keeps its
mode (the temporary file is made ``0o600`` by ``mkstemp``, and is set before the rename).

The temporary file is removed on any exception. In the main thread, SIGINT and SIGTERM (when their
handlers are Python's defaults) are held while the file is written: a signal that came before the
rename removes the temporary file and then acts (KeyboardInterrupt; SIGTERM ends the process as
usual), leaving the old file untouched; a SIGINT that comes once the rename has started is logged
and dropped, since the new file is complete (nothing was interrupted); a SIGTERM then still ends the
process, after the rename.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import tempfile
import threading
from typing import Iterator

log = logging.getLogger(__name__)

_umask_lock = threading.Lock()


def current_umask() -> int:
    """This process's umask (read without changing it where /proc tells it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def target_mode(path: str) -> int:
    """The mode ``path`` should have after a write: its current mode if it exists, else 0o666 & ~umask."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0o666 & ~current_umask()
    return stat.S_IMODE(st.st_mode)


class _Held:
    """Signals that arrived while held: their numbers, in order."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    def __call__(self, signum: int, frame: object) -> None:
        self.pending.append(signum)


_DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


@contextlib.contextmanager
def _holding_signals() -> Iterator[_Held | None]:
    """Hold SIGINT/SIGTERM (only those with Python's default handlers, only in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    held = _Held()
    saved = {}
    try:
        for sig, default in _DEFAULTS.items():
            if signal.getsignal(sig) is default:
                saved[sig] = signal.signal(sig, held)
        yield held
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _act(signum: int) -> None:
    """Deliver a held signal now that the original handlers are back."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    os.kill(os.getpid(), signum)


def _fill(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb", closefd=False) as f:
        f.write(data)


class _Abort(Exception):
    """A held signal came before the rename: the temporary file is removed, then the signal acts."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename (see module docs)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    late: list[int] = []
    try:
        with _holding_signals() as held:
            fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=os.path.basename(path), dir=folder)
            try:
                try:
                    _fill(fd, data)
                    mode = target_mode(path)
                    if hasattr(os, "fchmod"):
                        os.fchmod(fd, mode)
                    else:
                        os.chmod(tmp, mode)
                finally:
                    os.close(fd)
                if held is not None and held.pending:
                    raise _Abort(held.pending[0])
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            if held is not None:
                late = list(held.pending)
    except _Abort as e:
        _act(e.signum)
        raise SystemExit(128 + e.signum) from None  # only if the signal did not end the process
    for signum in late:
        if signum == signal.SIGINT:
            log.warning("interrupt received just after %s was written; the file is complete", path)
        else:
            _act(signum)
