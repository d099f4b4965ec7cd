"""The quant levels L1..L5: what each one does (``Level``), read by the planner and the pipeline, and the
vendor's rules for the level a conversion really uses (shared by SIM_Calibrator and the CLI).

* a level name is validated once, by :func:`get_level`; an unknown one is a ``ConfigError`` (a
  ``ValueError``) naming the allowed ones;
* imported ``quant_param`` forces ``L1`` (the imported ranges are used as given);
* when every model's ``[CONV_CONFIG] input_format`` is ``ALL_INT16`` and the level is not ``L1``, the
  level is forced to ``L2`` (no 8/16-bit choice is left to make).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..config import InputConfig
from ..errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Level:
    """What one quant level does (docs/quant_levels.md)."""

    name: str
    #: conv weight scales: "per_tensor" (min/max), "per_channel" (a clipping search per output channel)
    #: or "fitted" (the search weighted by the input channels' energy)
    weight_scales: str
    #: activation ranges fitted to the histograms (else min/max)
    fitted_ranges: bool
    #: 16-bit upgrades of sensitive convolutions: "none", "estimated" (from the statistics) or
    #: "measured" (on the fixed model, with calibration inputs; estimated without them)
    upgrades_16: str
    #: one line for people
    does: str
    #: the bias correction for the mean shift of weight quantization: "none", "checked" (kept if, with
    #: calibration inputs, cross-validation in the written dialect's arithmetic shows it helps:
    #: ``pipeline.bias_check``) or "measured" (L5's, checked on its float simulation)
    bias_correction: str = "none"
    #: where the vendor's dialect is written (one UINT8 scale per activation tensor): its activation channels
    #: equalized through the conv weights first (``pipeline.equalize``)
    equalizes_channels: bool = False

    @property
    def uses_calibration_inputs(self) -> bool:
        """Whether the conversion at this level uses calibration inputs besides the statistics (its
        measured upgrades, its bias correction's check)."""
        return self.upgrades_16 == "measured" or self.bias_correction != "none"


LEVEL_BY_NAME: Mapping[str, Level] = {lv.name: lv for lv in (
    Level("L1", "per_tensor", False, "none", "min/max ranges, per-tensor weight scales"),
    Level("L2", "per_channel", False, "none", "min/max ranges, per-channel weight scales with a clipping search, "
          "a bias correction kept where cross-validation shows it helps", "checked", True),
    Level("L3", "per_channel", True, "none", "L2 with activation ranges fitted to the histograms", "checked", True),
    Level("L4", "fitted", True, "estimated",
          "L3 with weights fitted by input-channel energy and estimated 16-bit upgrades", "checked", True),
    Level("L5", "fitted", True, "measured",
          "L4 with ranges, 16-bit upgrades and bias corrections measured (8-bit convs simulated in float)",
          "measured", True),
)}
#: the level names, lowest first
QUANT_LEVELS: tuple[str, ...] = tuple(LEVEL_BY_NAME)


def get_level(level: str | Level) -> Level:
    """The :class:`Level` named ``level`` (a Level passes through); ``ConfigError('Unknown quant_level ...')``
    naming L1..L5 otherwise."""
    if isinstance(level, Level):
        return level
    found = LEVEL_BY_NAME.get(level) if isinstance(level, str) else None
    if found is None:
        raise ConfigError(f"Unknown quant_level {level!r}; use one of {', '.join(QUANT_LEVELS)}")
    return found


def check_quant_level(quant_level: str) -> str:
    """``quant_level`` itself, or ``ValueError('Unknown quant_level ...')`` naming L1..L5."""
    return get_level(quant_level).name


def effective_quant_level(quant_level: str, configs: Sequence[InputConfig], quant_param: list | None = None) -> str:
    """The level the conversion uses under the vendor's override rules (logged when it changes)."""
    level = check_quant_level(quant_level)
    if quant_param:
        if level != "L1":
            log.info("quant_param given: quant_level %s -> L1 (imported ranges are used as given)", level)
        return "L1"
    if configs and level != "L1" and all(c.conv.input_format == "ALL_INT16" for c in configs):
        log.info("every model is [CONV_CONFIG] input_format=ALL_INT16: quant_level %s -> L2", level)
        return "L2"
    return level
