"""The one ``--check`` / write step of the generators whose output is committed (docs, notebook, long description)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence


def check_or_write(path: Path, render: Callable[[], str], description: str,
                   argv: Sequence[str] | None = None) -> int:
    """Write ``render()`` to ``path``, or with ``--check`` exit 1 when the committed file differs from it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if {path.name} is not what this script writes")
    args = parser.parse_args(argv)
    text = render()
    script = Path(sys.argv[0]).name
    if args.check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{path.name} is stale: run python tools/{script}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.name}")
    return 0
