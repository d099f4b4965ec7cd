"""Write PYPI_README.md, the package's long description: README.md with its relative links made absolute.

    python tools/gen_long_description.py          # rewrite PYPI_README.md
    python tools/gen_long_description.py --check  # exit 1 if PYPI_README.md differs (tests/test_packaging.py runs this)

A package index shows the long description away from the repository, where README.md's relative
links (``docs/user_guide.md``) lead nowhere. Each relative link target becomes
``<Repository URL>/blob/main/<target>`` with the ``Repository`` URL of pyproject.toml's
``[project.urls]``; absolute links and ``#anchors`` stay as they are. Edit README.md, not this file's output.
"""
from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path

from _generated import check_or_write  # tools/: this script's folder

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
OUTPUT = ROOT / "PYPI_README.md"
PYPROJECT = ROOT / "pyproject.toml"
BRANCH = "main"
#: [text](target) and ![alt](target); the target stops at whitespace or ')'
LINK = re.compile(r"(!?\[[^\]]*\])\(([^)\s]+)\)")
ABSOLUTE = re.compile(r"^([a-z][a-z0-9+.-]*:|#|/)", re.I)
HEADER = "<!-- Generated from README.md by tools/gen_long_description.py: edit README.md, then run it. -->\n"


def repository_url() -> str:
    """``Repository`` of pyproject.toml's [project.urls] (read as text: tomllib needs Python 3.11)."""
    m = re.search(r'^Repository\s*=\s*"([^"]+)"', PYPROJECT.read_text(encoding="utf-8"), re.M)
    if not m:
        raise SystemExit("pyproject.toml has no Repository URL in [project.urls]")
    return m.group(1).rstrip("/")


def absolute_links(markdown: str, base_url: str) -> str:
    """``markdown`` with every relative link target replaced by ``base_url/blob/BRANCH/target``."""
    def fix(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        if ABSOLUTE.match(target):
            return m.group(0)
        kind = "raw" if label.startswith("!") else "blob"
        return f"{label}({base_url}/{kind}/{BRANCH}/{posixpath.normpath(target)})"
    return LINK.sub(fix, markdown)


def render() -> str:
    return HEADER + absolute_links(README.read_text(encoding="utf-8"), repository_url())


def main(argv: list[str] | None = None) -> int:
    return check_or_write(OUTPUT, render, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
