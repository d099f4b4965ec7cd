"""The error types of calibrator_custom.

Every error a user can cause is a subclass of ``ValueError`` (the vendor's tools raise ``ValueError``
for bad models, bad paths and bad inputs, and users' scripts catch that), so existing
``except ValueError`` blocks keep working while new code can catch the precise type.
"""
from __future__ import annotations

import contextlib
from typing import Iterator


class CalibratorError(ValueError):
    """Base class of every error calibrator_custom raises on purpose."""


class ModelError(CalibratorError):
    """A model file or graph is malformed, inconsistent, or cannot be read or written."""


class UnsupportedOpError(ModelError):
    """A model uses an operator (or an option of one) that has no kernel here."""


class InputError(CalibratorError):
    """A value handed to a simulator (index, shape, dtype, call order) is wrong."""


class ConfigError(CalibratorError):
    """An input_config.ini or a quantization parameter file is invalid."""


@contextlib.contextmanager
def naming_the_file(path: str | None) -> Iterator[None]:
    """Prefix ``path`` to a ModelError raised inside (prepare, invoke), keeping its type."""
    try:
        yield
    except ModelError as e:
        if not path or path in str(e):  # already named
            raise
        raise type(e)(f"{path}: {e}") from None
