"""Helpers for the command-line tool tests: run a tool in a subprocess, tiny models, images, ini files."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from calibrator_custom.model.builder import ModelBuilder

ROOT = Path(__file__).resolve().parent.parent
MEAN, STD = 127.5, 127.5
SIDE = 8
#: one line of log/tensor_min_max.txt
MIN_MAX_LINE = re.compile(r"^(?P<name>.+), min: (?P<min>-?\d+\.\d{6}), max: (?P<max>-?\d+\.\d{6});$")

PREPROCESS_PY = f'''
import cv2
import numpy as np

def image_preprocess(img_path, norm=True):
    img = cv2.imread(img_path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError("No such image: " + img_path)
    img = cv2.resize(img, ({SIDE}, {SIDE}), interpolation=cv2.INTER_NEAREST)[:, :, ::-1]
    if norm:
        return ((img.astype(np.float32) - {MEAN}) / {STD})[None]
    return np.ascontiguousarray(img)[None]
'''


def run_tool(module: str, args, cwd, timeout_s: float = 120) -> subprocess.CompletedProcess:
    """``python -m calibrator_custom.<module> args`` in ``cwd`` (the repo importable, as installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SGS_IPU_DIR", None)  # the tools must not need it
    return subprocess.run([sys.executable, "-m", f"calibrator_custom.{module}", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout_s, env=env)


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def write_image(path: Path, value: int, size: int = SIDE) -> Path:
    """A PNG whose every pixel (all channels) is ``value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((size, size, 3), value, np.uint8))
    return path


def normalized(value: int) -> float:
    """The float model input a pixel ``value`` becomes under PREPROCESS_PY."""
    return float((np.float32(value) - np.float32(MEAN)) / np.float32(STD))


def write_preprocess(path: Path) -> Path:
    path.write_text(PREPROCESS_PY)
    return path


def tiny_model(path: Path) -> Path:
    """input 'img' (1, 8, 8, 3) -> CONV_2D 1x1 (RELU) -> 'out'."""
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.input("img", (1, SIDE, SIDE, 3))
    y = b.op("CONV_2D", [x, b.constant("w", rng.standard_normal((4, 1, 1, 3)).astype(np.float32) * 0.5),
                         b.constant("b", rng.standard_normal(4).astype(np.float32) * 0.1)],
             {"padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU"}, name="out")
    b.output(y)
    b.save(path)
    return path


def two_input_model(path: Path) -> Path:
    """inputs 'a', 'b' (1, 8, 8, 3) -> ADD -> CONV_2D 1x1 -> 'out'."""
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    xa = b.input("a", (1, SIDE, SIDE, 3))
    xb = b.input("b", (1, SIDE, SIDE, 3))
    s = b.op("ADD", [xa, xb], {}, name="sum")
    y = b.op("CONV_2D", [s, b.constant("w", rng.standard_normal((2, 1, 1, 3)).astype(np.float32) * 0.5),
                         b.constant("bias", np.zeros(2, np.float32))],
             {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="out")
    b.output(y)
    b.save(path)
    return path


def write_ini(path: Path, inputs=("img",), outputs=("out",)) -> Path:
    n = len(inputs)
    path.write_text(
        f"[INPUT_CONFIG]\ninputs={','.join(inputs)};\ntraining_input_formats={','.join(['RGB'] * n)};\n"
        f"input_formats={','.join(['RGB'] * n)};\nmean={','.join([f'{MEAN}:{MEAN}:{MEAN}'] * n)};\n"
        f"std_value={','.join([str(STD)] * n)};\n[OUTPUT_CONFIG]\noutputs={','.join(outputs)};\n"
        f"dequantizations={','.join(['TRUE'] * len(outputs))};\n")
    return path


def read_min_max(path: Path) -> dict[str, tuple[str, str]]:
    """{name: (min text, max text)} of a tensor_min_max.txt, every line checked against the format."""
    out = {}
    for line in path.read_text().splitlines():
        m = MIN_MAX_LINE.match(line)
        assert m, f"bad tensor_min_max line {line!r}"
        out[m["name"]] = (m["min"], m["max"])
    return out
