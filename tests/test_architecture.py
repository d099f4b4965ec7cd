"""The package's layering (docs/architecture.md): no module imports a module of a higher layer, and the
three stage packages (quant plans, fixed builds and runs our fixed models, vendor_fixed runs the
vendor's) do not import one another. Every import counts, the lazy ones inside functions included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "calibrator_custom"

#: lowest first; a module belongs to the first layer with a matching prefix (a prefix ending in "." is a
#: package); modules matching none are the top layer, "sdk"
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("_blas_kernel", "errors", "fileio", "blas", "rounding", "versions", "progress", "progress_display", "printing",
              "sim_workers", "sim_registry", "input_formats")),
    ("model", ("model.graph", "model.flatbuf", "model.schema", "model.options", "model.sgs_dialect", "model.sgs_slots",
               "model.sgs_weights", "model.sgs_lower", "model.sgs_tags", "model.validate", "model", "config")),
    ("engine", ("ops.", "ops", "interpreter", "model.builder")),
    ("calib", ("calib.", "calib")),
    ("plan", ("plan",)),
    ("stages", ("quant.", "quant", "fixed.", "fixed", "vendor_fixed.", "vendor_fixed")),
    ("pipeline", ("pipeline.", "pipeline")),
    ("sdk", ()),
]
RANK = {name: k for k, (name, _) in enumerate(LAYERS)}
STAGES = ("quant", "fixed", "vendor_fixed")


def layer_of(module: str) -> str:
    for name, prefixes in LAYERS:
        for p in prefixes:
            if module == p or (p.endswith(".") and module.startswith(p)):
                return name
    return "sdk"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_names() -> set[str]:
    return {_module_name(p) for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, imported module of this package without the 'calibrator_custom.' prefix) for every import."""
    mod = _module_name(path)
    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    if mod == "":
        pkg = []
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "calibrator_custom" or node.module.startswith("calibrator_custom.")):
                target = node.module[len("calibrator_custom."):] if "." in node.module else ""
            else:
                continue
            for alias in node.names:  # "from . import x" imports the module x when there is one
                sub = f"{target}.{alias.name}" if target else alias.name
                found.append((node.lineno, sub if sub in known else target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("calibrator_custom."):
                    found.append((node.lineno, alias.name[len("calibrator_custom."):]))
    return [(line, t) for line, t in found if t]


def _stage(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in STAGES else None


def violations() -> list[str]:
    known = _package_names()
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mod = _module_name(path)
        if not mod:
            continue  # the package's own __init__ (the vendor API) is the top
        here = layer_of(mod)
        for line, target in imports_of(path, known):
            there = layer_of(target)
            where = f"{path.relative_to(PACKAGE.parent)}:{line}: {mod} ({here}) imports {target} ({there})"
            if RANK[there] > RANK[here]:
                bad.append(where + ": a higher layer")
            elif _stage(mod) and _stage(target) and _stage(mod) != _stage(target):
                bad.append(where + ": another stage package")
    return bad


def test_no_module_imports_a_higher_layer_or_a_sibling_stage():
    assert violations() == []


def test_every_layer_is_populated_and_known_modules_classify():
    known = _package_names()
    assert len(known) > 50
    counts = {name: 0 for name, _ in LAYERS}
    for m in known:
        counts[layer_of(m)] += 1
    assert all(counts.values()), counts
    assert layer_of("quant.planner") == layer_of("fixed.writer") == "stages"
    assert layer_of("pipeline.convert") == "pipeline" and layer_of("utils") == "sdk"
    assert layer_of("model.builder") == "engine" and layer_of("model.graph") == "model"


@pytest.mark.parametrize("source, target, expect", [
    ("calib/fake.py", "from ..simulators import float_simulator\n", "a higher layer"),
    ("quant/fake.py", "def f():\n    from ..fixed.writer import build_fixed_model\n", "another stage package"),
    ("fixed/fake.py", "import calibrator_custom.pipeline.convert\n", "a higher layer"),
])
def test_the_checker_sees_lazy_and_absolute_imports(tmp_path, monkeypatch, source, target, expect):
    """The checker itself, on a copy of the package with one offending module added."""
    import shutil
    copy = tmp_path / "calibrator_custom"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    (copy / source).write_text(target)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", copy)
    found = violations()
    assert len(found) == 1 and found[0].endswith(expect), found


def test_integer_kernel_files_are_named_like_the_float_ones():
    """An op's integer kernel (fixed/kernels/<family>.py) is in the file named like its float kernel's
    (ops/<family>.py), and every integer kernel file has its float namesake (docs/architecture.md)."""
    from calibrator_custom.fixed.registry import FIXED_KERNELS, supported_fixed_ops
    from calibrator_custom.ops.registry import KERNELS, supported_ops

    assert len(supported_fixed_ops()) > 80 and len(supported_ops()) > 80  # (loads both registries)
    assert len(FIXED_KERNELS) > 80 and len(KERNELS) > 80
    fixed_prefix = "calibrator_custom.fixed.kernels."
    wrong = []
    for name, fixed in sorted(FIXED_KERNELS.items()):
        if name not in KERNELS or not fixed.kernel.__module__.startswith(fixed_prefix):
            continue  # custom ops without a float kernel; integer kernels that are the float ones (ops/)
        float_module = KERNELS[name].kernel.__module__.rsplit(".", 1)[-1]
        fixed_module = fixed.kernel.__module__[len(fixed_prefix):]
        if fixed_module != float_module:
            wrong.append(f"{name}: ops/{float_module}.py but fixed/kernels/{fixed_module}.py")
    assert wrong == []
    float_files = {p.stem for p in (PACKAGE / "ops").glob("*.py")}
    fixed_files = {p.stem for p in (PACKAGE / "fixed" / "kernels").glob("*.py") if not p.stem.startswith("_")}
    assert fixed_files and fixed_files <= float_files, sorted(fixed_files - float_files)
