"""Rewrite the figures README.md and examples/README.md quote (SQNR, run times) from a measured run.

    python tools/gen_doc_figures.py --run    # run the examples, store tools/doc_figures.json, rewrite the docs
    python tools/gen_doc_figures.py          # rewrite the docs from tools/doc_figures.json (no run)
    python tools/gen_doc_figures.py --check  # exit 1 if the docs differ from tools/doc_figures.json
                                             # (tests/test_doc_figures.py runs this)

``--run`` runs, each in a fresh temporary folder and with this repository's package first on the
path, exactly the commands the docs show: ``examples/quick_start.py`` at its default level (L5) and
with ``--quant_level L4``, ``examples/two_inputs.py``, ``examples/chained_models.py``, and the
notebook's code cells. It records the quick start's result lines (SQNR per output, deterministic:
``tests/test_doc_figures.py`` re-runs the quick start and compares) and every run's wall-clock and
CPU time (this process's children, worker processes included), with the date and CPU count. Times
depend on the machine and its load, so the docs quote them as measured, with the date.

The docs hold each generated part between ``<!-- figures: NAME ... -->`` and ``<!-- /figures: NAME -->``
lines; only those parts are rewritten. PYPI_README.md (tools/gen_long_description.py) follows README.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "tools" / "doc_figures.json"
#: each doc and the generated parts it must hold
DOCS = {ROOT / "README.md": ("quick-start-output", "quick-start-times"),
        ROOT / "examples" / "README.md": ("examples-table", "quick-start-output-full")}
EXAMPLES = ROOT / "examples"
NOTEBOOK = EXAMPLES / "calibrate_and_compare.ipynb"
RESULT_HEADER = "[3/3] "
BLOCK = re.compile(r"^<!-- figures: (?P<name>[\w-]+)[^\n]*-->\n(?P<body>.*?)^<!-- /figures: (?P=name) -->$",
                   re.M | re.S)
RUN_NOTEBOOK = """\
import json, sys
nb = json.load(open(sys.argv[1], encoding="utf-8"))
ns = {"__name__": "__main__"}
for k, cell in enumerate(nb["cells"]):
    if cell["cell_type"] == "code":
        exec(compile("".join(cell["source"]), f"notebook[cell {k}]", "exec"), ns)
"""


# ------------------------------------------------------------------------------------------------ running
def _timed(cmd: list[str]) -> dict:
    """Run ``cmd`` in a fresh temporary folder; its stdout lines, wall-clock and CPU seconds."""
    import resource  # Unix only: --run measures; rendering and --check work anywhere
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix="doc_figures_") as cwd:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"stdout": proc.stdout.splitlines(), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def quick_start_result(lines: list[str]) -> list[str]:
    """The quick start's result lines: from the ``[3/3]`` header to the worst-output line."""
    for k, line in enumerate(lines):
        if line.startswith(RESULT_HEADER):
            return lines[k:]
    raise ValueError("the quick start printed no '[3/3]' result header:\n" + "\n".join(lines))


def measure() -> dict:
    py = sys.executable
    runs = {}
    for key, cmd in (("quick_start_L5", [py, str(EXAMPLES / "quick_start.py"), "--quiet"]),
                     ("quick_start_L4", [py, str(EXAMPLES / "quick_start.py"), "--quiet", "--quant_level", "L4"]),
                     ("two_inputs", [py, str(EXAMPLES / "two_inputs.py")]),
                     ("chained_models", [py, str(EXAMPLES / "chained_models.py")]),
                     ("notebook", [py, "-c", RUN_NOTEBOOK, str(NOTEBOOK)])):
        print(f"running {key} ...", file=sys.stderr)
        r = _timed(cmd)
        runs[key] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"]}
        if key == "quick_start_L5":  # the docs quote its result lines (tests/test_doc_figures.py checks them)
            runs[key]["result"] = quick_start_result(r["stdout"])
        print(f"  {r['wall_s']} s wall, {r['cpu_s']} s CPU", file=sys.stderr)
    return {"date": datetime.date.today().isoformat(), "cpu_count": os.cpu_count(), "runs": runs,
            "note": "written by tools/gen_doc_figures.py --run; result lines are deterministic, times are not"}


# ---------------------------------------------------------------------------------------------- rendering
def _s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def _wrap(paragraph: str) -> str:
    return textwrap.fill(paragraph, width=100, break_long_words=False, break_on_hyphens=False) + "\n"


