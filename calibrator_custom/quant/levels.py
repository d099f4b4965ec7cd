"""The vendor's rules for the quant level a conversion really uses (shared by SIM_Calibrator and the CLI).

* an unknown level is a ``ValueError`` naming the allowed ones;
* imported ``quant_param`` forces ``L1`` (the imported ranges are used as given);
* when every model's ``[CONV_CONFIG] input_format`` is ``ALL_INT16`` and the level is not ``L1``, the
  level is forced to ``L2`` (no 8/16-bit choice is left to make).
"""
from __future__ import annotations

import logging
from typing import Sequence

from ..config import InputConfig
from ..errors import ConfigError
from .planner import LEVELS

log = logging.getLogger(__name__)


def check_quant_level(quant_level: str) -> str:
    """``quant_level`` itself, or ``ValueError('Unknown quant_level ...')`` naming L1..L5."""
    if quant_level not in LEVELS:
        raise ConfigError(f"Unknown quant_level {quant_level!r}; use one of {', '.join(LEVELS)}")
    return quant_level


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
