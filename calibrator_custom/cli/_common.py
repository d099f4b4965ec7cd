"""Shared by the command-line tools: exit codes, one-line user errors, logging set-up."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from ..errors import CalibratorError

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("calibrator_custom")


class UserError(CalibratorError):
    """A mistake in the command line's values (a file that is missing, a bad list line...)."""


def setup_logging(show_log: bool) -> None:
    """INFO (``--show_log``) or WARNING messages of the library on stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("calibrator_custom")
    root.handlers[:] = [h for h in root.handlers if isinstance(h, logging.NullHandler)] + [handler]
    root.setLevel(logging.INFO if show_log else logging.WARNING)
    root.propagate = False


def version_text() -> str:
    """What ``--version`` prints: ``calibrator_custom <version>``, then the vendor API it matches if the package says."""
    import calibrator_custom

    text = f"calibrator_custom {calibrator_custom.__version__}"
    sdk_version = getattr(calibrator_custom, "get_sdk_version", None)
    if callable(sdk_version):
        text += f"\nvendor API: {sdk_version()}"
    return text


def run(prog: str, parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], int],
        argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run ``body(args)``; user errors become one stderr line and exit code 1.

    ``CalibratorError`` (and so every ``ValueError`` subclass we raise), ``FileNotFoundError``
    and other ``OSError`` are user errors. Anything else is a bug and keeps its traceback.
    Every tool takes ``--version`` (:func:`version_text`, exit code 0).
    """
    if "--version" not in parser._option_string_actions:
        parser.add_argument("--version", action="version", version=version_text(),
                            help="Print the calibrator_custom version and exit.")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    setup_logging(getattr(args, "show_log", False))
    try:
        return body(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
