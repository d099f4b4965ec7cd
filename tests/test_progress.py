"""The progress bar: ETA text, redraw rules, silence when stderr is not a terminal."""
from __future__ import annotations

import io

import pytest
from hypothesis import given, strategies as st

from calibrator_custom.progress import BAR_WIDTH, ProgressBar, format_seconds


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("seconds,text", [(0, "0:00"), (59.4, "0:59"), (75.2, "1:15"), (3725, "1:02:05"),
                                          (-1, "?"), (float("nan"), "?"), (float("inf"), "?")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@given(st.integers(0, 10**7))
def test_format_seconds_round_trips(s):
    parts = [int(p) for p in format_seconds(s).split(":")]
    assert sum(v * 60 ** k for k, v in enumerate(reversed(parts))) == s


def test_silent_when_not_a_terminal():
    out = io.StringIO()
    bar = ProgressBar(3, "work", stream=out)
    for _ in range(3):
        bar.update()
    bar.close()
    assert out.getvalue() == "" and bar.done == 3


def test_draws_on_a_terminal_with_eta_and_ends_the_line():
    clock = iter([100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0])
    out = Tty()
    bar = ProgressBar(4, "calibrating", stream=out, min_interval_s=0, clock=lambda: next(clock))  # starts at t=100
    bar.update()  # t=101: 1 of 4 done in 1 s -> 3 s left
    assert out.getvalue() == "\rcalibrating [" + "#" * (BAR_WIDTH // 4) + "." * (BAR_WIDTH - BAR_WIDTH // 4) + \
        "] 1/4 0:01<0:03"
    bar(4, 4)  # callback form, t=102
    assert out.getvalue().endswith("] 4/4 0:02<0:00")
    bar.close()
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1
    bar.update()  # closed: nothing more
    assert out.getvalue().count("\r") == 2


@pytest.mark.parametrize("start_s", [0.0, 5.0, 1e6])  # a clock that starts at boot: just booted, or up for days
def test_rate_limited_but_always_draws_the_end(start_s):
    now = [start_s]
    out = Tty()
    bar = ProgressBar(100, stream=out, min_interval_s=3600, clock=lambda: now[0])
    for _ in range(100):
        now[0] += 1.0
        bar.update()
    text = out.getvalue()
    # the first update draws (nothing was drawn yet), the next 98 are within the interval, the last always draws
    assert text.count("\r") == 2 and text.startswith("\r[") and text.endswith("] 100/100 1:40<0:00")
    bar.close()
    assert out.getvalue().endswith("\n")


def test_close_without_any_draw_writes_nothing():
    out = Tty()
    bar = ProgressBar(5, stream=out, clock=lambda: 0.0)
    bar.close()
    assert out.getvalue() == ""


def test_forced_on_and_off():
    out = io.StringIO()
    with ProgressBar(1, stream=out, enabled=True) as bar:
        bar.update()
    assert out.getvalue().startswith("\r[") and out.getvalue().endswith("\n")
    tty = Tty()
    with ProgressBar(1, stream=tty, enabled=False) as bar:
        bar.update()
    assert tty.getvalue() == ""
