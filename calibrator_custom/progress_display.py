"""Where progress shows: a bar on a terminal, INFO log lines off it, a live display in Jupyter.

    >>> report = Reporter.auto(prefix="net: ")
    >>> with report.phase("L5 sensitivity", 37) as phase:
    ...     for conv in convs:
    ...         measure(conv)
    ...         phase.update()
    >>> report.message("L5: 3 convolution(s) upgraded to 16 bit")

A *phase* counts ``done`` of ``total`` items and knows its elapsed time and ETA (elapsed per item
times the items left). Each display back-end makes phases with the same interface as
:class:`~calibrator_custom.progress.ProgressBar` (``update(n)``, ``phase(done, total)``, ``close()``,
a context manager):

- ``bar``: :class:`~calibrator_custom.progress.ProgressBar` redrawn in place on a terminal stream;
- ``log``: :class:`LogPhase`, INFO lines ``desc: 5/37 (14%), 0:12 elapsed, ETA 1:10`` on the logger
  ``calibrator_custom.progress`` (the first item, then at most every ``interval_s``, and the end);
- ``jupyter``: :class:`JupyterPhase`, one HTML ``<progress>`` element per phase updated in place
  through ``IPython.display`` (used only when IPython is importable and a kernel runs the code;
  IPython is not a dependency).

:meth:`Reporter.auto` picks ``jupyter`` in a kernel, else ``bar`` when the stream (stderr) is a
terminal, else ``log``. Messages (``Reporter.message``) are INFO log lines with every back-end.
Every clock is injectable (``clock=``, seconds, default ``time.monotonic``).
"""
from __future__ import annotations

import html
import logging
import sys
import time
from typing import Any, Callable, TextIO

from .progress import ProgressBar, format_seconds

log = logging.getLogger("calibrator_custom.progress")

Clock = Callable[[], float]
#: default seconds between two INFO lines of one phase (the first item and the end always log)
LOG_INTERVAL_S = 10.0
#: default seconds between two redraws of a Jupyter display (the end always redraws)
JUPYTER_INTERVAL_S = 0.25


