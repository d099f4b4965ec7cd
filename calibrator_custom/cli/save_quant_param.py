"""``sgs-save-quant-param`` (``python -m calibrator_custom.save_quant_param``): a fixed model's quant params.

    $ sgs-save-quant-param -m net_fixed.sim                     # -> net_fixed.sim.json
    $ sgs-calibrator ... --quant_file net_fixed.sim.json        # import them again (forces L1)

The vendor's ``Scripts/examples/save_quant_param.py``: the list of ``{"name", "min", "max", "bit"}``
items of every quantized tensor, written next to the model as ``<model path>.json`` (``json`` with
``indent=4``) or ``<model path>.pkl`` (``--output_mode Pickle``). Items whose min or max list is
empty are left out; ``bit`` is 8 for UINT8/INT8 tensors and 16 for wider ones (INT16, INT32 and
our INT64 biases), as the vendor does. Names are the float model's tensor names
(:func:`calibrator_custom.pipeline.export.export_quant_param`), so ``--quant_file`` takes the file back.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from ..model.graph import Model, atomic_write, load_model
from ..pipeline.export import export_quant_param
from ..quant.qparam import save_quant_param
from ._common import UserError, run

PROG = "sgs-save-quant-param"
OUTPUT_MODES = ("JSON", "Pickle")
#: the file name the vendor's tool appends to the model path, per output mode
SUFFIXES = {"JSON": ".json", "Pickle": ".pkl"}
VENDOR_KEYS = ("name", "min", "max", "bit")


def vendor_quant_param(fixed: Model) -> list[dict[str, Any]]:
    """The vendor's quant_param list of a fixed model: ``{name, min, max, bit}`` items.

    ``export_quant_param`` minus its ``data`` arrays (the vendor's list has none; biases are
    re-derived from the float model on import), minus items with an empty min or max list, with
    ``bit`` 8 for 8-bit tensors and 16 for every wider integer type (the vendor maps INT32 to 16).
    """
    items = []
    for item in export_quant_param(fixed):
        if not item["min"] or not item["max"]:
            continue
        bit = 8 if item["bit"] <= 8 else 16
        items.append({"name": item["name"], "min": list(item["min"]), "max": list(item["max"]), "bit": bit})
    return items


def load_fixed_model(path: str, flag: str = "-m") -> Model:
    """The fixed model at ``path``; a float model or a non-model is a one-line UserError."""
    from ..fixed.writer import read_fixed_metadata

    if not os.path.isfile(path):
        raise UserError(f"{flag} {path!r}: fixed model does not exist")
    try:
        model = load_model(path)
    except ValueError as e:
        raise UserError(f"{flag}: {e}") from None
    if read_fixed_metadata(model) is None:
        raise UserError(f"{flag} {path!r} is a float model (or was not written by calibrator_custom); give the "
                        "*_fixed.sim that sgs-calibrator wrote")
    return model


def write_quant_param(items: list[dict[str, Any]], path: str) -> None:
    """JSON (vendor: ``json.dump(..., indent=4)``, no trailing newline) or pickle, by suffix; atomic."""
    if path.lower().endswith(".json"):
        atomic_write(path, json.dumps(items, indent=4).encode("utf-8"))
    else:
        save_quant_param(items, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Save the quantization parameters of a fixed model (the vendor's "
        "save_quant_param.py). The file can be edited and given back to sgs-calibrator --quant_file.",
        epilog="Writes <model>.json or <model>.pkl next to the model and prints 'Quant param saved in <path>'. "
        "Exit codes: 0 ok, 1 user error (one line on stderr), 2 usage error.")
    parser.add_argument("-m", "--model", type=str, required=True,
                        help="Fixed model path (*_fixed.sim written by sgs-calibrator).")
    parser.add_argument("--output_mode", type=str, default="JSON", choices=OUTPUT_MODES,
                        help="Quant param file format: JSON (indent 4) or Pickle (default: %(default)s).")
    return parser


def _body(args: argparse.Namespace) -> int:
    model = load_fixed_model(args.model)
    items = vendor_quant_param(model)
    out = args.model + SUFFIXES[args.output_mode]
    write_quant_param(items, out)
    print(f"Quant param saved in {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tool; returns the exit code (0 ok, 1 user error, 2 usage error)."""
    return run(PROG, build_parser(), _body, argv)


if __name__ == "__main__":
    sys.exit(main())
