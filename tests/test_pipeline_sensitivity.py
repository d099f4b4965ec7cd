"""pipeline/sensitivity.py: the MAC budget of L4's 16-bit choice (hand-computed cases)."""
from __future__ import annotations

from calibrator_custom.pipeline.sensitivity import MAX_16BIT_MAC_SHARE, convs_by_data, pick_upgrades

#: conv op index -> multiply-accumulates (100 in all: a budget of 25 at the 25% share)
MACS = {1: 10, 2: 10, 3: 30, 4: 50}


def test_the_budget_is_a_quarter_of_the_conv_macs():
    assert MAX_16BIT_MAC_SHARE == 0.25


def test_cheapest_first_within_the_budget():
    """Above the threshold, cheapest first: 1 (10) then 2 (10), 3 (30) no longer fits in the 5 left."""
    assert pick_upgrades({1: 0.1, 2: 0.1, 3: 0.1, 4: 0.0}, MACS, 0.002) == {1, 2}
    assert pick_upgrades({1: 0.001, 3: 0.1}, MACS, 0.002) == frozenset()  # 1 below it, 3 beyond the budget alone


def test_siblings_are_upgraded_together_and_counted_together():
    """With 1 and 2 reading one tensor (the vendor's dialect), picking 1 upgrades 2 as well, and the pair
    costs 20: 3 (30) does not fit after it; a sibling group beyond the budget is not taken at all."""
    pair = frozenset((1, 2))
    assert pick_upgrades({1: 0.1, 3: 0.1}, MACS, 0.002, siblings={1: pair, 2: pair}) == pair
    assert pick_upgrades({1: 0.1, 3: 0.1}, MACS, 0.002) == {1}
    wide = frozenset((1, 4))
    assert pick_upgrades({1: 0.1}, MACS, 0.002, siblings={1: wide, 4: wide}) == frozenset()


def test_convs_by_data_lists_the_readers_of_each_tensor_in_order():
    from types import SimpleNamespace
    convs = [SimpleNamespace(data=d) for d in (4, 2, 4, 8)]
    assert convs_by_data(convs) == {4: [0, 2], 2: [1], 8: [3]}