class Phase:
    """``done`` of ``total`` items since ``clock()`` at creation; subclasses show it in ``_show``."""

    def __init__(self, total: int, desc: str = "", *, clock: Clock | None = None, min_interval_s: float = 0.0):
        self.total = max(int(total), 0)
        self.desc = desc
        self.done = 0
        self.min_interval_s = min_interval_s
        self._clock = clock if clock is not None else time.monotonic
        self._start = self._clock()
        self._last_show: float | None = None  # clock() of the last show; None: never shown
        self._closed = False

    def elapsed_s(self, now: float | None = None) -> float:
        return (self._clock() if now is None else now) - self._start

    def eta_s(self, now: float | None = None) -> float:
        """Seconds left: elapsed per finished item times the items left (nan before the first item)."""
        if not self.done:
            return float("nan")
        return self.elapsed_s(now) / self.done * max(self.total - self.done, 0)

    def text(self, now: float | None = None) -> str:
        """``desc: done/total (pct%), m:ss elapsed, ETA m:ss``."""
        head = f"{self.desc}: " if self.desc else ""
        pct = f" ({100 * self.done // self.total}%)" if self.total else ""
        return (f"{head}{self.done}/{self.total}{pct}, {format_seconds(self.elapsed_s(now))} elapsed, "
                f"ETA {format_seconds(self.eta_s(now))}")

    def update(self, n: int = 1) -> None:
        """``n`` more items finished."""
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        self._maybe_show()

    def __call__(self, done: int, total: int) -> None:
        """Callback form: ``done`` of ``total`` items finished."""
        self.total = max(int(total), 0)
        self.done = int(done)
        self._maybe_show()

    def _maybe_show(self) -> None:
        if self._closed:
            return
        now = self._clock()
        final = self.done >= self.total
        if not final and self._last_show is not None and now - self._last_show < self.min_interval_s:
            return
        self._last_show = now
        self._show(now, final)

    def _show(self, now: float, final: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "Phase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LogPhase(Phase):
    """INFO lines on ``logger``: the first item, then at most every ``interval_s`` seconds, and the end
    (``desc: 37/37 (100%), 1:22 elapsed, ETA 0:00``); a phase closed early logs where it stopped."""

    def __init__(self, total: int, desc: str = "", *, logger: logging.Logger | None = None,
                 interval_s: float = LOG_INTERVAL_S, clock: Clock | None = None):
        super().__init__(total, desc, clock=clock, min_interval_s=interval_s)
        self.logger = logger if logger is not None else log
        self._final_logged = False

    def _show(self, now: float, final: bool) -> None:
        if self._final_logged:
            return
        self._final_logged = final
        self.logger.info("%s", self.text(now))

    def close(self) -> None:
        if not self._closed and not self._final_logged and self._last_show is not None:
            self.logger.info("%s (stopped)", self.text())
        super().close()


class _HtmlProgress:
    """What a Jupyter display shows: an HTML ``<progress>`` element and the phase's text (plain-text
    front-ends get the text)."""

    def __init__(self, done: int, total: int, text: str):
        self.done, self.total, self.text = done, total, text

    def _repr_html_(self) -> str:
        return (f'<div><progress value="{self.done}" max="{max(self.total, 1)}" style="width:16em"></progress> '
                f"<code>{html.escape(self.text)}</code></div>")

    def __repr__(self) -> str:
        return self.text


class JupyterPhase(Phase):
    """A display updated in place: ``display(obj, display_id=True)`` then ``handle.update(obj)``
    (``display`` is ``IPython.display.display`` or anything with its signature)."""

    def __init__(self, total: int, desc: str = "", *, display: Callable[..., Any], clock: Clock | None = None,
                 min_interval_s: float = JUPYTER_INTERVAL_S):
        super().__init__(total, desc, clock=clock, min_interval_s=min_interval_s)
        self._handle = display(_HtmlProgress(0, self.total, self.text()), display_id=True)

    def _show(self, now: float, final: bool) -> None:
        if self._handle is not None:
            self._handle.update(_HtmlProgress(self.done, self.total, self.text(now)))


def jupyter_display() -> Callable[..., Any] | None:
    """``IPython.display.display`` when IPython is importable and a Jupyter kernel runs this code, else None
    (a terminal IPython has no kernel: its stderr bar works)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:  # not imported by the running program: no kernel (a kernel imports IPython)
        return None
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    return display


class Reporter:
    """Makes the phases of one piece of work (conversion, calibration) on one display back-end.

    ``kind``: ``'bar'``, ``'log'``, ``'jupyter'`` (see the module docstring) or ``'none'``;
    ``prefix`` starts every phase's description and message (e.g. the model's name).
    """

    def __init__(self, kind: str = "log", *, prefix: str = "", stream: TextIO | None = None,
                 display: Callable[..., Any] | None = None, clock: Clock | None = None,
                 logger: logging.Logger | None = None, log_interval_s: float = LOG_INTERVAL_S,
                 message: Callable[[str], None] | None = None):
        if kind not in ("bar", "log", "jupyter", "none"):
            raise ValueError(f"progress display {kind!r}: choose 'bar', 'log', 'jupyter' or 'none'")
        if kind == "jupyter" and display is None:
            raise ValueError("progress display 'jupyter' needs display= (IPython.display.display)")
        self.kind = kind
        self.prefix = prefix
        self.stream = stream
        self._display = display
        self._clock = clock
        self._logger = logger if logger is not None else log
        self._log_interval_s = log_interval_s
        self._message = message

    @classmethod
    def auto(cls, *, prefix: str = "", stream: TextIO | None = None, clock: Clock | None = None,
             message: Callable[[str], None] | None = None) -> "Reporter":
        """``jupyter`` in a Jupyter kernel, else ``bar`` if ``stream`` (default stderr) is a terminal, else ``log``."""
        display = jupyter_display()
        if display is not None:
            return cls("jupyter", prefix=prefix, display=display, clock=clock, message=message)
        out = stream if stream is not None else sys.stderr
        isatty = getattr(out, "isatty", None)
        kind = "bar" if isatty is not None and isatty() else "log"
        return cls(kind, prefix=prefix, stream=out, clock=clock, message=message)

    def phase(self, desc: str, total: int) -> Phase | ProgressBar:
        """A new phase of ``total`` items (close it, or use it as a context manager)."""
        full = f"{self.prefix}{desc}"
        if self.kind == "bar":
            return ProgressBar(total, full, stream=self.stream, enabled=True, clock=self._clock)
        if self.kind == "jupyter":
            return JupyterPhase(total, full, display=self._display, clock=self._clock)
        if self.kind == "none":
            return ProgressBar(total, full, enabled=False, clock=self._clock)
        return LogPhase(total, full, logger=self._logger, interval_s=self._log_interval_s, clock=self._clock)

    def message(self, text: str) -> None:
        """A one-off message: ``message(text)`` if given, else an INFO log line (prefixed)."""
        if self._message is not None:
            self._message(text)
        else:
            logging.getLogger("calibrator_custom").info("%s%s", self.prefix, text)


def as_reporter(progress: "Reporter | Callable[[str], None] | None") -> Reporter:
    """What ``convert(progress=...)`` takes: a Reporter as is; a ``message(text)`` callable (the older form)
    gets the messages while phases are INFO log lines; None: INFO log lines for both, except in a Jupyter
    kernel, where the phases are live displays (the library draws nothing on stderr by itself)."""
    if isinstance(progress, Reporter):
        return progress
    display = jupyter_display() if progress is None else None
    if display is not None:
        return Reporter("jupyter", display=display)
    return Reporter("log", message=progress)
