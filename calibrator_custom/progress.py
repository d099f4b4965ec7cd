"""A progress bar with ETA on stderr for long work, quiet when stderr is not a terminal.

    >>> bar = ProgressBar(30, "calibrating")
    >>> for item in items:
    ...     work(item)
    ...     bar.update()
    >>> bar.close()

``ProgressBar`` is also a ``progress(done, total)`` callback (``bar(done, total)``), the form the
statistics collection and the converter take. The library itself never draws a bar; the command-line
tools and the ``SIM_*`` classes do. Set ``enabled=True`` to force it (e.g. in a notebook) or
``False`` to silence it.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

BAR_WIDTH = 24


def format_seconds(seconds: float) -> str:
    """``75.2`` -> ``'1:15'``; ``3725`` -> ``'1:02:05'``; unknown (negative/inf/nan) -> ``'?'``."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """``desc [#####.....] done/total  elapsed<eta`` redrawn in place on ``stream`` (stderr)."""

    def __init__(self, total: int, desc: str = "", *, stream: TextIO | None = None, enabled: bool | None = None,
                 min_interval_s: float = 0.1, clock: Callable[[], float] | None = None):
        self.total = max(int(total), 0)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.done = 0
        self.min_interval_s = min_interval_s
        self._clock = clock if clock is not None else time.monotonic  # seconds; injectable for tests
        self._start = self._clock()
        self._last_draw: float | None = None  # clock() of the last draw; None: nothing drawn yet
        self._closed = False

    def line(self, now: float | None = None) -> str:
        """The text of the bar at time ``now`` (a ``clock()`` reading; default: now), without the carriage return."""
        elapsed = (self._clock() if now is None else now) - self._start
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(BAR_WIDTH * min(frac, 1.0)))
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        head = f"{self.desc} " if self.desc else ""
        return (f"{head}[{'#' * fill}{'.' * (BAR_WIDTH - fill)}] {self.done}/{self.total} "
                f"{format_seconds(elapsed)}<{format_seconds(eta)}")

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` items and redraw (at most every ``min_interval_s``, and always at the end)."""
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        self._draw()

    def __call__(self, done: int, total: int) -> None:
        """Callback form: ``done`` of ``total`` items finished."""
        self.total = max(int(total), 0)
        self.done = int(done)
        self._draw()

    def _draw(self) -> None:
        if not self.enabled or self._closed:
            return
        now = self._clock()
        if (self.done < self.total and self._last_draw is not None
                and now - self._last_draw < self.min_interval_s):
            return
        self._last_draw = now
        self.stream.write("\r" + self.line(now))
        self.stream.flush()

    def close(self) -> None:
        """Finish the line (only if a bar was drawn)."""
        if self.enabled and not self._closed and self._last_draw is not None:
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
