"""The vendor's SGS_IPU_SDK 1.1.5 binaries (``../shared/vendor_sdk``) as a black-box test oracle.

``vendor`` is a session fixture: it skips (with the reason) when the SDK folder is absent or its
setup has not been run, and caches every conversion for the session, so each vendor file is made
once, in the session's temporary folder (vendor-made files are never committed).
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED

VENDOR_DIR = SHARED / "vendor_sdk"
HARNESS = VENDOR_DIR / "harness"


def ini_text(inputs, outputs, mean: float, std: float) -> str:
    """An input_config.ini in the 1.1.5 style (``mean_red``/``mean_green``/``mean_blue``/``std_value``)."""
    return ("[INPUT_CONFIG]\n"
            f"inputs='{','.join(inputs)}';\n"
            "input_formats='RGB';\ntraining_input_formats='RGB';\nquantizations='TRUE';\n"
            f"mean_red={mean};\nmean_green={mean};\nmean_blue={mean};\nstd_value={std};\n"
            "[OUTPUT_CONFIG]\n"
            f"outputs='{','.join(outputs)}';\n"
            f"dequantizations='{','.join(['TRUE'] * len(outputs))}';\n")


#: the calibration preprocess the vendor tests give the vendor's calibrator: RGB, resized to (w, h),
#: (x - 127.5) / 127.5 (``norm=False``: the rounded pixels)
PREPROCESS = ("import cv2, numpy as np\n"
              "def image_preprocess(img_path, norm=True):\n"
              "    img = cv2.resize(cv2.imread(img_path)[:, :, ::-1], ({w}, {h})).astype(np.float32)\n"
              "    return ((img - 127.5) / 127.5)[None] if norm else np.round(img).astype(np.uint8)[None]\n")


def calibration_inputs(folder: Path, h: int, w: int, photos=None) -> tuple[Path, Path]:
    """(images folder, preprocess script) in ``folder`` for the vendor's calibrator: ``photos`` (default the
    first 2 calibration photos) copied, and :data:`PREPROCESS` at ``h`` x ``w``."""
    from images import calibration_images
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for p in (calibration_images()[:2] if photos is None else photos):
        p = Path(p)
        (images / p.name).write_bytes(p.read_bytes())
    pre = folder / "pre.py"
    pre.write_text(PREPROCESS.format(w=w, h=h))
    return images, pre


class VendorOracle:
    """Session-cached calls of the vendor's tools."""

    def __init__(self, oracle, workdir: Path):
        self.oracle = oracle
        self.Error = oracle.OracleError
        self.workdir = workdir
        self._converted: dict[str, Path | Exception] = {}

    def convert(self, tflite: Path, ini: str, stem: str) -> Path:
        """``convert_tool`` on ``tflite``; the vendor float.sim (cached; re-raises a refusal)."""
        key = hashlib.sha256(Path(tflite).read_bytes() + ini.encode()).hexdigest()[:16]
        if key not in self._converted:
            folder = self.workdir / f"{stem}_{key}"
            folder.mkdir(exist_ok=True)
            (folder / "input_config.ini").write_text(ini)
            try:
                self._converted[key] = Path(self.oracle.convert_tflite(
                    str(tflite), str(folder / "input_config.ini"), str(folder / f"{stem}_float.sim")))
            except self.Error as e:
                self._converted[key] = e
        got = self._converted[key]
        if isinstance(got, Exception):
            raise got
        return got

    def convert_shared(self, tflite: Path, mean: float, std: float) -> tuple[Path, int, int]:
        """(vendor float.sim, input height, width) of a model, converted with its own input/output names and
        ``mean`` / ``std`` (the float.sim's folder holds its input_config.ini)."""
        from calibrator_custom.model.graph import load_model
        g = load_model(tflite).main
        ins, outs = [g.tensors[i].name for i in g.inputs], [g.tensors[i].name for i in g.outputs]
        _, h, w, _ = g.tensors[g.inputs[0]].shape
        return self.convert(tflite, ini_text(ins, outs, mean, std), Path(tflite).stem), int(h), int(w)

    def calibrate_l1(self, float_sim: Path, images: Path, preprocess_py: Path, ini: Path) -> Path:
        """The vendor's L1 calibration: ``*_fixed.sim`` (and ``*_cmodel_float.sim`` next to the float model)."""
        out = float_sim.with_name(float_sim.name.replace("_float.sim", "_fixed.sim"))
        if not Path(self.oracle.VPY).is_file():
            pytest.skip(f"the vendor calibrator needs the oracle venv {self.oracle.VPY} "
                        f"(run `bash {VENDOR_DIR}/setup.sh` as root)")
        if not out.exists():
            self.oracle.calibrate_l1(str(float_sim), str(images), str(preprocess_py), str(ini), str(out))
        return out

    def float_sim(self, model: Path, x: np.ndarray) -> dict:
        return self.oracle.float_sim(str(model), x, dump=True)


