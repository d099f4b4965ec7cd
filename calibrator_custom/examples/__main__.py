"""``python -m calibrator_custom.examples DIR``: copy the bundled example model, input config and photos."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import copy_to


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m calibrator_custom.examples",
        description="Copy the bundled example (face_detection_short_range.tflite, its input_config.ini) into DIR "
        "and its three photos into DIR/images/.")
    parser.add_argument("folder", metavar="DIR", help="destination folder (created if needed)")
    args = parser.parse_args(argv)
    try:
        written = copy_to(args.folder)
    except OSError as e:
        print(f"python -m calibrator_custom.examples: error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
