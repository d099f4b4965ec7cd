"""Mutation fuzzing of model files through the public API: only success or our own error types.

Each case mutates a small valid model (tests/modelfuzz.py: byte flips and truncations, and edits
made through our codec: empty or resized weight buffers, out-of-range indices, ops fed from later
ops' outputs (cycles), bad shapes and types, bad fixed-model metadata JSON, ...), writes it to a
file, and opens, feeds and invokes it with ``float_simulator`` and ``calibrator`` (float seeds) or
``fixed_simulator`` (fixed seeds). Any exception that is not a ``calibrator_custom.errors`` type
fails the test, listing the command that replays the case.
"""
from __future__ import annotations

import collections

import pytest

import modelfuzz as mf

# mutated weights and inputs overflow float32 legitimately (inf is a result, not an error)
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::RuntimeWarning")]

MASTER_SEED = 20261201
#: cases per CI run on the builder seeds (about 8 s on an idle 2-core machine)
BUILDER_CASES = 1500
#: cases on each of the shared real model and the vendor file (~0.1 s per case on the real model)
OTHER_CASES = 60


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, mf.Seed]:
    work = tmp_path_factory.mktemp("fuzz_seeds")
    return {s.name: s for s in mf.load_seeds(work)}


def _report(outcomes: list[mf.Outcome]) -> str:
    counts = collections.Counter((o.seed, o.status) for o in outcomes)
    return ", ".join(f"{seed} {status}: {n}" for (seed, status), n in sorted(counts.items()))


def _fuzz(chosen: list[mf.Seed], n: int, tmp_path) -> list[mf.Outcome]:
    outcomes = [mf.run_case(MASTER_SEED, seed, k, tmp_path) for seed, k in mf.schedule(chosen, n, MASTER_SEED)]
    escaped = [o for o in outcomes if o.status == "escaped"]
    if escaped:
        lines = [f"{len(escaped)} of {len(outcomes)} mutated models raised an exception that is not ours "
                 f"({_report(outcomes)}):"]
        for o in escaped[:10]:
            lines.append(f"--- seed {o.seed!r} case {o.case}: {'; '.join(o.mutations)}\n"
                         f"replay: PYTHONPATH=$PWD python tests/modelfuzz.py {MASTER_SEED} {o.seed} {o.case}\n"
                         f"{o.detail}")
        pytest.fail("\n".join(lines), pytrace=False)
    return outcomes


@pytest.mark.parametrize("name", ["tiny_cnn", "tiny_branches", "tiny_misc", "tiny_cnn_fixed", "tiny_branches_fixed",
                                  "tiny_misc_fixed"])
def test_unmutated_seed_runs(seeds, name, tmp_path):
    """The fuzz starts from models that work: each seed opens and invokes without error."""
    seed = seeds[name]
    rng = mf.case_rng(MASTER_SEED, name, 10**9)
    mf.exercise(seed, seed.data, tmp_path / f"{name}.sim", rng)


def test_mutated_builder_models_raise_only_our_errors(seeds, tmp_path):
    chosen = [s for s in seeds.values() if s.name.startswith("tiny_")]
    outcomes = _fuzz(chosen, BUILDER_CASES, tmp_path)
    counts = collections.Counter(o.status for o in outcomes)
    assert counts["ok"] + counts["error"] >= 1000, _report(outcomes)
    assert counts["skipped"] < 0.05 * len(outcomes), _report(outcomes)
    for kind in ("float", "fixed"):  # both outcomes occur for both kinds: the cases are neither all broken
        statuses = {o.status for o in outcomes if seeds[o.seed].kind == kind}  # nor all harmless
        assert {"ok", "error"} <= statuses, _report(outcomes)


def test_mutated_shared_model_raises_only_our_errors(seeds, tmp_path):
    if "face_detection" not in seeds:
        pytest.skip(f"shared model {mf.REAL_MODEL} not found in {mf.MODELS_DIR}")
    outcomes = _fuzz([seeds["face_detection"]], OTHER_CASES, tmp_path)
    assert {"ok", "error"} <= {o.status for o in outcomes}, _report(outcomes)


def test_mutated_vendor_float_sim_raises_only_our_errors(seeds, tmp_path):
    if "vendor_tiny_cnn" not in seeds:
        pytest.skip("no vendor float.sim seed: " + "; ".join(mf.VENDOR_LEFT_OUT))
    outcomes = _fuzz([seeds["vendor_tiny_cnn"]], OTHER_CASES, tmp_path)
    assert {"ok", "error"} <= {o.status for o in outcomes}, _report(outcomes)