def refusal_line(e: Exception) -> str:
    """The vendor's last error/assert line of a failed tool run (what the docs quote)."""
    log = str(e).splitlines()
    lines = [ln for ln in log if "Error" in ln or "Assert" in ln]
    if lines:
        return lines[-1].strip()
    return f"the tool stopped without an error message; last log line: {log[-1].strip() if log else ''!r}"


@pytest.fixture(scope="session")
def vendor(tmp_path_factory) -> VendorOracle:
    if not VENDOR_DIR.is_dir():
        pytest.skip(f"the vendor SDK oracle is not here ({VENDOR_DIR} is absent)")
    sys.path.insert(0, str(HARNESS))
    try:
        oracle = importlib.import_module("oracle")
    except Exception as e:  # noqa: BLE001 - any failure to import means no oracle
        pytest.skip(f"cannot import the vendor oracle from {HARNESS}: {e}")
    v = VendorOracle(oracle, tmp_path_factory.mktemp("vendor"))
    from vendor_singleops import CASES  # a tiny model proves both binaries run
    probe = v.workdir / "probe.tflite"
    CASES["relu"]().save(probe)
    try:
        sim = v.convert(probe, ini_text(["x"], ["y"], 127.5, 127.5), "probe")
        v.float_sim(sim, np.zeros((1, 8, 8, 3), np.float32))
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"the vendor oracle cannot run (run `bash {VENDOR_DIR}/setup.sh` as root): "
                    f"{str(e).splitlines()[0] if str(e) else type(e).__name__}")
    return v


def compare_dump(ours: dict[str, np.ndarray], ref_dump: dict, rel_tol: float = 1e-5, el_tol: float = 1e-4):
    """Compare every tensor of the vendor's dump with ours (by name).

    Returns (number compared, list of failures); a failure is (name, reason). Each tensor must have
    an L2 relative error <= ``rel_tol`` and a largest elementwise error <= ``el_tol`` x max|ref|.
    """
    failures = []
    n = 0
    for name, ref in ref_dump.items():
        if not isinstance(ref, np.ndarray):
            continue
        if name not in ours:
            failures.append((name, "not computed by us"))
            continue
        got = np.asarray(ours[name])
        if got.size != ref.size:
            failures.append((name, f"{got.size} elements, the vendor has {ref.size}"))
            continue
        n += 1
        g, r = got.ravel().astype(np.float64), ref.astype(np.float64)
        scale = float(np.abs(r).max())
        if scale == 0.0:
            if np.abs(g).max() != 0.0:
                failures.append((name, f"vendor all zero, ours max {np.abs(g).max():.3g}"))
            continue
        rel = float(np.linalg.norm(g - r) / np.linalg.norm(r))
        el = float(np.abs(g - r).max() / scale)
        if rel > rel_tol or el > el_tol:
            failures.append((name, f"relative L2 {rel:.3g}, max elementwise {el:.3g} x max|ref|"))
    return n, failures
