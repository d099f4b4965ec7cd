"""quant.levels: one Level per quant level, validated once, and the vendor's override rules."""
from __future__ import annotations

import pytest

from calibrator_custom.errors import ConfigError
from calibrator_custom.quant.levels import LEVEL_BY_NAME, QUANT_LEVELS, Level, check_quant_level, get_level


def test_levels_table_matches_docs_quant_levels():
    """docs/quant_levels.md: L1 min/max + per-tensor weights; L2 per-channel; L3 fitted ranges; L4 fitted
    weights + estimated 16-bit upgrades; L5 measured upgrades. L2-L4 check their bias correction, L5
    measures its own; L1 has none (and alone needs no calibration inputs)."""
    assert QUANT_LEVELS == ("L1", "L2", "L3", "L4", "L5")
    want = {"L1": ("per_tensor", False, "none", "none"), "L2": ("per_channel", False, "none", "checked"),
            "L3": ("per_channel", True, "none", "checked"), "L4": ("fitted", True, "estimated", "checked"),
            "L5": ("fitted", True, "measured", "measured")}
    got = {n: (lv.weight_scales, lv.fitted_ranges, lv.upgrades_16, lv.bias_correction)
           for n, lv in LEVEL_BY_NAME.items()}
    assert got == want
    assert [n for n, lv in LEVEL_BY_NAME.items() if not lv.uses_calibration_inputs] == ["L1"]
    assert all(isinstance(lv, Level) and lv.does for lv in LEVEL_BY_NAME.values())


@pytest.mark.parametrize("bad", ["L6", "l1", "", None, 5])
def test_unknown_level_is_one_config_error_naming_the_choices(bad):
    with pytest.raises(ConfigError, match=r"Unknown quant_level .*; use one of L1, L2, L3, L4, L5"):
        get_level(bad)


def test_a_level_passes_through_and_names_resolve():
    assert get_level(LEVEL_BY_NAME["L3"]) is LEVEL_BY_NAME["L3"]
    assert get_level("L4").name == "L4" and check_quant_level("L5") == "L5"