def _measured(res: dict) -> str:
    return f"measured on {res['date']} on a {res['cpu_count']}-core machine shared with other jobs"


def render_blocks(res: dict) -> dict[str, str]:
    """Every generated part of the docs, by marker name, from the results file's content."""
    runs = res["runs"]
    l5, l4 = runs["quick_start_L5"], runs["quick_start_L4"]
    text_block = lambda lines: "```text\n" + "\n".join(lines) + "\n```\n"  # noqa: E731
    blocks = {
        "quick-start-output": text_block(l5["result"][1:]),
        "quick-start-output-full": text_block(l5["result"]),
        "quick-start-times": _wrap(
            f"L5, the vendor's default level, measures each convolution's noise (in float) to choose the 16-bit ones: "
            f"the command above took {_s(l5['wall_s'])} ({_s(l5['cpu_s'])} of CPU); `--quant_level L4` took "
            f"{_s(l4['wall_s'])} ({_s(l4['cpu_s'])} of CPU), {_measured(res)} (`tools/gen_doc_figures.py`)."),
    }
    rows = [
        ("`quick_start.py`", "SigmaStar's calibration flow on the bundled face detector: `SIM_Calibrator` + "
         "`utils.image_generator`, convert, simulate float and fixed, SQNR per output",
         "`python examples/quick_start.py [--quant_level L5] [--out DIR]`",
         f"{_s(l5['wall_s'])} at L5 (the default), {_s(l4['wall_s'])} at L4"),
        ("`two_inputs.py`", "a model with an image input and a RAWDATA_F32 input, built with `ModelBuilder`; its "
         "two-input `input_config.ini`, a vendor list file, one preprocess per input, "
         "`SIM_Calibrator.forward(image, features)`, vendor output naming",
         "`python examples/two_inputs.py`", _s(runs["two_inputs"]["wall_s"])),
        ("`chained_models.py`", "model A feeding model B: calibrated together in one `forward`, both converted, the "
         "fixed chain run with `SIM_Simulator` in 2 processes", "`python examples/chained_models.py`",
         _s(runs["chained_models"]["wall_s"])),
        ("`calibrate_and_compare.ipynb`", "the `calibrator` + `convert` API: calibrate once, convert at L1-L4, "
         "simulate, a per-output error table and an SVG chart of the SQNR", "open in Jupyter (any folder)",
         f"{_s(runs['notebook']['wall_s'])} (L1-L4)"),
    ]
    table = ["| example | what it shows | run | wall-clock time |", "|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    blocks["examples-table"] = "\n".join(table) + "\n\n" + _wrap(
        f"Times {_measured(res)} (`tools/gen_doc_figures.py`); they vary with the machine and its load.")
    return blocks


def rewrite(text: str, blocks: dict[str, str], where: str, required: tuple[str, ...] = ()) -> str:
    """``text`` with the body of each marked part replaced; an unknown or missing marker name is an error."""
    missing = sorted(set(required) - {m.group("name") for m in BLOCK.finditer(text)})
    if missing:
        raise SystemExit(f"{where}: no figures block {', '.join(missing)} (markers removed?)")
    def fix(m: re.Match) -> str:
        name = m.group("name")
        if name not in blocks:
            raise SystemExit(f"{where}: unknown figures block {name!r}; known: {', '.join(sorted(blocks))}")
        head = m.group(0).split("\n", 1)[0]
        return f"{head}\n{blocks[name]}<!-- /figures: {name} -->"
    return BLOCK.sub(fix, text)


def rendered_docs(res: dict) -> dict[Path, str]:
    """The new text of each doc (README.md, examples/README.md, and PYPI_README.md after README.md)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import gen_long_description

    blocks = render_blocks(res)
    out = {p: rewrite(p.read_text(encoding="utf-8"), blocks, p.name, names) for p, names in DOCS.items()}
    readme = out[ROOT / "README.md"]
    base = gen_long_description.repository_url()
    out[gen_long_description.OUTPUT] = gen_long_description.HEADER + gen_long_description.absolute_links(readme, base)
    return out


def load_results() -> dict:
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--run", action="store_true", help="run the examples and store the results first")
    group.add_argument("--check", action="store_true", help="exit 1 if the docs differ from the results file")
    args = parser.parse_args(argv)
    if args.run:
        RESULTS.write_text(json.dumps(measure(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    docs = rendered_docs(load_results())
    stale = [p for p, text in docs.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} disagrees with {RESULTS.relative_to(ROOT)}: run python tools/gen_doc_figures.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.write_text(docs[p], encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
